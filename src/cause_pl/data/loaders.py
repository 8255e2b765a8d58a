"""DataLoaders over the streams; the training one resumes mid-epoch exactly.

:class:`TrainLoader` tracks the training stream's state in the main process (epoch, base seed,
batches the trainer processed, the global RNG states) and hands it to Lightning through
``state_dict``/``load_state_dict``, so a checkpoint taken mid-epoch resumes with the same remaining
batches in the same order and the same RNG streams; resumed workers fast-forward (docs/design.md,
"Distributed data loading").
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from cause_pl.data.streams import EvalStream, TrainStream

FitPosition = Callable[[], "tuple[int, int, int] | None"]
"""``(epoch, batches processed in it, batches per epoch)`` of a running fit, or None outside one."""


def make_loader(stream: TrainStream | EvalStream, position: FitPosition | None = None) -> DataLoader:
    """A DataLoader for a stream: the workers it was built for, batches already made (``batch_size=None``).

    A :class:`TrainStream` gets a :class:`TrainLoader` (resumable; ``position`` reports the trainer's
    progress). Workers are not persistent: they stop when an epoch ends. Persistent ones would save a
    worker start per epoch (an interpreter start under spawn/forkserver) but stop only when the loader
    is garbage-collected, which can stall for seconds; and a resumed epoch needs fresh workers.
    """
    if isinstance(stream, TrainStream):
        return TrainLoader(stream, position)
    return DataLoader(stream, batch_size=None, num_workers=stream.num_workers)


RNG_STATE_KEYS = ("torch", "cuda", "numpy", "python")


def rng_states() -> dict[str, Any]:
    """The process's global RNG states (torch CPU, the current CUDA device's, numpy, Python), as they are."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],  # this rank's device
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def rng_states_to_plain(states: dict[str, Any]) -> dict[str, Any]:
    """:func:`rng_states` as tensors and Python numbers only (loadable with ``torch.load(weights_only=True)``)."""
    _, keys, position, has_gauss, gauss = states["numpy"]
    version, internal, python_gauss = states["python"]
    return {
        "torch": states["torch"].clone(),
        "cuda": [state.clone() for state in states["cuda"]],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": python_gauss},
    }


def set_rng_states(plain: dict[str, Any]) -> None:
    """Restore what :func:`rng_states_to_plain` recorded (the CUDA state onto the current device)."""
    torch.set_rng_state(plain["torch"])
    if plain["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(plain["cuda"][0])
    numpy = plain["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
    python = plain["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))


class TrainLoader(DataLoader):
    """The training DataLoader, resumable: Lightning saves :meth:`state_dict` in checkpoints and restores it.

    The stream's state lives in the workers, so it is tracked here, in the main process: the epoch
    number, the stream's base draw (:func:`epoch_seed`) and the batches of the epoch consumed; the
    DataLoader takes worker batches round-robin, so that count says how far each worker got
    (:func:`resume_position`). A restored loader's next epoch starts workers that fast-forward to
    there. The state also holds the process's global RNG states as they were when the next batch was
    due (dropout and anything else drawing from them continues the same streams); they are put back
    when the resumed loader hands out its first batch.

    Under DDP the checkpoint holds rank 0's state and every rank restores it: batch counts are equal
    on all ranks and ranks enter the epoch seeds explicitly, so only the global RNG states need to
    agree across ranks, as they do under ``seed_everything``.
    """

    def __init__(self, stream: TrainStream, position: FitPosition | None = None) -> None:
        super().__init__(stream, batch_size=None, num_workers=stream.num_workers)
        self.stream = stream
        self.position = position
        self.epoch = -1
        """Epoch of the current (or last) iteration; -1 before the first."""
        self.handed_out = 0
        """Batches of that epoch handed out (a resumed epoch counts the skipped ones)."""
        self._rng_before_last: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        pending, self._pending = self._pending, None
        fit = self.position() if self.position is not None else None
        skip, restore = 0, None
        if pending is not None:
            self.stream.base = pending["base"]
            epoch = pending["epoch"] + int(pending["finished"]) if fit is None else fit[0]
            if epoch == pending["epoch"] and not pending["finished"]:
                skip = min(pending["batches"], len(self))
            restore = pending["rng"]
        else:
            epoch = self.epoch + 1 if fit is None else fit[0]
        if self.stream.base is None:
            self.stream.base = int(torch.randint(0, 2**62, ()).item())
        self.epoch, self.handed_out, self._rng_before_last = epoch, skip, None
        self.stream.epoch, self.stream.resume_batches = epoch, skip
        try:
            iterator = super().__iter__()  # workers start here, with a copy of the stream
        finally:
            self.stream.resume_batches = 0
        return self._counted(iterator, restore)

    def _counted(self, iterator: Iterator[Any], restore: dict[str, Any] | None) -> Iterator[Any]:
        for batch in iterator:
            if restore is not None:
                set_rng_states(restore)
                restore = None
            self._rng_before_last = rng_states()
            self.handed_out += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the stream is: ``epoch``, ``batches`` consumed in it, ``finished``, ``base``, ``rng``, sizes.

        ``batches`` is what the trainer has processed (a batch fetched but not yet stepped, e.g. when
        SLURM's signal saves a checkpoint mid-step, is read again), else the batches handed out.
        """
        fit = self.position() if self.position is not None else None
        batches = self.handed_out if fit is None else fit[1]
        total = len(self) if fit is None else fit[2]
        snapshot = self._rng_before_last
        live = batches >= self.handed_out or snapshot is None
        return {
            "epoch": self.epoch,
            "batches": batches,
            "finished": batches >= total,
            "base": self.stream.base,
            "workers": max(self.num_workers, 1),
            "batches_per_epoch": len(self),
            "rng": rng_states_to_plain(rng_states() if live or snapshot is None else snapshot),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at ``state_dict`` on the next iteration (exactly when workers and epoch length are unchanged)."""
        missing = {"epoch", "batches", "finished", "base", "rng"} - set(state_dict)
        if missing:
            raise ValueError(f"TrainLoader state lacks {sorted(missing)}")
        same = state_dict.get("workers") == max(self.num_workers, 1) and state_dict.get("batches_per_epoch") == len(
            self
        )
        if not same:
            warnings.warn(
                f"resuming the training stream with {max(self.num_workers, 1)} worker(s) and {len(self)} batches per "
                f"epoch, but it was saved with {state_dict.get('workers')} and {state_dict.get('batches_per_epoch')}: "
                "the rest of the epoch is drawn afresh rather than continued exactly",
                stacklevel=2,
            )
        self._pending = dict(state_dict)
