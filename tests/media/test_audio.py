"""Audio decoding and the log-mel frontend, on real files written by tests/builders/media.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from cause_pl.features.mel import MelConfig, MelFrontend, log_mel_from_file
from cause_pl.media.audio import AudioError, load_audio
from tests.builders import media

TARGET_RATE = 16000
FPS = 25
NO_MP3 = pytest.mark.skipif(media.mp3_encoder() is None, reason="PyAV's FFmpeg has no mp3 encoder")


def dominant_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a Hann-windowed signal."""
    signal = wave.numpy()
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * sample_rate / len(signal))


def rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(values, dtype=np.float64)))))


def peak_energy_frame(log_mel: torch.Tensor) -> int:
    """Frame with the most mel power summed over bands."""
    return int(log_mel.exp().sum(dim=-1).argmax())


# --- decoding ---------------------------------------------------------------------------------

LOSSLESS = [
    # writer, subtype, file sample rate, channels
    (media.write_wav, "PCM_16", 16000, 1),
    (media.write_wav, "PCM_U8", 8000, 1),
    (media.write_wav, "PCM_24", 44100, 2),
    (media.write_wav, "FLOAT", 48000, 1),
    (media.write_wav, "PCM_32", 22050, 6),
    (media.write_flac, "PCM_24", 48000, 2),
    (media.write_flac, "PCM_16", 22050, 1),
]


@pytest.mark.parametrize(("writer", "subtype", "rate", "channels"), LOSSLESS)
def test_lossless_files_keep_duration_pitch_and_level(tmp_path, writer, subtype, rate, channels):
    source = media.tone(0.5, rate, freq=440.0, amplitude=0.3, channels=channels)
    suffix = writer.__name__.removeprefix("write_")
    path = writer(tmp_path / f"tone_{subtype}.{suffix}", source, rate, subtype)

    wave = load_audio(path, TARGET_RATE)

    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert abs(len(wave) - len(source) * TARGET_RATE / rate) <= 1  # well under a millisecond
    assert dominant_frequency(wave, TARGET_RATE) == pytest.approx(440.0, abs=2.0)
    assert rms(wave) == pytest.approx(rms(source[:, 0]), rel=0.03)


def test_wav_at_target_rate_is_returned_sample_for_sample(tmp_path):
    source = media.tone(0.25, TARGET_RATE, freq=330.0)
    wave = load_audio(media.write_wav(tmp_path / "a.wav", source, TARGET_RATE), TARGET_RATE)
    np.testing.assert_allclose(wave.numpy(), source[:, 0], atol=1e-4)


def test_load_audio_resamples_to_the_requested_rate(tmp_path):
    path = media.write_wav(tmp_path / "a.wav", media.tone(0.5, 48000, freq=440.0), 48000)
    wave = load_audio(path, sample_rate=8000)
    assert len(wave) == 4000
    assert dominant_frequency(wave, 8000) == pytest.approx(440.0, abs=2.0)


def test_stereo_is_downmixed_by_averaging_channels(tmp_path):
    left = media.tone(0.25, TARGET_RATE, freq=300.0, amplitude=0.4)
    stereo = np.concatenate([left, np.zeros_like(left)], axis=1)
    wave = load_audio(media.write_wav(tmp_path / "lr.wav", stereo, TARGET_RATE), TARGET_RATE)
    np.testing.assert_allclose(wave.numpy(), left[:, 0] / 2, atol=1e-4)


def test_stereo_aac_is_downmixed_by_averaging_channels(tmp_path):
    left = media.tone(0.5, 44100, freq=300.0, amplitude=0.4)
    stereo = np.concatenate([left, np.zeros_like(left)], axis=1)
    wave = load_audio(media.write_m4a(tmp_path / "lr.m4a", stereo, 44100), TARGET_RATE)
    assert rms(wave) == pytest.approx(rms(left) / 2, rel=0.1)


def _write_mp4_with_audio(path, audio, rate):
    frames = np.full((13, 32, 48, 3), 128, dtype=np.uint8)
    return media.write_mp4(path, frames, fps=FPS, audio=audio, sample_rate=rate)


