"""Hostile audio for ``estimate`` and ``animate``: damaged WAVs, containers without audio, NaN and huge samples.

What is readable is read (a truncated WAV gives the frames it holds, a header claiming 4 GiB the frames
the file holds, samples of 1e30 finite AUs); what is not is one line naming the file and the problem.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cause_pl.cli.command import EXIT_DATA, EXIT_OS
from tests.hostile.argv import animate
from tests.hostile.harness import Case, check_case, params


def estimate_of(name):
    return lambda k, w: ["estimate", getattr(k, name), "--ckpt", k.cause, "--out", w / "aus.csv"]


def au_rows(frames: int):
    """Check: aus.csv holds ``frames`` rows of finite AUs on 0..5."""

    def check(kit, work, stdout):
        with open(work / "aus.csv", newline="") as stream:
            rows = list(csv.reader(stream, skipinitialspace=True))
        values = np.array([[float(cell) for cell in row[5:]] for row in rows[1:]])
        assert values.shape == (frames, 17) and np.isfinite(values).all()
        assert values.min() >= 0 and values.max() <= 5

    return check


CASES = [
    Case("estimate-truncated-wav-reads-what-is-there", estimate_of("truncated_wav"), 0, makes=["aus.csv"],
         check=au_rows(13)),  # 0.5 s of the 1 s the header announces, at 25 fps
    Case("estimate-wav-header-claims-4GiB", estimate_of("huge_size_wav"), 0, makes=["aus.csv"], check=au_rows(26)),
    Case("estimate-huge-finite-samples-finite-aus", estimate_of("huge_wav"), 0, makes=["aus.csv"], check=au_rows(26)),
    Case("estimate-stereo-8khz-flac", estimate_of("stereo_flac"), 0, makes=["aus.csv"], check=au_rows(26)),
    Case("estimate-short-44khz-m4a", estimate_of("short_m4a"), 0, makes=["aus.csv"], check=au_rows(6)),
    Case("estimate-wav-header-claims-1-hz", estimate_of("one_hertz_wav"), EXIT_DATA,
         ["one_hertz.wav", "declares a sample rate of 1 Hz, below 4000 Hz"]),
    Case("estimate-wav-header-claims-100-channels", estimate_of("many_channels_wav"), EXIT_DATA,
         ["many_channels.wav", "declares 100 channels (1..64 supported)"]),
    Case("estimate-mp4-without-audio", estimate_of("video_only_mp4"), EXIT_DATA,
         ["video_only.mp4", "no audio stream (streams: video)"]),
    Case("estimate-directory-as-audio", estimate_of("audio_dir"), EXIT_OS,
         ["audio: is a directory, not a file", "folder.wav"]),
    Case("estimate-zero-length-m4a", estimate_of("empty_m4a"), EXIT_DATA, ["empty.m4a", "empty file (0 bytes)"]),
    Case("estimate-nan-in-float-wav", estimate_of("nan_wav"), EXIT_DATA, ["nan.wav", "NaN or infinite samples"]),
    Case("estimate-inf-in-float-wav", estimate_of("inf_wav"), EXIT_DATA, ["inf.wav", "NaN or infinite samples"]),
    Case("estimate-wav-without-samples", estimate_of("no_samples_wav"), EXIT_DATA,
         ["no_samples.wav", "the audio stream holds zero samples"]),
    Case("estimate-text-named-mp3", estimate_of("text_mp3"), EXIT_DATA, ["speech.mp3", "not decodable as audio"]),
    Case("animate-mp4-without-audio", lambda k, w: animate(k, w, audio=k.video_only_mp4), EXIT_DATA,
         ["video_only.mp4", "no audio stream"]),
    Case("animate-directory-as-audio", lambda k, w: animate(k, w, audio=k.audio_dir), EXIT_OS,
         ["--audio: is a directory, not a file", "folder.wav"]),
    Case("animate-nan-audio", lambda k, w: animate(k, w, audio=k.nan_wav), EXIT_DATA,
         ["nan.wav", "NaN or infinite samples"]),
    Case("animate-zero-length-m4a", lambda k, w: animate(k, w, audio=k.empty_m4a), EXIT_DATA,
         ["empty.m4a", "empty file (0 bytes)"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_audio_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
