"""The videos of a naturalness-test kit, rendered by :class:`SpeechToFaceAnimator` (``cause-pl mos-build``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cause_pl.faces.align import NoFaceError
from cause_pl.inference.animator import SpeechToFaceAnimator
from cause_pl.media.audio import load_audio
from cause_pl.media.image import FaceImageError
from cause_pl.media.mp4 import video_frame_count
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.models.ganimation import load_ganimation_checkpoint
from cause_pl.openface.reader import align_to_frames, read_openface_csv


class AnimatorRenderer:
    """Renders ``systems`` (name -> CAUSE checkpoint, or a folder of ``UTTERANCE.csv`` AU tracks) on one face.

    One GANimation generator for all; a checkpoint system estimates its AUs from the speech (``options``:
    the animator's ``au_scale``, ``smoothing_frames``, ``frames_per_batch``), a folder system drives the face
    with its CSV's AUs as they are. The attention checks' video is the face with zero AUs (still) and the
    first utterance's speech.
    """

    def __init__(
        self,
        systems: dict[str, Path],
        audio: dict[str, Path],
        face: Path,
        ganimation_ckpt: Path,
        device: str = "cpu",
        align: bool = True,
        face_index: int = 0,
        options: dict[str, Any] | None = None,
    ) -> None:
        generator = load_ganimation_checkpoint(ganimation_ckpt, device)
        self.systems, self.audio = systems, audio
        self.animators = {
            name: SpeechToFaceAnimator(load_cause_checkpoint(path, device), generator, **(options or {}))
            for name, path in systems.items()
            if path.is_file()
        }
        self.base = next(iter(self.animators.values()))
        try:
            self.face = self.base.load_face(face, align, face_index)
        except NoFaceError as error:
            raise FaceImageError(face, f"{error.problem}; --no_align uses the image centre-cropped instead") from None

    def _wave(self, animator: SpeechToFaceAnimator, utterance: str) -> torch.Tensor:
        return load_audio(self.audio[utterance], animator.sample_rate)

    def render_item(self, system: str, utterance: str, out: Path) -> None:
        """The video of ``system`` animating ``utterance``."""
        if system in self.animators:
            animator = self.animators[system]
            animator.render(self._wave(animator, utterance), self.face, out, source=self.audio[utterance])
            return
        wave = self._wave(self.base, utterance)
        frames = video_frame_count(wave.shape[-1], self.base.sample_rate, self.base.fps)
        track = read_openface_csv(self.systems[system] / f"{utterance}.csv")
        aus, _ = align_to_frames(track, frames, fps=self.base.fps)
        full = np.zeros((frames, aus.shape[1]), dtype=np.float32)
        full[: len(aus)] = aus
        self.base.render(wave, self.face, out, aus=torch.from_numpy(full), source=track.path)

    def render_still(self, out: Path) -> None:
        """The still face (zero AUs) with the first utterance's speech."""
        wave = self._wave(self.base, next(iter(self.audio)))
        frames = video_frame_count(wave.shape[-1], self.base.sample_rate, self.base.fps)
        self.base.render(wave, self.face, out, aus=torch.zeros(frames, self.base.cause.hparams.num_aus))
