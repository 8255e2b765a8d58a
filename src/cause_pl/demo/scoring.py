"""The demo's evaluate stage: Table 1 for CAUSE, ``ganimation-eval``'s scores for GANimation."""

from __future__ import annotations

from pathlib import Path

from cause_pl.demo.plan import DemoPlan
from cause_pl.demo.training import face_data
from cause_pl.evaluation.ganimation import FaceAURegressor, score
from cause_pl.evaluation.table1 import evaluate_on_shards, table_rows, write_table
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.models.checkpoints import safe_load
from cause_pl.models.ganimation import load_ganimation_checkpoint

GAN_SCORES = ("au_error", "copy_input_au_error", "reader_floor", "identity")
"""The scores of :func:`~cause_pl.evaluation.ganimation.score` the demo reports (as ``gan_<name>``)."""


def evaluate_ganimation(plan: DemoPlan, checkpoint: Path, faces: Path, reader_weights: Path) -> dict[str, float]:
    """``ganimation-eval``'s scores on the validation faces, read by the reader of
    :func:`~cause_pl.demo.training.train_face_au_reader`."""
    reader = FaceAURegressor()
    reader.load_state_dict(safe_load(reader_weights))
    reader.eval().requires_grad_(False)
    scores = score(load_ganimation_checkpoint(checkpoint), face_data(plan, faces), "val", reader)
    print(
        f"GANimation on {scores['faces']} validation faces: AU error {scores['au_error']:.4f} (copying the "
        f"input: {scores['copy_input_au_error']:.4f}; the reader on real faces: {scores['reader_floor']:.4f}), "
        f"identity {scores['identity']:.4f}"
    )
    return {f"gan_{name}": round(float(scores[name]), 4) for name in GAN_SCORES}


def evaluate_cause(checkpoint: Path, shards: Path, out: Path, workers: int) -> dict[str, float]:
    """Table 1 on the test split (held-out speakers): the CNN against Zero and Mean; returns MAEs."""
    report = evaluate_on_shards(load_cause_checkpoint(checkpoint), shards, "test", num_workers=min(workers, 1))
    rows = table_rows({"CNN": report})
    caption = (
        f"CAUSE on the synthetic test split ({report.num_utterances} utterances of held-out speakers, "
        f"{report.num_frames} valid frames). 95% CIs: jackknife over utterances."
    )
    print(write_table(rows, caption, out))
    return {f"{row['method'].lower()}_mae": round(float(row["mae"]), 4) for row in rows}
