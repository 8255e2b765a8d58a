"""stream_audio: bounded blocks whose concatenation is the whole-file decode, and headers that lie."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from cause_pl.media.audio import AudioError, load_audio, stream_audio
from tests.builders import media

TARGET_RATE = 16000


def whole_file_reference(path, rate: int) -> torch.Tensor:
    """What decoding everything at once gives: all samples, channel mean, one resample."""
    data, native = sf.read(str(path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1, dtype=np.float64).astype(np.float32))
    return torchaudio.functional.resample(mono, native, rate)


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (44100, 1), (8000, 1), (16000, 2)])
def test_blocks_concatenate_to_the_whole_file_decode(tmp_path, rate, channels):
    source = media.tone(2.3, rate, freq=440.0, amplitude=0.3, channels=channels)
    path = media.write_wav(tmp_path / "tone.wav", source, rate, subtype="FLOAT")
    blocks = list(stream_audio(path, TARGET_RATE, block_samples=4096))
    assert len(blocks) >= 4  # 2.3 s of the slowest rate, 8 kHz, is 18,400 samples
    torch.testing.assert_close(torch.cat(blocks), whole_file_reference(path, TARGET_RATE), rtol=0, atol=1e-5)


def test_block_size_bounds_every_block(tmp_path):
    rate, block_samples = 48000, 8192
    path = media.write_wav(tmp_path / "long.wav", media.tone(6.0, rate, channels=2), rate)
    sizes = [block.shape[0] for block in stream_audio(path, TARGET_RATE, block_samples=block_samples)]
    # one block of native input (block_samples over 2 channels) gives a third as many 16 kHz samples
    assert max(sizes) <= block_samples // 2 // 3 + 1
    assert sum(sizes) == len(load_audio(path))


def test_pyav_files_stream_like_they_load(tmp_path):
    rate = 44100
    path = media.write_m4a(tmp_path / "speech.m4a", media.tone(3.0, rate, freq=300.0, amplitude=0.3), rate)
    streamed = torch.cat(list(stream_audio(path, TARGET_RATE, block_samples=2048)))
    whole = load_audio(path)  # default blocks: 1 M samples, the whole file in one block
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-5)


def wav_header(rate: int, channels: int, data_bytes: int, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header declaring ``data_bytes`` of samples."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def test_a_header_claiming_one_hertz_is_refused_before_decoding(tmp_path):
    path = tmp_path / "one_hertz.wav"
    path.write_bytes(wav_header(rate=1, channels=1, data_bytes=65536) + bytes(65536))
    with pytest.raises(AudioError, match=r"one_hertz\.wav: declares a sample rate of 1 Hz, below 4000 Hz"):
        load_audio(path)


def test_a_header_claiming_gigabytes_reads_what_is_there(tmp_path):
    samples = (media.tone(1.0, TARGET_RATE, amplitude=0.5)[:, 0] * 32767).astype("<i2").tobytes()
    path = tmp_path / "liar.wav"
    path.write_bytes(wav_header(rate=TARGET_RATE, channels=1, data_bytes=0x7FFF0000) + samples)
    wave = load_audio(path)
    assert wave.shape == (TARGET_RATE,)
    assert float(wave.abs().max()) == pytest.approx(0.5, abs=1e-3)


def test_errors_surface_when_the_stream_is_read(tmp_path):
    blocks = stream_audio(tmp_path / "gone.wav")  # a generator: nothing is opened yet
    with pytest.raises(AudioError, match=r"gone\.wav: no such file"):
        next(blocks)
