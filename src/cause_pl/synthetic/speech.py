"""Procedural speech + AU corpus with exact ground truth: the speech half.

Each utterance is a voiced, speech-like signal (harmonics shaped by moving formants, syllable
envelopes, phrase pauses, consonant noise bursts) and a 25 fps track of the 17 AU intensities,
computed from the utterance's latents by :func:`cause_pl.synthetic.speech_aus.au_tracks_from_latents`.

Everything is deterministic from ``(seed, speaker, index)``: item k is identical whatever order
or process produces it. Splitting speakers into train/val/test is left to the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from cause_pl.synthetic.speech_aus import SpeechLatents, au_tracks_from_latents

_SPEAKER_STREAM = 1


_UTTERANCE_STREAM = 2


_CONTROL_STEPS_PER_FRAME = 8
"""Control signals (envelope, pitch, formants) are sampled 8x per video frame (5 ms at 25 fps)."""


_MAX_HARMONIC_HZ = 5000.0


_PITCH_RANGE_HZ = (90.0, 250.0)


# (openness, frontness) of a few vowels: openness ~ F1 height, frontness ~ F2 height.
_VOWELS = np.array([[1.0, 0.45], [0.0, 1.0], [0.05, 0.0], [0.5, 0.8], [0.55, 0.1], [0.8, 0.75]])


@dataclass(frozen=True, eq=False)
class SyntheticUtterance:
    """One utterance: audio, its AU track (0 where face tracking failed) and its latents."""

    key: str
    speaker: str
    wave: np.ndarray
    sample_rate: int
    fps: int
    aus: np.ndarray
    valid: np.ndarray
    latents: SpeechLatents


@dataclass(frozen=True)
class _Voice:
    base_pitch_hz: float
    formant_scale: float
    spectral_tilt: float
    expressiveness: float
    syllables_per_second: float

    @property
    def traits(self) -> np.ndarray:
        """Pitch height, vocal-tract length (inverse formant scale), expressiveness in -1..1."""
        low, high = np.log(_PITCH_RANGE_HZ)
        height = 2 * (np.log(self.base_pitch_hz) - low) / (high - low) - 1
        tract = (1.025 - self.formant_scale) / 0.175
        return np.array([height, tract, 2 * self.expressiveness - 1], dtype=np.float32)


def _speaker_voice(seed: int, speaker: int) -> _Voice:
    rng = np.random.default_rng([seed, _SPEAKER_STREAM, speaker])
    height = rng.uniform()
    return _Voice(
        base_pitch_hz=float(np.exp(np.log(_PITCH_RANGE_HZ[0]) + height * np.log(250 / 90))),
        formant_scale=float(np.clip(0.87 + 0.3 * height + rng.normal(0, 0.04), 0.85, 1.2)),
        spectral_tilt=float(rng.uniform(0.7, 1.2)),
        expressiveness=float(rng.uniform()),
        syllables_per_second=float(rng.uniform(3.2, 5.8)),
    )


def _smooth(track: np.ndarray, taps: int) -> np.ndarray:
    padded = np.pad(track, (taps // 2, taps - 1 - taps // 2), mode="edge")
    return np.convolve(padded, np.ones(taps) / taps, mode="valid")


_Controls = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Control tracks: envelope, pitch, openness, frontness, noise."""