LOSSY = [
    pytest.param("ogg", media.write_ogg, 16000, 1, id="ogg-vorbis"),
    pytest.param("m4a", media.write_m4a, 16000, 1, id="m4a-aac-16k"),
    pytest.param("m4a", media.write_m4a, 44100, 2, id="m4a-aac-44k-stereo"),
    pytest.param("mp3", media.write_mp3, 16000, 1, id="mp3-16k", marks=NO_MP3),
    pytest.param("mp3", media.write_mp3, 44100, 2, id="mp3-44k-stereo", marks=NO_MP3),
    pytest.param("mp4", _write_mp4_with_audio, 16000, 1, id="mp4-h264-aac"),
]


@pytest.mark.parametrize(("suffix", "writer", "rate", "channels"), LOSSY)
def test_lossy_files_keep_duration_and_pitch(tmp_path, suffix, writer, rate, channels):
    source = media.tone(0.5, rate, freq=440.0, amplitude=0.3, channels=channels)
    wave = load_audio(writer(tmp_path / f"tone.{suffix}", source, rate), TARGET_RATE)

    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert abs(len(wave) / TARGET_RATE - 0.5) <= 0.05
    assert dominant_frequency(wave, TARGET_RATE) == pytest.approx(440.0, abs=3.0)
    assert rms(wave) == pytest.approx(rms(source[:, 0]), rel=0.15)


@pytest.mark.parametrize("suffix", ["m4a", "mp4"])
def test_aac_frame_padding_is_cut_to_the_encoded_length(tmp_path, suffix):
    # 8193 samples fill 8 AAC frames of 1024 and one more sample: the encoder pads 1023 zeros.
    source = media.tone(8193 / TARGET_RATE, TARGET_RATE, freq=440.0)
    path = (
        media.write_m4a(tmp_path / "odd.m4a", source, TARGET_RATE)
        if suffix == "m4a"
        else _write_mp4_with_audio(tmp_path / "odd.mp4", source, TARGET_RATE)
    )
    assert abs(len(load_audio(path)) - 8193) <= TARGET_RATE // 1000 * 2  # 2 ms


def test_silent_file_loads_as_zeros(tmp_path):
    path = media.write_wav(tmp_path / "silence.wav", media.silence(0.5, 22050), 22050)
    wave = load_audio(path)
    assert len(wave) == 8000
    assert torch.count_nonzero(wave) == 0


@pytest.mark.parametrize(("rate", "samples", "expected"), [(16000, 10, 10), (48000, 30, 10)])
def test_very_short_file_loads(tmp_path, rate, samples, expected):
    source = media.tone(samples / rate, rate, freq=1000.0)
    assert len(source) == samples
    wave = load_audio(media.write_wav(tmp_path / "short.wav", source, rate))
    assert len(wave) == expected


def test_file_without_samples_is_rejected_as_empty(tmp_path):
    path = media.write_wav(tmp_path / "no_samples.wav", np.zeros((0, 1), np.float32), TARGET_RATE)
    with pytest.raises(AudioError, match=r"no_samples\.wav.*empty"):
        load_audio(path)


def test_zero_byte_file_is_rejected_as_empty(tmp_path):
    path = tmp_path / "zero.m4a"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.m4a.*empty"):
        load_audio(path)


@pytest.mark.parametrize("name", ["garbage.wav", "garbage.flac", "garbage.mp4", "garbage.m4a"])
def test_garbage_bytes_are_rejected_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is certainly not audio\n" * 64)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert name in str(caught.value)
    assert "not decodable" in str(caught.value)
    assert caught.value.path == path


def test_video_without_audio_stream_is_rejected(tmp_path):
    frames = np.zeros((5, 16, 16, 3), dtype=np.uint8)
    path = media.write_mp4(tmp_path / "silent_film.mp4", frames, fps=FPS)
    with pytest.raises(AudioError, match=r"silent_film\.mp4.*no audio stream"):
        load_audio(path)


