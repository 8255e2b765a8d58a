"""AU report figures and ``AUReportCallback``: files per epoch, fixed utterances, W&B and TensorBoard."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from PIL import Image
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, IterableDataset

from cause_pl.au import ACTION_UNITS, AU_LABELS, NUM_AUS, au_index
from cause_pl.callbacks import AUReportCallback
from cause_pl.evaluation.plots import DEFAULT_TRACK_AUS, au_tracks_figure, figure_to_png, per_au_bar_chart
from cause_pl.features.mel import MelConfig
from cause_pl.metrics.au_metrics import AUMetrics
from cause_pl.metrics.report import AUReport
from cause_pl.models import CAUSERegressor
from tests.builders.loggers import RecordingLogger

N_MELS = MelConfig().n_mels
VAL_BATCHES, UTTERANCES_PER_BATCH, MAX_FRAMES = 3, 3, 60


# --- data and model ---------------------------------------------------------------------------


def make_batch(first_key: int, generator: torch.Generator) -> dict[str, Any]:
    """Padded utterances of random lengths with random invalid frames, as the speech datamodule yields."""
    lengths = torch.randint(30, MAX_FRAMES + 1, (UTTERANCES_PER_BATCH,), generator=generator)
    frames = torch.arange(MAX_FRAMES)
    mask = (frames < lengths[:, None]) & (torch.rand(UTTERANCES_PER_BATCH, MAX_FRAMES, generator=generator) > 0.15)
    return {
        "mel": torch.randn(UTTERANCES_PER_BATCH, MAX_FRAMES, N_MELS, generator=generator) - 5.0,
        "au": 5.0 * torch.rand(UTTERANCES_PER_BATCH, MAX_FRAMES, NUM_AUS, generator=generator),
        "mask": mask,
        "lengths": lengths,
        "keys": [f"utt{first_key + row:03d}" for row in range(UTTERANCES_PER_BATCH)],
    }


class RotatingBatches(IterableDataset):
    """Yields the same batches, starting one later at each pass: every validation sees another
    first batch, so a callback that re-picked its utterances would plot different keys."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches = batches
        self.passes = 0

    def __iter__(self):
        start, self.passes = self.passes % len(self.batches), self.passes + 1
        return iter(self.batches[start:] + self.batches[:start])