def _plan_controls(rng: np.random.Generator, voice: _Voice, times: np.ndarray, seconds: float) -> _Controls:
    """Control tracks on the time grid ``times``: envelope, pitch, openness, frontness, noise."""
    env, noise = np.zeros_like(times), np.zeros_like(times)
    pitch, in_phrase = np.zeros_like(times), np.zeros_like(times, dtype=bool)
    vowel_open, vowel_front = np.full_like(times, 0.3), np.full_like(times, 0.5)
    t = rng.uniform(0.15, 0.4)
    while t < seconds - 0.45:
        phrase_start, syllables = t, int(rng.integers(3, 10))
        for position in range(syllables):
            duration = rng.uniform(0.7, 1.3) / voice.syllables_per_second
            if t + duration > seconds - 0.15:
                break
            consonant = float(np.clip(0.25 * duration, 0.03, 0.07))
            nucleus, end = t + consonant, t + duration
            loud = rng.uniform(0.6, 1.0) * (0.8 if position == syllables - 1 else 1.0)
            attack = np.clip((times - nucleus) / 0.025, 0, 1)
            release = np.clip((end - times) / (0.4 * duration), 0, 1)
            shape = np.sin(0.5 * np.pi * attack) * np.sin(0.5 * np.pi * release) ** 2
            env = np.maximum(env, loud * shape * (times < end))
            burst = (times >= t) & (times < nucleus)
            noise[burst] = rng.uniform(0.05, 0.35) * np.sin(np.pi * (times[burst] - t) / consonant)
            vowel = _VOWELS[rng.integers(len(_VOWELS))]
            vowel_open[times >= t], vowel_front[times >= t] = vowel
            if rng.uniform() < 0.25 + 0.25 * voice.expressiveness:
                height = rng.uniform(2, 3 + 3 * voice.expressiveness)
                pitch += height * np.exp(-0.5 * ((times - (nucleus + end) / 2) / 0.07) ** 2)
            t = end
        phrase = (times >= phrase_start) & (times < t)
        pitch[phrase] += 1.5 - 3.5 * (times[phrase] - phrase_start) / max(t - phrase_start, 1e-3)
        in_phrase |= phrase
        if rng.uniform() < 0.3:  # question-like final rise
            pitch += 4.0 * np.clip((times - (t - 0.3)) / 0.3, 0, 1) * (times < t)
        t += rng.uniform(0.2, 0.6)
    if in_phrase.any():  # glide through pauses so pitch moves only while audible
        pitch = np.interp(times, times[in_phrase], pitch[in_phrase])
    taps = max(1, round(0.04 / (times[1] - times[0])))
    return env, pitch, _smooth(vowel_open, taps), _smooth(vowel_front, taps), noise


def _blinks(rng: np.random.Generator, frames: int, fps: int) -> np.ndarray:
    """Eyelid closure per frame: ~4-frame bumps at random times, ~3 per 10 s."""
    closure = np.zeros(frames)
    count = rng.poisson(0.3 * frames / fps)
    for start in rng.uniform(-2, frames, size=count):
        since = np.arange(frames) - start
        bump = np.where((since > 0) & (since < 4.5), np.sin(np.pi * since / 4.5), 0.0)
        closure = np.maximum(closure, rng.uniform(0.6, 1.0) * bump)
    return closure