def test_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match=r"nowhere\.wav.*no such file"):
        load_audio(tmp_path / "nowhere.wav")


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_huge_finite_samples_decode_and_give_finite_log_mel(tmp_path, subtype):
    path = tmp_path / "loud.wav"
    sf.write(path, media.tone(0.2, TARGET_RATE)[:, 0] * 1e30, TARGET_RATE, subtype=subtype)
    wave = load_audio(path)
    assert torch.isfinite(wave).all() and float(wave.abs().max()) > 1e29
    log_mel = log_mel_from_file(path)
    assert torch.isfinite(log_mel).all()
    # The same as the unscaled tone's features, shifted by log(1e60) in every band it reaches.
    quiet = MelFrontend()(torch.from_numpy(media.tone(0.2, TARGET_RATE)[:, 0]))
    band = int(quiet.mean(dim=0).argmax())
    assert (log_mel - quiet)[:, band].mean() == pytest.approx(60 * math.log(10.0), abs=0.01)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_samples_are_rejected_naming_the_file(tmp_path, bad):
    samples = media.tone(0.1, TARGET_RATE)[:, 0].astype(np.float64)
    samples[100] = bad
    path = tmp_path / "broken.wav"
    sf.write(path, samples, TARGET_RATE, subtype="DOUBLE")
    with pytest.raises(AudioError, match=r"broken\.wav: .*NaN or infinite"):
        load_audio(path)


def test_frontend_rejects_non_finite_waveforms():
    with pytest.raises(ValueError, match="MelFrontend needs a finite waveform"):
        MelFrontend()(torch.tensor([0.0, float("nan"), 1.0]))


def test_bad_sample_rate_is_rejected(tmp_path):
    path = media.write_wav(tmp_path / "a.wav", media.tone(0.1, TARGET_RATE), TARGET_RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, sample_rate=0)


# --- MelConfig --------------------------------------------------------------------------------


def test_default_config_matches_the_design():
    config = MelConfig()
    assert (config.sample_rate, config.fps, config.n_mels) == (16000, 25, 80)
    assert config.hop_length == 640


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fps": 24}, "multiple of fps"),
        ({"win_length": 2048}, "must not exceed n_fft"),
        ({"f_max": 9000.0}, "Nyquist"),
        ({"f_min": 8000.0}, "f_min < f_max"),
        ({"n_mels": 0}, "n_mels must be a positive integer"),
        ({"sample_rate": 16000.5}, "sample_rate must be a positive integer"),
        ({"log_floor": 0.0}, "log_floor must be > 0"),
        ({"f_max": float("nan")}, "f_max must be a finite number"),
    ],
)
def test_config_validation_names_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        MelConfig(**overrides)


@pytest.mark.parametrize("config", [MelConfig(), MelConfig(sample_rate=22050, f_max=11025, n_mels=64)])
def test_config_round_trips_through_json(config):
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["hop_length"] == config.sample_rate // config.fps
    assert MelConfig.from_dict(stored) == config
    assert MelConfig.from_dict(stored).to_dict() == stored


def test_configs_that_differ_have_different_dicts():
    assert MelConfig().to_dict() != MelConfig(n_mels=64).to_dict()


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown MelConfig keys.*n_melz"):
        MelConfig.from_dict({**MelConfig().to_dict(), "n_melz": 80})


def test_from_dict_rejects_a_contradicting_hop():
    with pytest.raises(ValueError, match="hop_length"):
        MelConfig.from_dict({**MelConfig().to_dict(), "hop_length": 320})


def test_from_dict_fills_missing_fields_with_defaults():
    assert MelConfig.from_dict({"n_mels": 40}) == MelConfig(n_mels=40)


# --- MelFrontend ------------------------------------------------------------------------------

# Centred frames every 640 samples: 1 + samples // 640 (docs/design.md, "Frames and time").
FRAME_COUNTS = [(1, 1), (639, 1), (640, 2), (641, 2), (1280, 3), (16000, 26), (16001, 26)]


@pytest.fixture(scope="module")
def frontend() -> MelFrontend:
    return MelFrontend()


@pytest.mark.parametrize(("samples", "frames"), FRAME_COUNTS)
def test_frame_count_follows_the_contract(frontend, samples, frames):
    log_mel = frontend(torch.randn(samples) * 0.1)
    assert log_mel.shape == (frames, 80)
    assert frontend.config.num_frames(samples) == frames
    assert log_mel.dtype == torch.float32 and torch.isfinite(log_mel).all()


def test_batched_input_matches_one_by_one(frontend):
    waves = torch.randn(2, 3, 3000) * 0.1
    batched = frontend(waves)
    assert batched.shape == (2, 3, frontend.config.num_frames(3000), 80)
    torch.testing.assert_close(batched[1, 2], frontend(waves[1, 2]), atol=1e-4, rtol=1e-4)


