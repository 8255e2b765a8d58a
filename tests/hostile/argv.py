"""Command lines of the commands under test, with the demo's good files by default and ``more`` flags last.

Each takes the :class:`~tests.hostile.inputs.Kit` ``k`` and the work folder ``w`` (outputs go there).
"""

from __future__ import annotations


def estimate(k, w, *more):
    return ["estimate", k.speech, "--ckpt", k.cause, "--out", w / "aus.csv", *more]


def animate(k, w, *more, audio=None, face=None, cause=None, gan=None):
    return [
        *("animate", "--audio", audio or k.speech, "--face", face or k.face),
        *("--cause_ckpt", cause or k.cause, "--ganimation_ckpt", gan or k.gan, "--out", w / "out.mp4", *more),
    ]


def table1(k, w, *more, shards=None, ckpt=None):
    return ["table1", "--shards", shards or k.vox, "--ckpt", ckpt or k.cause, "--out", w / "t1", *more]


def gan_eval(k, w, *more, shards=None, ckpt=None):
    flags = ["--shards", shards or k.faces, "--ckpt", ckpt or k.gan, "--out", w / "s.json", "--reader_steps", "2"]
    return ["ganimation-eval", *flags, *more]  # a later flag wins: ``more`` may override any of these
