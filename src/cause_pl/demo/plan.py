"""What the demo does and makes: its sizes and budgets (:class:`DemoPlan`) and its outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cause_pl.cpus import cpu_has_bf16, usable_cpus
from cause_pl.synthetic.corpus import SyntheticCorpusSpec


@dataclass(frozen=True)
class DemoPlan:
    """Sizes and budgets of the demo; the defaults take about 3 minutes on 2 CPU cores (fp32; 5 without AVX-512)."""

    corpus: SyntheticCorpusSpec = field(default_factory=SyntheticCorpusSpec)
    cause_epochs: int = 6
    cause_samples_per_epoch: int = 1024
    gan_warmup_epochs: int = 1
    """Epochs (before the constant ones) in which only the critic's AU head learns (``critic_warmup_steps``):
    the generator's AU loss then follows a trained head from its first step."""
    gan_epochs_constant: int = 2
    gan_epochs_decay: int = 1
    gan_samples_per_epoch: int = 1600
    gan_image_size: int = 64
    gan_batch_size: int = 16
    gan_generator_channels: int = 16
    """Width of the generator's first conv (doubling twice): the paper's 64 is for 128-px photos."""
    reader_steps: int = 500
    """Training steps of the face AU reader that scores GANimation (``ganimation-eval``'s default)."""
    gan_precision: str = field(default_factory=lambda: "bf16-mixed" if cpu_has_bf16() else "32-true")
    """bf16 autocast trains this GAN ~2x faster on CPUs with native bf16 (and far slower on others)."""
    workers: int = 2
    """Data-loading processes of CAUSE's training and evaluation; the corpora are built one process each."""
    cause_threads: int = 1
    """Torch threads for CAUSE: its small ops slow down when threads outnumber idle cores."""
    gan_threads: int = field(default_factory=lambda: min(4, usable_cpus()))
    """Torch threads for GANimation, whose convolutions use every core the light data workers leave."""
    seed: int = 0

    @property
    def gan_epochs(self) -> int:
        """GANimation's ``max_epochs``: the warm-up, then the constant and the decaying learning rate."""
        return self.gan_warmup_epochs + self.gan_epochs_constant + self.gan_epochs_decay

    @classmethod
    def quick(cls) -> DemoPlan:
        """A smoke run (about a minute): tiny corpora and a few dozen training steps."""
        corpus = SyntheticCorpusSpec(
            speakers=6,
            utterances_per_speaker=8,
            max_seconds=4,
            faces=200,
            identities=10,
            face_size=64,
            shard_size=4,
            face_shard_size=10,
        )
        return cls(
            corpus=corpus,
            cause_epochs=2,
            cause_samples_per_epoch=160,
            gan_epochs_constant=1,
            gan_epochs_decay=1,
            gan_samples_per_epoch=96,
            reader_steps=20,
            gan_image_size=32,
        )


@dataclass
class DemoOutputs:
    """What the demo made: files by name, scores and seconds per stage."""

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, title: str) -> Iterator[None]:
        """Print the stage header, time it, and print its wall time."""
        print(f"\n=== [{len(self.seconds) + 1}/5] {title}", flush=True)
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 1)
        print(f"=== {name}: {self.seconds[name]:.1f} s", flush=True)

    def write_summary(self) -> Path:
        path = self.out / "summary.json"
        summary = {
            "files": {name: str(file) for name, file in self.files.items()},
            "scores": self.scores,
            "seconds": self.seconds,
        }
        path.write_text(json.dumps(summary, indent=1) + "\n")
        return path
