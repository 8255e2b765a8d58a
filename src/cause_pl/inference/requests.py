"""Many animations in one ``Trainer.predict``: (audio, face, output) requests decoded in DataLoader workers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from cause_pl.faces.align import prepare_face
from cause_pl.media.audio import load_audio


class AnimationRequests(Dataset):
    """(audio file, face image file, output mp4) triples for ``SpeechToFaceAnimator``.

    Items are dicts ``wave`` (1-D float32), ``face`` (3, S, S) in [-1, 1] and ``out``; decoding
    happens in DataLoader workers. Use ``DataLoader(requests, batch_size=None)``: one request per
    ``predict_step`` (each is already a batch of frames). With ``align`` each face image's largest face
    is found and aligned (:mod:`cause_pl.faces`) instead of the image being centre-cropped.
    """

    def __init__(
        self,
        requests: Sequence[tuple[str | Path, str | Path, str | Path]],
        sample_rate: int,
        image_size: int,
        align: bool = False,
    ) -> None:
        self.requests = [(Path(audio), Path(face), str(out)) for audio, face, out in requests]
        self.sample_rate, self.image_size, self.align = sample_rate, image_size, align

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, index: int) -> dict[str, Any]:
        audio, face, out = self.requests[index]
        return {
            "wave": load_audio(audio, self.sample_rate),
            "face": prepare_face(face, self.image_size, self.align),
            "out": out,
        }

    def loader(self, num_workers: int = 0) -> DataLoader:
        """The DataLoader ``Trainer.predict`` expects: unbatched requests."""
        return DataLoader(self, batch_size=None, num_workers=num_workers)
