"""The synthetic corpora: determinism, the frame contract, exact ground truth, context, faces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cause_pl.au import AU_MAX, NUM_AUS, au_index
from cause_pl.synthetic.face_identity import random_identity
from cause_pl.synthetic.faces import draw_face, synth_face
from cause_pl.synthetic.speech import iter_speech_corpus, synth_utterance
from cause_pl.synthetic.speech_aus import au_tracks_from_latents

HOP = 640


def _log_band_spectrum(wave: np.ndarray, hop: int = HOP, n_fft: int = 1024, bands: int = 24) -> np.ndarray:
    """Centred STFT frames (1 + len // hop of them) pooled into log-spaced log-power bands."""
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    starts = np.arange(1 + len(wave) // hop) * hop
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.unique(np.geomspace(2, power.shape[1], bands + 1).astype(int))
    return np.log(np.add.reduceat(power, edges[:-1], axis=1) + 1e-6)


def _stack_context(features: np.ndarray, context: int) -> np.ndarray:
    padded = np.pad(features, ((context, context), (0, 0)), mode="edge")
    frames = len(features)
    return np.concatenate([padded[k : k + frames] for k in range(2 * context + 1)], axis=1)


def _design(utterances, context: int) -> tuple[np.ndarray, np.ndarray]:
    inputs = [_stack_context(_log_band_spectrum(u.wave), context)[u.valid] for u in utterances]
    targets = [u.aus[u.valid] for u in utterances]
    return np.concatenate(inputs), np.concatenate(targets)


def _held_out_mse(train, test, context: int) -> np.ndarray:
    """Per-AU test MSE of a ridge regression from audio features (with +-context frames) to AUs."""
    x, y = _design(train, context)
    x_test, y_test = _design(test, context)
    mean, std = x.mean(0), x.std(0) + 1e-6
    a = np.c_[(x - mean) / std, np.ones(len(x))]
    a_test = np.c_[(x_test - mean) / std, np.ones(len(x_test))]
    weights = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ y)
    return ((a_test @ weights - y_test) ** 2).mean(0)


@pytest.fixture(scope="module")
def corpus():
    return list(iter_speech_corpus(10, 4, seed=0, min_seconds=2.0, max_seconds=4.0))


# --- speech -----------------------------------------------------------------------------------


def test_utterance_is_deterministic_per_item_and_differs_between_items():
    first, again = synth_utterance(2, 5, seed=3), synth_utterance(2, 5, seed=3)
    for name in ("wave", "aus", "valid"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.key == "spk002_utt0005" and first.speaker == "spk002"
    other_index, other_seed = synth_utterance(2, 6, seed=3), synth_utterance(2, 5, seed=4)
    for other in (other_index, other_seed):
        assert len(other.wave) != len(first.wave) or not np.array_equal(other.wave, first.wave)


def test_corpus_order_matches_direct_calls(corpus):
    assert [u.key for u in corpus[:5]] == [f"spk000_utt{i:04d}" for i in range(4)] + ["spk001_utt0000"]
    direct = synth_utterance(1, 2, seed=0, min_seconds=2.0, max_seconds=4.0)
    np.testing.assert_array_equal(corpus[6].wave, direct.wave)
    np.testing.assert_array_equal(corpus[6].aus, direct.aus)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050])
def test_shapes_dtypes_ranges_and_frame_count(sample_rate):
    hop = sample_rate // 25
    for index, seconds in enumerate(np.linspace(0.6, 5.0, 7)):
        u = synth_utterance(index % 3, index, sample_rate=sample_rate, min_seconds=seconds, max_seconds=seconds)
        samples = len(u.wave)
        assert abs(samples - seconds * sample_rate) <= 1
        assert u.wave.dtype == np.float32 and u.wave.ndim == 1 and np.abs(u.wave).max() <= 1.0
        assert u.aus.dtype == np.float32 and u.aus.shape == (1 + samples // hop, NUM_AUS)
        assert u.valid.dtype == np.bool_ and u.valid.shape == (len(u.aus),)
        assert u.aus.min() >= 0.0 and u.aus.max() <= AU_MAX
        assert u.sample_rate == sample_rate and u.fps == 25 and "." not in u.key


def test_aus_are_the_ground_truth_function_of_latents_with_failures_zeroed(corpus):
    for u in corpus:
        truth = au_tracks_from_latents(u.latents)
        np.testing.assert_array_equal(u.aus[u.valid], truth[u.valid])
        assert not u.aus[~u.valid].any()
    failed = [u for u in corpus if not u.valid.all()]
    assert 0 < len(failed) < len(corpus) / 3


def test_an_aus_frame_depends_on_past_and_future_latents():
    latents = synth_utterance(0, 0).latents
    frame = len(latents.envelope) // 2
    envelope = latents.envelope.copy()
    envelope[frame] += 0.5
    changed = au_tracks_from_latents(dataclasses.replace(latents, envelope=envelope))
    moved = np.nonzero(np.abs(changed - au_tracks_from_latents(latents)).max(axis=1) > 1e-4)[0]
    assert moved.min() < frame - 1 and moved.max() > frame + 1


def test_audio_loudness_follows_the_envelope_and_pauses_are_silent(corpus):
    for u in corpus[:8]:
        energy = _log_band_spectrum(u.wave).max(axis=1)
        envelope = u.latents.envelope
        assert np.corrcoef(energy, envelope)[0, 1] > 0.7
        assert energy[envelope > 0.5].mean() - energy[envelope < 0.01].mean() > 5.0  # > ~20 dB


def test_most_aus_vary(corpus):
    aus = np.concatenate([u.aus[u.valid] for u in corpus])
    assert (aus.std(axis=0) > 0.15).sum() >= 14


def test_context_beats_a_single_frame_and_blinks_stay_unpredictable(corpus):
    train = [u for k, u in enumerate(corpus) if k % 5]
    test = [u for k, u in enumerate(corpus) if k % 5 == 0]
    single, windowed = _held_out_mse(train, test, 0), _held_out_mse(train, test, 6)
    blink = au_index(45)
    speech_aus = np.arange(NUM_AUS) != blink
    assert windowed[speech_aus].mean() < 0.75 * single[speech_aus].mean()
    y_train = np.concatenate([u.aus[u.valid] for u in train])
    y_test = np.concatenate([u.aus[u.valid] for u in test])
    mean_baseline = ((y_test - y_train.mean(0)) ** 2).mean(0)
    assert windowed[speech_aus].mean() < 0.5 * mean_baseline[speech_aus].mean()
    assert windowed[blink] > 0.9 * mean_baseline[blink]


@pytest.mark.parametrize(
    "kwargs",
    [{"sample_rate": 16001}, {"fps": 0}, {"min_seconds": 3.0, "max_seconds": 2.0}, {"seed": -1}],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match="synth_utterance"):
        synth_utterance(0, 0, **kwargs)


# --- faces ------------------------------------------------------------------------------------


def _pixels(aus: np.ndarray, identity, size: int = 128) -> np.ndarray:
    return np.asarray(draw_face(aus, identity, size), dtype=np.float64)


def _with(code: int, intensity: float) -> np.ndarray:
    aus = np.zeros(NUM_AUS, dtype=np.float32)
    aus[au_index(code)] = intensity
    return aus


IDENTITIES = [random_identity(np.random.default_rng(k)) for k in range(3)]
ALL_CODES = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45]


