"""``cause-pl mos-build`` and ``cause-pl mos-score`` end to end on the quick demo's checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from cause_pl.au import NUM_AUS
from cause_pl.cli.main import main
from cause_pl.evaluation.mos.score import read_manifest
from cause_pl.openface.writer import write_openface_style_csv
from tests.builders.mp4_probe import decode_mp4
from tests.evaluation.test_mos_score import write_ratings

LIKES = {"cnn": {"u1": 4, "u2": 5}, "truth": {"u1": 2, "u2": 3}}
"""How the simulated listeners rate each system's videos."""


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``cause-pl ARGS`` in this process: exit code, stdout and stderr."""
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def small_inputs(quick_demo, folder: Path) -> list[str | Path]:
    """mos-build arguments for two 1 s utterances and two systems: the demo's CNN and a folder of AU CSVs."""
    files = quick_demo.files
    wave, rate = soundfile.read(files["speech"], dtype="float32")
    truth = folder / "truth"
    truth.mkdir(parents=True)
    audio = []
    for index, name in enumerate(("u1", "u2")):
        soundfile.write(folder / f"{name}.wav", wave[index * rate : (index + 1) * rate], rate)
        aus = np.full((25, NUM_AUS), 1.5 + index, dtype=np.float32)
        write_openface_style_csv(aus, 25, truth / f"{name}.csv")
        audio.append(folder / f"{name}.wav")
    return [
        "--audio", *audio, "--face", files["face"], "--ganimation_ckpt", files["ganimation_checkpoint"],
        "--systems", f"cnn={files['cause_checkpoint']}", f"truth={truth}", "--no_align",
    ]  # fmt: skip


def build_small_kit(capsys, quick_demo, folder: Path, *extra: str) -> Path:
    """A kit of 4 one-second videos and a still for 2 listeners with one attention check each."""
    out = folder / "kit"
    code, _, err = run(
        capsys, "mos-build", *small_inputs(quick_demo, folder / "inputs"), "--out", out, "--listeners", "2",
        "--attention_checks", "1", *extra,
    )  # fmt: skip
    assert code == 0, err
    return out


def test_build_writes_the_videos_once_a_blind_page_and_the_manifest(capsys, quick_demo, tmp_path):
    out = build_small_kit(capsys, quick_demo, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    design = read_manifest(out / "manifest.json")
    assert {(i.system, i.utterance) for i in design.items.values()} == {
        (s, u) for s in ("cnn", "truth") for u in ("u1", "u2")
    }
    videos = sorted(path.name for path in (out / "videos").iterdir())
    assert len(videos) == 5 and {f"{key}.mp4" for key in design.items} < set(videos)
    for name in videos:
        video = decode_mp4(out / "videos" / name)
        assert video.audio_codec == "aac" and len(video.frames) == 25 and abs(video.audio_seconds - 1) < 0.05
    truth = next(i for i in design.items.values() if i.system == "truth" and i.utterance == "u1")
    still = next(iter(design.checks.values())).video
    assert not np.array_equal(decode_mp4(out / truth.video).frames[0], decode_mp4(out / still).frames[0])
    html = (out / "index.html").read_text()
    assert "cnn" not in html and "truth" not in html and manifest["kit"] in html
    assert "Excellent" in html and "expression and mood of the speech" in html


def test_build_refuses_a_non_empty_folder_unless_overwrite(capsys, quick_demo, tmp_path):
    out = build_small_kit(capsys, quick_demo, tmp_path)
    (out / "notes.txt").write_text("mine")
    args = ["mos-build", *small_inputs(quick_demo, tmp_path / "again"), "--out", out, "--listeners", "3"]
    code, _, err = run(capsys, *args)
    assert code == 3 and err.strip().count("\n") == 0 and "not empty" in err and str(out) in err
    code, _, err = run(capsys, *args, "--overwrite")
    assert code == 0, err
    assert len(read_manifest(out / "manifest.json").playlists) == 3 and (out / "notes.txt").exists()
    assert len(list((out / "videos").iterdir())) == 5  # the old kit's videos are gone


def test_score_prints_mos_and_writes_the_report_csv_and_chart(capsys, quick_demo, tmp_path):
    out = build_small_kit(capsys, quick_demo, tmp_path)
    design = read_manifest(out / "manifest.json")
    files = [write_ratings(tmp_path / "l1.json", design, 1, LIKES, True)]
    files.append(write_ratings(tmp_path / "l2.csv", design, 2, LIKES, False))  # fails its attention check
    code, printed, err = run(capsys, "mos-score", out, *files)
    assert code == 0, err
    assert "| cnn | 4.50 | [-1.85, 10.85] | 2 | 1 |" in printed and "| truth | 2.50 |" in printed
    assert "1 of 2 listeners dropped" in err
    assert (out / "mos.md").read_text() == printed and (out / "mos.csv").read_text().startswith("system,mos,")
    with Image.open(out / "mos.png") as png:
        assert png.format == "PNG" and png.size[0] > 300


def test_score_without_a_manifest_is_one_line(capsys, tmp_path):
    ratings = tmp_path / "r.json"
    ratings.write_text("{}")
    code, _, err = run(capsys, "mos-score", tmp_path, ratings)
    assert code == 3 and err.count("\n") == 1 and str(tmp_path / "manifest.json") in err


def test_a_system_that_is_neither_checkpoint_nor_folder_is_one_line(capsys, quick_demo, tmp_path):
    args = small_inputs(quick_demo, tmp_path)
    args[args.index("--systems") + 2] = f"odd={quick_demo.files['face']}"
    code, _, err = run(capsys, "mos-build", *args, "--out", tmp_path / "kit")
    assert code == 2 and err.count("\n") == 1 and "neither a CAUSE checkpoint" in err and "odd" in err
    assert not (tmp_path / "kit").exists()
