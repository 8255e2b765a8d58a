"""AU tracks written as CSVs in OpenFace FeatureExtraction's layout, so tools that read OpenFace read ours.

Other per-frame targets (:mod:`cause_pl.targets`) are written in the same layout under their own
column names (``columns``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np
from torch import Tensor

from cause_pl.au import AU_COLUMNS
from cause_pl.media.atomic import atomic_output

CSV_COLUMNS: tuple[str, ...] = ("frame", "face_id", "timestamp", "confidence", "success", *AU_COLUMNS)
"""The columns :func:`write_openface_style_csv` writes: OpenFace FeatureExtraction's layout, AUs only."""


def write_openface_style_csv(
    aus: np.ndarray | Tensor,
    fps: float,
    stream_or_path: str | Path | TextIO,
    decimals: int = 3,
    valid: np.ndarray | Tensor | None = None,
    columns: tuple[str, ...] = AU_COLUMNS,
) -> None:
    """Write AUs as OpenFace FeatureExtraction does, so tools (and ``read_openface_csv``) read them back.

    Columns ``CSV_COLUMNS``, with ``columns`` in place of the AU columns for other targets:
    ``frame`` is 1-based, ``timestamp`` = (frame - 1) / fps in seconds with 3 decimals, ``face_id``
    0, and ``confidence`` / ``success`` 1 / 1 on frames that are ``valid`` (default: all), 0 / 0
    elsewhere. Cells are separated by ``", "``. ``stream_or_path`` is a path or an open text stream
    (e.g. ``sys.stdout``, written as the rows are made). A path is written atomically
    (:func:`cause_pl.media.atomic.atomic_output`): a failed write leaves the previous file there untouched.
    """
    values = np.asarray(aus.detach().cpu() if isinstance(aus, Tensor) else aus, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(f"write_openface_style_csv: aus must have shape (frames, {len(columns)}), got {values.shape}")
    if not fps > 0:
        raise ValueError(f"write_openface_style_csv: fps must be > 0, got {fps}")
    flags = np.ones(len(values), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if flags.shape != (len(values),):
        raise ValueError(f"write_openface_style_csv: valid must have shape ({len(values)},), got {flags.shape}")
    if isinstance(stream_or_path, (str, Path)):
        with (
            atomic_output(stream_or_path) as temporary,
            open(temporary, "w", newline="", encoding="utf-8") as stream,
        ):
            _write_rows(values, flags, fps, stream, decimals, columns)
    else:
        _write_rows(values, flags, fps, stream_or_path, decimals, columns)


def _write_rows(
    values: np.ndarray, valid: np.ndarray, fps: float, stream: TextIO, decimals: int, columns: tuple[str, ...]
) -> None:
    stream.write(", ".join((*CSV_COLUMNS[: -len(AU_COLUMNS)], *columns)) + "\n")
    for index, (row, ok) in enumerate(zip(values, valid, strict=True)):
        flag = "1" if ok else "0"
        cells = (
            str(index + 1),
            "0",
            f"{index / fps:.3f}",
            f"{flag}.00",
            flag,
            *(f"{value:.{decimals}f}" for value in row),
        )
        stream.write(", ".join(cells) + "\n")