class TinySpeechData(pl.LightningDataModule):
    """In-memory stand-in for the speech datamodule, with its normalisation statistics."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.train_batches = [make_batch(100 + 10 * i, generator) for i in range(2)]
        self.val_batches = [make_batch(UTTERANCES_PER_BATCH * i, generator) for i in range(VAL_BATCHES)]
        self.val_passes = RotatingBatches(self.val_batches)

    @property
    def frontend_config(self) -> MelConfig:
        return MelConfig()

    @property
    def mel_mean(self) -> torch.Tensor:
        return torch.full((N_MELS,), -5.0)

    @property
    def mel_std(self) -> torch.Tensor:
        return torch.ones(N_MELS)

    @property
    def au_mean(self) -> torch.Tensor:
        return torch.full((NUM_AUS,), 2.5)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_passes, batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.val_batches, batch_size=None)


def tiny_model(data: TinySpeechData) -> CAUSERegressor:
    torch.manual_seed(0)
    model = CAUSERegressor(arch="mlp", lr=1e-3, log_per_au=False)  # logging ~650 scalars is slow
    model.set_normalization(data.mel_mean, data.mel_std, data.au_mean, frontend=data.frontend_config)
    return model


def fit(tmp_path: Path, logger: Any, callback: AUReportCallback, data: TinySpeechData) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        accelerator="cpu",
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )
    trainer.fit(tiny_model(data), datamodule=data)
    return trainer


def random_report(utterances: int, seed: int = 0) -> AUReport:
    generator = torch.Generator().manual_seed(seed)
    target = 5.0 * torch.rand(utterances, 40, NUM_AUS, generator=generator)
    pred = (target + torch.randn(target.shape, generator=generator)).clamp(0.0, 5.0)
    metrics = AUMetrics(NUM_AUS, mean_au=target.mean(dim=(0, 1)))
    metrics.update(pred, target, torch.ones(utterances, 40, dtype=torch.bool))
    return metrics.compute()


def open_png(data: bytes | Path) -> Image.Image:
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    image.load()
    assert image.format == "PNG"
    return image


# --- figures ------------------------------------------------------------------------------------


def test_bar_chart_draws_every_predictor_per_au_with_intervals():
    report = random_report(utterances=6)
    figure = per_au_bar_chart(report, "mae")
    (axes,) = figure.axes
    bars = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == ["model", "zero", "mean"]
    for container in bars:
        expected = [report.predictors[container.get_label()].per_au[label].mae.value for label in AU_LABELS]
        assert [patch.get_height() for patch in container] == pytest.approx(expected)
    ticks = [tick.get_text() for tick in axes.get_xticklabels()]
    assert all(au.label in tick and au.name in tick for au, tick in zip(ACTION_UNITS, ticks, strict=True))
    assert f"{report.model.overall.mae.value:.3f}" in axes.get_title()
    assert len(axes.lines) > 0  # error bar caps
    image = open_png(figure_to_png(figure))
    assert image.width > 800 and image.height > 400


def test_bar_chart_with_one_utterance_has_nan_intervals_and_still_renders():
    report = random_report(utterances=1)
    assert math.isnan(report.model.overall.ccc.ci_low)
    figure = per_au_bar_chart(report, "ccc")
    open_png(figure_to_png(figure))


def test_bar_chart_rejects_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        per_au_bar_chart(random_report(utterances=2), "rmse")


def test_tracks_default_panels_time_axis_and_invalid_shading():
    frames, fps = 50, 25
    rng = np.random.default_rng(0)
    true, pred = rng.uniform(0, 5, (frames, NUM_AUS)), rng.uniform(0, 5, (frames, NUM_AUS))
    mask = np.ones(frames, dtype=bool)
    mask[10:20] = False
    figure = au_tracks_figure(pred, true, mask, fps=fps, title="utt")
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert len(panels) == len(DEFAULT_TRACK_AUS)
    for code, panel in zip(DEFAULT_TRACK_AUS, panels, strict=True):
        assert f"AU{code:02d}" in panel.get_ylabel()
        target_line, pred_line = panel.lines
        assert target_line.get_xdata()[-1] == pytest.approx((frames - 1) / fps)  # seconds
        assert pred_line.get_ydata() == pytest.approx(pred[:, au_index(code)])
        assert np.isnan(target_line.get_ydata()[10:20]).all()  # no target on invalid frames
        (shade,) = panel.patches
        left, right = shade.get_x(), shade.get_x() + shade.get_width()
        assert (left, right) == pytest.approx((9.5 / fps, 19.5 / fps))
    open_png(figure_to_png(figure))


def test_tracks_of_all_aus_in_a_grid_and_all_invalid_mask():
    frames = 30
    true, pred = np.zeros((frames, NUM_AUS)), np.full((frames, NUM_AUS), 1.5)
    figure = au_tracks_figure(pred, true, np.zeros(frames, dtype=bool), aus=[au.code for au in ACTION_UNITS])
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert len(panels) == NUM_AUS
    assert len({panel.get_position().x0 for panel in panels}) > 1  # more than one column
    assert all(np.isnan(panel.lines[0].get_ydata()).all() for panel in panels)
    open_png(figure_to_png(figure))


def test_tracks_reject_bad_shapes_and_unknown_aus():
    good = np.zeros((10, NUM_AUS))
    with pytest.raises(ValueError, match="true"):
        au_tracks_figure(good, np.zeros((9, NUM_AUS)), np.ones(10, dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        au_tracks_figure(good, good, np.ones(10))
    with pytest.raises(KeyError, match="AU3"):
        au_tracks_figure(good, good, np.ones(10, dtype=bool), aus=[3])


# --- the callback -------------------------------------------------------------------------------


def test_csv_logger_gets_report_files_per_epoch_for_the_same_utterances(tmp_path):
    data = TinySpeechData()
    callback = AUReportCallback(num_tracks=2)
    trainer = fit(tmp_path, CSVLogger(tmp_path), callback, data)
    report_dir = Path(trainer.log_dir) / "au_report"
    fixed = [u.key for u in callback.tracked["val"]]
    assert fixed == ["utt000", "utt001"]  # the sanity check's first batch, kept for both epochs
    for epoch in (0, 1):
        stem = report_dir / f"epoch{epoch:03d}_val"
        markdown = stem.with_suffix(".md").read_text()
        assert all(label in markdown for label in AU_LABELS) and "zero" in markdown and "mean" in markdown
        with open(stem.with_suffix(".csv"), newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == (NUM_AUS + 1) * 3 and {row["predictor"] for row in rows} == {"model", "zero", "mean"}
        bars = open_png(Path(f"{stem}_bars.png"))
        assert bars.width > 800 and bars.height > 400
        tracks = sorted(report_dir.glob(f"epoch{epoch:03d}_val_tracks_*.png"))
        assert [path.stem.rsplit("_", 1)[-1] for path in tracks] == fixed
        assert all(open_png(path).height > 300 for path in tracks)
    assert data.val_passes.passes == 3  # sanity check + 2 epochs, each starting at another batch

    trainer.test(trainer.lightning_module, datamodule=data)
    assert (report_dir / "epoch002_test.md").is_file()  # current_epoch is 2 after fitting
    assert len(list(report_dir.glob("epoch002_test_tracks_*.png"))) == 2


def test_callback_rejects_bad_arguments_and_modules_without_reports():
    with pytest.raises(ValueError, match="metric"):
        AUReportCallback(metric="rmse")
    with pytest.raises(ValueError, match="every_n_epochs"):
        AUReportCallback(every_n_epochs=0)
    with pytest.raises(TypeError, match="last_report"):
        AUReportCallback().setup(pl.Trainer(logger=False), pl.LightningModule(), "fit")


class ForgetfulRegressor(CAUSERegressor):
    """Stores a report after its first validation only, as a module with a broken hook would."""

    def on_validation_epoch_end(self) -> None:
        if "val" not in self.last_report:
            super().on_validation_epoch_end()


def test_a_report_that_was_not_renewed_raises_instead_of_being_logged_again(tmp_path):
    data = TinySpeechData()
    model = ForgetfulRegressor(arch="mlp", log_per_au=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[AUReportCallback(num_tracks=0)],
    )
    trainer.validate(model, datamodule=data)
    assert (tmp_path / "au_report" / "epoch000_val.md").is_file()
    with pytest.raises(RuntimeError, match="last_report"):
        trainer.validate(model, datamodule=data)


def test_summary_writer_receives_markdown_and_figures_every_n_epochs_and_no_png_files(tmp_path):
    logger = RecordingLogger(tmp_path)
    trainer = fit(tmp_path, logger, AUReportCallback(num_tracks=2, every_n_epochs=2), TinySpeechData())
    assert trainer.global_step == 4  # 2 batches per epoch: epoch 1 ends at step 4
    assert [(tag, step) for tag, _, step in logger.writer.texts] == [("val/au_report", 4)]
    assert all(label in logger.writer.texts[0][1] for label in AU_LABELS)
    assert [(tag, step) for tag, _, step in logger.writer.figures] == [
        ("val/au_mae_bars", 4),
        ("val/au_tracks/utt000", 4),
        ("val/au_tracks/utt001", 4),
    ]
    assert all(isinstance(figure, Figure) for _, figure, _ in logger.writer.figures)
    report_dir = tmp_path / "au_report"
    assert sorted(path.name for path in report_dir.iterdir()) == ["epoch001_val.csv", "epoch001_val.md"]


@pytest.mark.skipif(
    not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")),
    reason="TensorBoardLogger needs tensorboard or tensorboardX; neither is installed "
    "(torch.utils.tensorboard needs tensorboard too)",
)
def test_tensorboard_logger_writes_event_files(tmp_path):
    from pytorch_lightning.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path)
    fit(tmp_path, logger, AUReportCallback(num_tracks=1), TinySpeechData())
    assert list(Path(logger.log_dir).glob("events.out.tfevents.*"))


def test_wandb_offline_run_holds_table_and_images(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from pytorch_lightning.loggers import WandbLogger

    for name, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp_path),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="cause-pl-test")
    try:
        fit(tmp_path, logger, AUReportCallback(num_tracks=2), TinySpeechData())
        run_dir = Path(logger.experiment.dir).parent
    finally:
        wandb.finish()
    assert run_dir.name.startswith("offline-run-")
    media = run_dir / "files" / "media"
    tables = sorted((media / "table").rglob("*.table.json"))
    assert len(tables) == 2  # one per epoch
    table = json.loads(tables[-1].read_text())
    assert table["columns"][:2] == ["au", "predictor"] and len(table["data"]) == (NUM_AUS + 1) * 3
    images = sorted((media / "images").rglob("*.png"))
    assert len(images) == 2 * 3  # per epoch: the bar chart and two tracks
    assert all(open_png(path).width > 300 for path in images)
    assert not list((tmp_path / "au_report").glob("*.png"))  # figures went to W&B, not to files
    assert len(list((tmp_path / "au_report").glob("*.md"))) == 2