def test_face_is_deterministic_and_identity_repeats():
    face = synth_face(7, seed=1)
    assert face.image.tobytes() == synth_face(7, seed=1).image.tobytes()
    np.testing.assert_array_equal(face.aus, synth_face(7, seed=1).aus)
    assert face.image.tobytes() != synth_face(8, seed=1).image.tobytes()
    same_person = synth_face(7 + 50, seed=1)
    assert face.identity_id == same_person.identity_id == 7 and "." not in face.key
    assert face.image.getpixel((0, 0)) == same_person.image.getpixel((0, 0))  # same background


@pytest.mark.parametrize("code", ALL_CODES)
def test_each_au_changes_the_face_more_as_it_grows(code):
    for identity in IDENTITIES:
        neutral = _pixels(np.zeros(NUM_AUS, dtype=np.float32), identity)
        changes = [np.abs(_pixels(_with(code, level), identity) - neutral) for level in (1.25, 2.5, 5.0)]
        assert (changes[-1].max(axis=2) > 30).sum() >= 20  # a visible patch, not a faint smudge
        means = [change.mean() for change in changes]
        assert 0 < means[0] < means[1] < means[2]


LOCALISED = [
    (45, "eyes", "mouth"),
    (5, "eyes", "mouth"),
    (1, "brows", "mouth"),
    (26, "mouth", "eyes"),
    (12, "mouth", "eyes"),
    (25, "mouth", "brows"),
]


@pytest.mark.parametrize(("code", "changes", "unchanged"), LOCALISED)
def test_aus_change_only_their_part_of_the_face(code, changes, unchanged):
    rows = {"brows": slice(38, 54), "eyes": slice(52, 64), "mouth": slice(82, 102)}
    identity = IDENTITIES[0]
    difference = np.abs(_pixels(_with(code, 5.0), identity) - _pixels(np.zeros(NUM_AUS, np.float32), identity))
    assert difference[rows[changes]].mean() > 1.0
    assert difference[rows[unchanged]].max() == 0.0


def test_identities_differ():
    neutral = np.zeros(NUM_AUS, dtype=np.float32)
    images = [draw_face(neutral, random_identity(np.random.default_rng(k)), 64).tobytes() for k in range(6)]
    assert len(set(images)) == 6


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_face_sizes(size):
    face = synth_face(3, size=size)
    assert face.image.size == (size, size) and face.image.mode == "RGB"
    assert np.asarray(face.image).std() > 10  # not a blank canvas


def test_bad_face_arguments_are_rejected():
    with pytest.raises(ValueError, match="aus"):
        draw_face(np.zeros(5), IDENTITIES[0])
    with pytest.raises(ValueError, match="size"):
        draw_face(np.zeros(NUM_AUS), IDENTITIES[0], size=8)
    with pytest.raises(ValueError, match="num_identities"):
        synth_face(0, num_identities=0)


def test_sampled_expressions_are_sparse_and_correlated():
    aus = np.stack([synth_face(k, size=32).aus for k in range(300)])
    assert aus.dtype == np.float32 and aus.min() >= 0 and aus.max() <= AU_MAX
    assert np.median((aus > 0).sum(axis=1)) <= 3
    assert (aus == 0).all(axis=1).any() and (aus > 3).any()
    smile = np.corrcoef(aus[:, au_index(6)], aus[:, au_index(12)])[0, 1]
    surprise = np.corrcoef(aus[:, au_index(1)], aus[:, au_index(2)])[0, 1]
    assert smile > 0.4 and surprise > 0.4