def _tracking_failures(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Valid-frame mask: one utterance in ten loses the face for a short run of frames."""
    valid = np.ones(frames, dtype=bool)
    if rng.uniform() < 0.1 and frames > 10:
        length = int(rng.integers(5, min(26, frames // 2)))
        start = int(rng.integers(0, frames - length))
        valid[start : start + length] = False
    return valid


def _harmonic_amplitudes(
    voice: _Voice, f0: np.ndarray, env: np.ndarray, openness: np.ndarray, frontness: np.ndarray
) -> np.ndarray:
    """(harmonics, control steps) amplitudes: glottal tilt times three formant resonances."""
    count = int(_MAX_HARMONIC_HZ // f0.min())
    harmonic = np.arange(1, count + 1)[:, None]
    freq = harmonic * f0[None, :]
    scale = voice.formant_scale
    formants = ((250 + 600 * openness) * scale, (850 + 1450 * frontness) * scale, np.full_like(f0, 2600 * scale))
    shaping = np.full_like(freq, 0.01)
    for centre, bandwidth, gain in zip(formants, (110.0, 150.0, 220.0), (1.0, 0.6, 0.25), strict=True):
        shaping += gain / (1 + ((freq - centre[None, :]) / (bandwidth / 2)) ** 2)
    amplitude = shaping * harmonic ** (-voice.spectral_tilt) * env[None, :]
    return np.where(freq < _MAX_HARMONIC_HZ, amplitude, 0.0).astype(np.float32)


def _synthesise(
    rng: np.random.Generator, voice: _Voice, controls: _Controls, step_seconds: float, samples: int, rate: int
) -> np.ndarray:
    env, pitch, openness, frontness, noise_env = controls
    f0 = voice.base_pitch_hz * 2.0 ** (pitch / 12)
    position = np.arange(samples) / (rate * step_seconds)
    below = np.minimum(position.astype(np.int64), len(env) - 2)
    frac = (position - below).astype(np.float32)

    def upsample(track: np.ndarray) -> np.ndarray:
        """Linear interpolation from the control grid to audio samples (last axis)."""
        return track[..., below] * (1 - frac) + track[..., below + 1] * frac

    phase = (2 * np.pi * np.cumsum(upsample(f0)) / rate) % (2 * np.pi)
    amplitudes = upsample(_harmonic_amplitudes(voice, f0, env, openness, frontness))
    harmonics = np.arange(1, len(amplitudes) + 1, dtype=np.float32)[:, None]
    voiced = np.einsum("ks,ks->s", amplitudes, np.sin(harmonics * phase.astype(np.float32)))
    voiced /= max(np.abs(voiced).max(), 1e-6)
    white = rng.standard_normal(samples + 1).astype(np.float32)
    hiss = np.diff(white) * (0.5 * upsample(noise_env) + 0.02 * upsample(env)) + 0.002 * white[1:]
    wave = 0.8 * voiced + 0.5 * hiss
    return np.clip(wave / max(1.0, np.abs(wave).max()), -1.0, 1.0).astype(np.float32)


def synth_utterance(
    speaker: int,
    index: int,
    *,
    seed: int = 0,
    sample_rate: int = 16000,
    fps: int = 25,
    min_seconds: float = 2.0,
    max_seconds: float = 6.0,
) -> SyntheticUtterance:
    """Utterance ``index`` of ``speaker``; identical for identical arguments.

    The wave has S samples and the AU track ``1 + S // (sample_rate // fps)`` frames.
    """
    for name, value in (("speaker", speaker), ("index", index), ("seed", seed)):
        if value < 0:
            raise ValueError(f"synth_utterance: {name} must be >= 0, got {value}")
    if fps <= 0 or sample_rate <= 0 or sample_rate % fps:
        raise ValueError(f"synth_utterance: sample_rate ({sample_rate}) must be a multiple of fps ({fps})")
    if not 0.5 <= min_seconds <= max_seconds:
        raise ValueError(f"synth_utterance: need 0.5 <= min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    voice = _speaker_voice(seed, speaker)
    rng = np.random.default_rng([seed, _UTTERANCE_STREAM, speaker, index])
    samples = round(rng.uniform(min_seconds, max_seconds) * sample_rate)
    frames = 1 + samples // (sample_rate // fps)
    step_seconds = 1.0 / (fps * _CONTROL_STEPS_PER_FRAME)
    times = np.arange(frames * _CONTROL_STEPS_PER_FRAME + 1) * step_seconds
    controls = _plan_controls(rng, voice, times, samples / sample_rate)
    env, pitch, openness, frontness, _ = (c[::_CONTROL_STEPS_PER_FRAME][:frames] for c in controls)
    latents = SpeechLatents(
        env.astype(np.float32),
        pitch.astype(np.float32),
        openness.astype(np.float32),
        frontness.astype(np.float32),
        blink=_blinks(rng, frames, fps).astype(np.float32),
        voice=voice.traits,
    )
    valid = _tracking_failures(rng, frames)
    aus = np.where(valid[:, None], au_tracks_from_latents(latents), np.float32(0))
    return SyntheticUtterance(
        key=f"spk{speaker:03d}_utt{index:04d}",
        speaker=f"spk{speaker:03d}",
        wave=_synthesise(rng, voice, controls, step_seconds, samples, sample_rate),
        sample_rate=sample_rate,
        fps=fps,
        aus=aus,
        valid=valid,
        latents=latents,
    )


def iter_speech_corpus(
    num_speakers: int, utterances_per_speaker: int, *, seed: int = 0, **kwargs: Any
) -> Iterator[SyntheticUtterance]:
    """All utterances, speaker by speaker, index by index; ``kwargs`` go to :func:`synth_utterance`.

    Splitting into train/val/test is the caller's choice (by speaker for unseen-speaker tests).
    """
    for speaker in range(num_speakers):
        for index in range(utterances_per_speaker):
            yield synth_utterance(speaker, index, seed=seed, **kwargs)