def test_double_input_gives_float32(frontend):
    assert frontend(torch.zeros(1000, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.parametrize("wave", [torch.zeros(0), torch.zeros(100, dtype=torch.int16)])
def test_unusable_waveforms_are_rejected(frontend, wave):
    with pytest.raises(ValueError, match="MelFrontend needs"):
        frontend(wave)


def test_silence_sits_at_the_log_floor(frontend):
    log_mel = frontend(torch.zeros(4000))
    assert torch.all(log_mel == math.log(frontend.config.log_floor))


def test_louder_input_gives_higher_log_mel(frontend):
    quiet = frontend(torch.from_numpy(media.tone(0.2, TARGET_RATE, amplitude=0.05)[:, 0]))
    loud = frontend(torch.from_numpy(media.tone(0.2, TARGET_RATE, amplitude=0.5)[:, 0]))
    # Power scales with amplitude squared: +log(100) in every band the tone reaches.
    peak_band = int(quiet.mean(dim=0).argmax())
    assert (loud - quiet)[:, peak_band].mean() == pytest.approx(math.log(100.0), abs=0.01)


def _slaney_mel(hz: float) -> float:
    """Slaney's mel scale: linear (3 bands per 200 Hz) below 1 kHz, logarithmic above."""
    if hz < 1000.0:
        return hz * 3.0 / 200.0
    return 15.0 + 27.0 * math.log(hz / 1000.0) / math.log(6.4)


@pytest.mark.parametrize("freq", [500.0, 3000.0])
def test_tone_peaks_in_its_slaney_mel_band(frontend, freq):
    config = frontend.config
    # Band k is centred on point k+1 of n_mels + 2 points evenly spaced in mel, f_min..f_max.
    expected = _slaney_mel(freq) / _slaney_mel(config.f_max) * (config.n_mels + 1) - 1
    log_mel = frontend(torch.from_numpy(media.tone(0.3, TARGET_RATE, freq=freq)[:, 0]))
    assert int(log_mel.mean(dim=0).argmax()) == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize("seconds", [0.52, 1.0, 1.96])
def test_click_lands_on_the_frame_centred_on_it(frontend, seconds):
    audio = media.add_click(media.silence(2.2, TARGET_RATE), TARGET_RATE, seconds)
    log_mel = frontend(torch.from_numpy(audio[:, 0]))
    assert peak_energy_frame(log_mel) == round(seconds * FPS)


ALIGNMENT_FILES = [
    pytest.param("wav", media.write_wav, 16000, id="wav-16k"),
    pytest.param("wav", media.write_wav, 44100, id="wav-44k"),
    pytest.param("flac", media.write_flac, 48000, id="flac-48k"),
    pytest.param("m4a", media.write_m4a, 16000, id="m4a-aac"),
    pytest.param("mp3", media.write_mp3, 16000, id="mp3", marks=NO_MP3),
    pytest.param("mp4", _write_mp4_with_audio, 16000, id="mp4-h264-aac"),
]


@pytest.mark.parametrize(("suffix", "writer", "rate"), ALIGNMENT_FILES)
def test_click_at_one_second_in_a_file_peaks_at_frame_25(tmp_path, frontend, suffix, writer, rate):
    audio = media.add_click(media.silence(1.5, rate), rate, at_seconds=1.0)
    log_mel = log_mel_from_file(writer(tmp_path / f"click.{suffix}", audio, rate), frontend)
    assert log_mel.shape[-1] == 80
    assert abs(log_mel.shape[0] - frontend.config.num_frames(int(1.5 * TARGET_RATE))) <= 1
    assert abs(peak_energy_frame(log_mel) - 25) <= 1


def test_frontend_with_another_config(tmp_path):
    config = MelConfig(sample_rate=8000, n_fft=640, win_length=640, n_mels=40, f_max=4000.0)
    path = media.write_wav(tmp_path / "a.wav", media.tone(1.0, 22050), 22050)
    log_mel = log_mel_from_file(path, MelFrontend(config))
    assert log_mel.shape == (config.num_frames(8000), 40)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_frontend_runs_on_gpu(tmp_path, frontend):
    path = media.write_wav(tmp_path / "a.wav", media.tone(0.5, TARGET_RATE), TARGET_RATE)
    on_gpu = log_mel_from_file(path, MelFrontend().to("cuda"))
    assert on_gpu.device.type == "cuda"
    on_cpu = log_mel_from_file(path, frontend)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-3, rtol=1e-3)
