"""Procedural face images whose geometry follows the 17 AU intensities.

A cartoon face (hair, head, ears, brows, eyes, nose, cheeks, mouth, chin) is drawn with PIL at
3x supersampling and downsampled with LANCZOS. Each AU moves its own facial part, monotonically
in its intensity, so a GAN conditioned on AUs has exact, local targets to learn. Identities
(skin, face shape, hair, eye colour, background) repeat across many expressions, as CelebA's
celebrities do. Deterministic from ``(seed, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cause_pl.au import ACTION_UNITS, AU_MAX, AU_MIN, NUM_AUS, au_index
from cause_pl.synthetic.face_identity import Colour, FaceIdentity, corpus_identity, rgb

_SUPERSAMPLE = 3


_EXPRESSION_STREAM = 4


_MIN_SIZE, _MAX_SIZE = 32, 512


@dataclass(frozen=True, eq=False)
class SyntheticFace:
    """One face image with the AU intensities it was drawn with."""

    key: str
    image: Image.Image
    aus: np.ndarray
    identity_id: int


def _shade(colour: Colour, factor: float) -> Colour:
    return rgb(np.clip(c * factor, 0, 255) for c in colour)


def _ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill: Colour) -> None:
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)


class _Face:
    """Draws one face on a supersampled canvas; ``u`` is one unit = the canvas width."""

    def __init__(self, aus: np.ndarray, who: FaceIdentity, canvas: int):
        self.au = {unit.code: float(value) / AU_MAX for unit, value in zip(ACTION_UNITS, aus, strict=True)}
        self.who, self.u = who, float(canvas)
        self.image = Image.new("RGB", (canvas, canvas), who.background)
        self.draw = ImageDraw.Draw(self.image)
        self.cx, self.eye_y = 0.5 * canvas, 0.45 * canvas
        self.mouth_y = 0.70 * canvas

    def render(self) -> Image.Image:
        self._hair_back()
        self._head()
        self._cheeks()
        for side in (-1, 1):
            self._eye(side)
            self._brow(side)
        self._nose()
        self._mouth()
        self._hair_front()
        return self.image

    def _hair_back(self) -> None:
        who, u = self.who, self.u
        if who.hair_style == 1:
            top = self.eye_y - 0.95 * who.face_height / 2 * u - 0.02 * u
            rx = who.face_width * 0.6 * u
            box = (self.cx - rx, top, self.cx + rx, 0.95 * u)
            self.draw.rounded_rectangle(box, radius=0.98 * rx, fill=who.hair)

    def _head(self) -> None:
        who, u, a = self.who, self.u, self.au
        rx, ry = who.face_width / 2 * u, who.face_height / 2 * u
        top = self.eye_y - 0.95 * ry
        chin = top + 2 * ry + (0.07 * a[26] - 0.015 * a[17]) * u
        draw = self.draw
        neck = (self.cx - 0.3 * rx, chin - 0.2 * ry, self.cx + 0.3 * rx, u)
        draw.rectangle(neck, fill=_shade(who.skin, 0.85))
        draw.ellipse((self.cx - 0.45 * u, 0.93 * u, self.cx + 0.45 * u, 1.4 * u), fill=who.clothes)
        for side in (-1, 1):  # ears
            ear_x = self.cx + side * rx * 0.98
            _ellipse(draw, ear_x, self.eye_y + 0.08 * u, 0.05 * u, 0.08 * u, _shade(who.skin, 0.93))
        theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        x, y = np.sin(theta), -np.cos(theta)
        lower = y > 0  # narrow the jaw towards the chin
        x = np.where(lower, x * (1 - (1 - who.jaw_width) * y**2), x)
        mid = top + ry
        ys = np.where(lower, mid + y * (chin - mid), mid + y * ry)
        draw.polygon(list(zip(self.cx + x * rx, ys, strict=True)), fill=who.skin)
        if a[17] > 0:  # chin boss: a puckered bump above the chin
            shade = _shade(who.skin, 1 - 0.12 * a[17])
            _ellipse(draw, self.cx, chin - 0.06 * u, 0.05 * u, (0.015 + 0.02 * a[17]) * u, shade)

    def _cheeks(self) -> None:
        u, a = self.u, self.au
        y = self.eye_y + (0.13 - 0.05 * a[6]) * u
        blush = rgb(0.75 * s + 0.25 * c for s, c in zip(self.who.skin, (235, 120, 120), strict=True))
        for side in (-1, 1):
            x = self.cx + side * (self.who.face_width * 0.3) * u
            _ellipse(self.draw, x, y, (0.05 + 0.015 * a[6]) * u, (0.03 + 0.02 * a[6]) * u, blush)

    def _eye(self, side: int) -> None:
        who, u, a, draw = self.who, self.u, self.au, self.draw
        x, y = self.cx + side * who.eye_spacing * u, self.eye_y
        rx = 0.062 * u
        opening = 0.034 * u * (1 + 0.6 * a[5] - 0.45 * a[7] - 0.25 * a[6]) * (1 - a[45])
        if opening > 0.003 * u:
            _ellipse(draw, x, y, rx, opening, (250, 250, 248))
            iris = min(0.028 * u, 1.2 * opening + 0.002 * u)
            _ellipse(draw, x, y, 0.028 * u, iris, who.eyes)
            _ellipse(draw, x, y, 0.012 * u, min(0.012 * u, iris), (15, 15, 15))
            box = (x - rx, y - opening, x + rx, y + opening)
            draw.arc(box, 180, 360, fill=(40, 30, 30), width=max(1, int(0.008 * u)))
        else:  # closed: a lash line
            lashes = (x - rx, y - 0.02 * u, x + rx, y + 0.01 * u)
            draw.arc(lashes, 20, 160, fill=(40, 30, 30), width=max(1, int(0.01 * u)))
        if a[6] > 0 or a[7] > 0:  # lower lid pushed up by cheeks / tightening
            push = (0.6 * a[6] + 0.4 * a[7]) * 0.02 * u
            lower_lid = (x - rx, y + opening - push, x + rx, y + opening + 0.02 * u)
            draw.arc(lower_lid, 200, 340, fill=_shade(who.skin, 0.75), width=max(1, int(0.006 * u)))

    def _brow(self, side: int) -> None:
        who, u, a = self.who, self.u, self.au
        base = self.eye_y - 0.075 * u
        inner_x = self.cx + side * (0.06 - 0.025 * a[4]) * u
        outer_x = self.cx + side * (who.eye_spacing + 0.075) * u
        inner_y = base - (0.05 * a[1] - 0.035 * a[4]) * u
        outer_y = base - (0.01 + 0.05 * a[2] - 0.015 * a[4]) * u
        mid_x, mid_y = (inner_x + outer_x) / 2, min(inner_y, outer_y) - 0.012 * u
        thick = who.brow_thickness * u
        top = [(inner_x, inner_y - thick / 2), (mid_x, mid_y - thick / 2), (outer_x, outer_y)]
        bottom = [(outer_x, outer_y + thick * 0.3), (mid_x, mid_y + thick / 2), (inner_x, inner_y + thick / 2)]
        self.draw.polygon(top + bottom, fill=_shade(who.hair, 0.8))
        if a[4] > 0:  # vertical furrow between the brows
            furrow = (self.cx + side * 0.012 * u, base - 0.02 * u, self.cx + side * 0.008 * u, base + 0.01 * u)
            self.draw.line(furrow, fill=_shade(who.skin, 1 - 0.3 * a[4]), width=max(1, int(0.006 * u)))

    def _nose(self) -> None:
        u, a, draw, cx = self.u, self.au, self.draw, self.cx
        tip = self.eye_y + (0.15 - 0.02 * a[9] - 0.01 * a[10]) * u
        line = _shade(self.who.skin, 0.7)
        width = max(1, int(0.008 * u))
        draw.line((cx - 0.015 * u, self.eye_y + 0.02 * u, cx - 0.025 * u, tip), fill=line, width=width)
        flare = (0.035 + 0.012 * a[9]) * u
        draw.arc((cx - flare, tip - 0.025 * u, cx + flare, tip + 0.015 * u), 20, 160, fill=line, width=width)
        for side in (-1, 1):
            _ellipse(draw, cx + side * 0.016 * u, tip, 0.008 * u, 0.005 * u, _shade(self.who.skin, 0.55))
        if a[9] > 0:  # wrinkles across the bridge
            wrinkle = _shade(self.who.skin, 1 - 0.55 * a[9])
            for y in self.eye_y + np.array([0.0, 0.018, 0.036]) * u:
                draw.line((cx - 0.025 * u, y, cx + 0.025 * u, y - 0.004 * u), fill=wrinkle, width=width)

    def _mouth(self) -> None:
        who, u, a, draw = self.who, self.u, self.au, self.draw
        cx, cy = self.cx, self.mouth_y + (0.035 * a[26] - 0.012 * a[17]) * u
        half = who.mouth_width / 2 * u * (1 + 0.5 * a[20] + 0.12 * a[12] - 0.15 * a[23] - 0.08 * a[14])
        corner = (0.045 * a[15] - 0.05 * a[12]) * u  # down is positive
        gap = (0.025 * a[25] + 0.07 * a[26]) * u * (1 - 0.5 * a[23])
        raise_upper = 0.025 * a[10] * u
        thin = 1 - 0.65 * a[23]
        s = np.linspace(-1, 1, 41)
        bulge = 1 - s**2
        x = cx + s * half
        inner_top = cy + corner * s**2 - (gap / 2 + raise_upper) * bulge
        inner_bottom = cy + corner * s**2 + gap / 2 * bulge
        outer_top = inner_top - 0.022 * u * thin * np.sqrt(bulge) * (1 - 0.25 * np.exp(-((s / 0.15) ** 2)))
        outer_bottom = inner_bottom + 0.028 * u * thin * np.sqrt(bulge)

        def band(upper: np.ndarray, lower: np.ndarray, fill: Colour) -> None:
            draw.polygon(list(zip(x, upper, strict=True)) + list(zip(x[::-1], lower[::-1], strict=True)), fill=fill)

        if gap + raise_upper > 0.002 * u:
            band(inner_top, inner_bottom, (70, 20, 25))
            band(inner_top, np.minimum(inner_top + 0.025 * u * bulge, inner_bottom), (245, 240, 230))  # teeth
        band(outer_top, inner_top, _shade(who.lips, 0.9))
        band(inner_bottom, outer_bottom, who.lips)
        if gap + raise_upper <= 0.002 * u:  # closed: the line where the lips meet
            draw.line(list(zip(x, inner_top, strict=True)), fill=_shade(who.lips, 0.6), width=max(1, int(0.005 * u)))
        if a[14] > 0:  # dimples: a crease and a pit beside each tightened corner
            reach, shade = (0.015 + 0.03 * a[14]) * u, _shade(who.skin, 1 - 0.6 * a[14])
            for side in (-1, 1):
                x0, y0 = cx + side * (half + 0.02 * u), cy + corner
                crease = [(x0, y0 - reach), (x0 + side * 0.012 * u, y0), (x0, y0 + reach)]
                draw.line(crease, fill=shade, width=max(1, int(0.008 * u)), joint="curve")
                _ellipse(draw, x0 + side * 0.012 * u, y0, 0.006 * u, 0.01 * u, shade)

    def _hair_front(self) -> None:
        who, u, draw = self.who, self.u, self.draw
        rx, ry = who.face_width / 2 * u, who.face_height / 2 * u
        if who.hair_style == 2:
            for side in (-1, 1):
                _ellipse(draw, self.cx + side * rx * 0.95, self.eye_y - 0.04 * u, 0.04 * u, 0.09 * u, who.hair)
            return
        # fringe: the top of a slightly enlarged head ellipse, cut level across the forehead
        hair_rx, hair_ry = rx * 1.04, ry * 1.02
        top = self.eye_y - 0.95 * ry - 0.02 * u
        cut = np.degrees(np.arcsin((0.11 * u - hair_ry) / hair_ry))
        theta = np.radians(np.linspace(180 - cut, 360 + cut, 48))  # PIL's chord() misfills here
        outline = zip(self.cx + hair_rx * np.cos(theta), top + hair_ry * (1 + np.sin(theta)), strict=True)
        draw.polygon(list(outline), fill=who.hair)


def draw_face(aus: np.ndarray, identity: FaceIdentity, size: int = 128) -> Image.Image:
    """RGB ``size`` x ``size`` face of ``identity`` showing the 17 AU intensities ``aus`` (0..5)."""
    aus = np.asarray(aus, dtype=np.float32)
    if aus.shape != (NUM_AUS,):
        raise ValueError(f"draw_face: aus must have shape ({NUM_AUS},), got {aus.shape}")
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise ValueError(f"draw_face: size must be in {_MIN_SIZE}..{_MAX_SIZE}, got {size}")
    canvas = _Face(np.clip(aus, AU_MIN, AU_MAX), identity, size * _SUPERSAMPLE).render()
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


# Expressions as (probability, AUs with their relative weights).
_EXPRESSIONS: tuple[tuple[float, dict[int, float]], ...] = (
    (0.25, {}),
    (0.20, {6: 0.8, 12: 1.0}),
    (0.07, {6: 1.0, 12: 1.0, 25: 0.9, 26: 0.7}),
    (0.08, {1: 1.0, 2: 0.9, 5: 0.8, 25: 0.7, 26: 0.8}),
    (0.07, {1: 0.8, 4: 0.7, 15: 1.0, 17: 0.6}),
    (0.07, {4: 1.0, 5: 0.6, 7: 0.8, 23: 0.9}),
    (0.06, {9: 1.0, 10: 0.9, 17: 0.5}),
    (0.05, {1: 0.9, 2: 0.6, 4: 0.7, 5: 0.9, 20: 1.0, 25: 0.6}),
    (0.05, {14: 1.0, 12: 0.3}),
    (0.10, {25: 0.8, 26: 0.6, 10: 0.3}),
)


def _sample_aus(rng: np.random.Generator) -> np.ndarray:
    """Sparse AU intensities: one expression prototype, a few stray AUs, sometimes a blink."""
    probabilities = np.array([p for p, _ in _EXPRESSIONS])
    _, weights = _EXPRESSIONS[rng.choice(len(_EXPRESSIONS), p=probabilities / probabilities.sum())]
    aus = np.zeros(NUM_AUS)
    strength = rng.uniform(1.0, 5.0)
    for code, weight in weights.items():
        aus[au_index(code)] = strength * weight * rng.uniform(0.7, 1.15)
    stray = rng.uniform(size=NUM_AUS) < 0.05
    aus[stray] = np.maximum(aus[stray], rng.uniform(0.5, 2.5, size=int(stray.sum())))
    if rng.uniform() < 0.08:
        aus[au_index(45)] = rng.uniform(2.5, 5.0)
    return np.clip(aus, AU_MIN, AU_MAX).astype(np.float32)


def synth_face(index: int, *, seed: int = 0, size: int = 128, num_identities: int = 50) -> SyntheticFace:
    """Face ``index``: identity ``index % num_identities`` with a random sparse expression."""
    if index < 0 or seed < 0:
        raise ValueError(f"synth_face: index and seed must be >= 0, got {index}, {seed}")
    if num_identities < 1:
        raise ValueError(f"synth_face: num_identities must be >= 1, got {num_identities}")
    identity_id = index % num_identities
    identity = corpus_identity(identity_id, seed=seed)
    aus = _sample_aus(np.random.default_rng([seed, _EXPRESSION_STREAM, index]))
    image = draw_face(aus, identity, size)
    return SyntheticFace(key=f"face{index:07d}", image=image, aus=aus, identity_id=identity_id)
