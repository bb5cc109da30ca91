"""Rendered glyphs with camera saccades, as events and spike streams (an N-MNIST-like set).

Each sample is one glyph (a digit or a capital letter) drawn with one of OpenCV's Hershey
fonts at a random scale, position, stroke thickness, slant, polarity, background level and
background texture. The still image is frame 0 of a short clip in which the camera makes
three saccades along a triangle (as N-MNIST's sensor moves), and that clip is converted
twice: to DVS events (`spikesim.dvs`) and to a spike-camera stream (`spikesim.encode`), so
(image, events, spike stream) are exact pairs of one scene.

Every draw of a sample comes from ``np.random.default_rng([seed, class index, sample
index])``, so a sample's bytes do not depend on which other samples are made, or in which
order. NumPy + OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .checks import check_shape, positive_number, whole_number
from .dvs import DVS_PRESETS, dvs
from .encode import encode
from .errors import SpikesimError
from .events import event_grey_frame

__all__ = [
    "GLYPH_CLASSES",
    "GLYPH_TEMPLATES",
    "GlyphSample",
    "GlyphSet",
    "GlyphSpec",
    "glyph_names",
    "glyph_prompts",
    "make_glyph_set",
    "render_glyph",
    "spike_rate_frame",
]

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Letters that Hershey fonts draw unlike any digit (no I/O/Q/S/Z, too close to 1/0/0/5/2).
_LETTERS = "ABCDEFHJKLMNPRTU"

# (character drawn, words used in prompts): 10 digits + 16 letters = 26 classes.
GLYPH_CLASSES: tuple[tuple[str, str], ...] = tuple(
    [(str(i), f"the digit {w}") for i, w in enumerate(_DIGIT_WORDS)]
    + [(c, f"the letter {c.lower()}") for c in _LETTERS]
)

# Prompt templates; "{}" is the class words ("the digit seven").
GLYPH_TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a picture of {}.",
    "{}, written on a surface.",
    "a drawing of {}.",
    "a sign showing {}.",
    "a close-up image of {}.",
)

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
)
_SUPER = 4  # glyphs are drawn at 4x and area-averaged down: anti-aliased sub-pixel edges


def glyph_names() -> list[str]:
    """The class words of every glyph class, in class-index order."""
    return [words for _, words in GLYPH_CLASSES]


def glyph_prompts(
    classes: Sequence[int] | None = None, templates: Sequence[str] = GLYPH_TEMPLATES
) -> list[list[str]]:
    """Prompts per class: ``out[i][j]`` = template j filled with class ``classes[i]``'s words."""
    idx = range(len(GLYPH_CLASSES)) if classes is None else classes
    names = glyph_names()
    return [[t.format(names[_check_class(c)]) for t in templates] for c in idx]


def _check_class(label: int) -> int:
    return whole_number(label, "glyph class", minimum=0, maximum=len(GLYPH_CLASSES) - 1)


@dataclass(frozen=True)
class GlyphSpec:
    """How samples are made.

    size: (H, W) pixels of every frame. saccade_frames: video frames of the 3-saccade clip
    (frame 0 is the still image). saccade_px: side of the saccade triangle, pixels.
    duration_s: clip duration (sets the DVS frame rate). dvs_preset: `DVS_PRESETS` name.
    spike_steps: spike-camera steps per video frame (the frame is held for that many
    steps). spike_threshold: integrate-and-fire threshold, in [0, 1] intensity x steps.
    """

    size: tuple[int, int] = (32, 32)
    saccade_frames: int = 12
    saccade_px: float = 2.0
    duration_s: float = 0.3
    dvs_preset: str = "clean"
    spike_steps: int = 4
    spike_threshold: float = 2.0
    _fps: float = field(init=False, repr=False, default=0.0)

    def __post_init__(self) -> None:
        h, w = check_shape(self.size)
        if (h * w) % 8:
            raise SpikesimError(f"glyph size {h}x{w}: H*W must be a multiple of 8 (spike frames)")
        if h < 16 or w < 16:
            raise SpikesimError(f"glyph size {h}x{w} is too small to draw a glyph; use >= 16x16")
        object.__setattr__(self, "size", (h, w))
        whole_number(self.saccade_frames, "saccade_frames", minimum=4)
        positive_number(self.saccade_px, "saccade_px")
        positive_number(self.duration_s, "duration_s")
        whole_number(self.spike_steps, "spike_steps", minimum=1)
        positive_number(self.spike_threshold, "spike_threshold")
        if self.dvs_preset not in DVS_PRESETS:
            raise SpikesimError(
                f"unknown dvs preset {self.dvs_preset!r}; choose one of: {', '.join(DVS_PRESETS)}"
            )
        object.__setattr__(self, "_fps", self.saccade_frames / self.duration_s)

    @property
    def fps(self) -> float:
        """Video frame rate of the saccade clip, Hz."""
        return self._fps


@dataclass(frozen=True)
class GlyphSample:
    """One scene in three modalities. image float32 (H, W) in [0, 1] (= frames[0]);
    frames float32 (F, H, W) the saccade clip; events `EVENT_DTYPE` (n,) from `dvs`;
    spikes bool (F * spike_steps, H, W) from `encode`; sensor_seed: the seed both sensors
    got (``dvs(frames, seed=sensor_seed)`` and ``encode(frames repeated, seed=sensor_seed)``
    give back exactly these events and spikes)."""

    label: int
    image: np.ndarray
    frames: np.ndarray
    events: np.ndarray
    spikes: np.ndarray
    sensor_seed: int


def _saccade_path(n: int, side: float) -> np.ndarray:
    """(n, 2) float (dy, dx) pixel offsets: 3 straight saccades along a triangle, back to 0."""
    corners = np.array([[0.0, 0.0], [side, side / 2], [0.0, side], [0.0, 0.0]])
    s = np.linspace(0.0, 3.0, n, endpoint=False)  # position along the 3 edges
    k = np.minimum(s.astype(int), 2)
    f = (s - k)[:, None]
    return corners[k] * (1 - f) + corners[k + 1] * f


def _scene(label: int, rng: np.random.Generator, size: tuple[int, int], margin: int):
    """The drawn scene at _SUPER x resolution with ``margin`` extra pixels on each side
    (so saccades never look past its edge): float32 (S*(H+2m), S*(W+2m)) in [0, 1]."""
    h, w = size
    hh, ww = _SUPER * (h + 2 * margin), _SUPER * (w + 2 * margin)
    char = GLYPH_CLASSES[label][0]
    font = _FONTS[rng.integers(len(_FONTS))] | (cv2.FONT_ITALIC if rng.random() < 0.25 else 0)
    thick = int(rng.integers(1, 4)) * _SUPER  # 1-3 pixels at the final size
    (tw, th), base = cv2.getTextSize(char, font, 1.0, thick)
    height_frac = rng.uniform(0.45, 0.75)  # glyph height / frame height
    scale = height_frac * _SUPER * h / max(th + base * 0.3, 1.0)
    (tw, th), _ = cv2.getTextSize(char, font, scale, thick)
    cx = ww / 2 + rng.uniform(-0.12, 0.12) * _SUPER * w
    cy = hh / 2 + rng.uniform(-0.12, 0.12) * _SUPER * h
    origin = (round(cx - tw / 2), round(cy + th / 2))
    mask = np.zeros((hh, ww), np.uint8)
    cv2.putText(mask, char, origin, font, scale, 255, thick, cv2.LINE_AA)
    # Background: a level plus smooth texture (random coarse grid, cubic-upsampled).
    level = rng.uniform(0.05, 0.35)
    grid = rng.uniform(-1, 1, size=(5, 5)).astype(np.float32)
    texture = cv2.resize(grid, (ww, hh), interpolation=cv2.INTER_CUBIC)
    bg = level + rng.uniform(0.0, 0.12) * texture
    ink = level + rng.uniform(0.35, 0.6)
    m = mask.astype(np.float32) / 255.0
    scene = bg * (1 - m) + ink * m
    if rng.random() < 0.3:  # dark glyph on a bright ground
        scene = 1.0 - scene
    return np.clip(scene, 0.0, 1.0).astype(np.float32)


def render_glyph(label: int, seed: int = 0, index: int = 0, spec: GlyphSpec | None = None):
    """Sample ``index`` of glyph class ``label`` for ``seed``: a `GlyphSample` whose image,
    saccade frames, DVS events and spike stream are all made from one scene."""
    spec = GlyphSpec() if spec is None else spec
    label = _check_class(label)
    seed = whole_number(seed, "seed", minimum=0)
    index = whole_number(index, "index", minimum=0)
    rng = np.random.default_rng([seed, label, index])
    h, w = spec.size
    margin = int(np.ceil(spec.saccade_px)) + 1
    scene = _scene(label, rng, spec.size, margin)
    frames = np.empty((spec.saccade_frames, h, w), np.float32)
    for i, (dy, dx) in enumerate(_saccade_path(spec.saccade_frames, spec.saccade_px)):
        # Sub-pixel camera shift at 4x, then area-average to the sensor size.
        m = np.float32([[1, 0, -_SUPER * (margin + dx)], [0, 1, -_SUPER * (margin + dy)]])
        crop = cv2.warpAffine(scene, m, (_SUPER * w, _SUPER * h), flags=cv2.INTER_LINEAR)
        frames[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    np.clip(frames, 0.0, 1.0, out=frames)
    sub = int(rng.integers(2**31))  # one more draw: the sensors' own noise seed
    events = dvs(frames, fps=spec.fps, preset=spec.dvs_preset, seed=sub)
    spikes = encode(
        np.repeat(frames, spec.spike_steps, axis=0), threshold=spec.spike_threshold, seed=sub
    )
    return GlyphSample(label, frames[0].copy(), frames, events, spikes, sub)


def spike_rate_frame(spikes: np.ndarray, threshold: float) -> np.ndarray:
    """Intensity estimate from a spike stream (a TFP over the whole window): spike count x
    threshold / steps, clipped to [0, 1]. spikes bool (T, H, W) -> float32 (H, W)."""
    if not isinstance(spikes, np.ndarray) or spikes.ndim != 3 or spikes.shape[0] == 0:
        raise SpikesimError("spikes must be a non-empty (T, H, W) array")
    rate = spikes.sum(axis=0, dtype=np.float64) * threshold / spikes.shape[0]
    return np.clip(rate, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class GlyphSet:
    """Model inputs of many samples, all float32 (N, H, W) in [0, 1]: ``images`` (the still
    frames), ``events`` (`event_grey_frame` of each sample's events), ``spikes``
    (`spike_rate_frame` of its spike stream); ``labels`` int64 (N,) class indices into
    `GLYPH_CLASSES`; ``index`` int64 (N,) the sample index within its class; ``n_events``
    int64 (N,)."""

    images: np.ndarray
    events: np.ndarray
    spikes: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    n_events: np.ndarray
    spec: GlyphSpec
    seed: int

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> GlyphSet:
        """The samples where ``mask`` (bool (N,) or int indices) selects."""
        m = np.asarray(mask)
        return GlyphSet(
            self.images[m],
            self.events[m],
            self.spikes[m],
            self.labels[m],
            self.index[m],
            self.n_events[m],
            self.spec,
            self.seed,
        )

    def modality(self, name: str) -> np.ndarray:
        """``"images"``, ``"events"`` or ``"spikes"`` -> float32 (N, H, W)."""
        if name not in ("images", "events", "spikes"):
            raise SpikesimError(f"modality {name!r}; choose images, events or spikes")
        return getattr(self, name)


def make_glyph_set(
    classes: Sequence[int],
    per_class: int,
    *,
    seed: int = 0,
    first_index: int = 0,
    spec: GlyphSpec | None = None,
) -> GlyphSet:
    """Samples ``first_index .. first_index + per_class - 1`` of each class in ``classes``
    (class-major order), reduced to model inputs (see `GlyphSet`). Disjoint index ranges
    give disjoint samples of one seed (train / test)."""
    spec = GlyphSpec() if spec is None else spec
    classes = [_check_class(c) for c in classes]
    if not classes:
        raise SpikesimError("no glyph classes given; pass at least one class index")
    per_class = whole_number(per_class, "per_class", minimum=1)
    first_index = whole_number(first_index, "first_index", minimum=0)
    n = len(classes) * per_class
    h, w = spec.size
    images = np.empty((n, h, w), np.float32)
    events = np.empty((n, h, w), np.float32)
    spikes = np.empty((n, h, w), np.float32)
    labels = np.empty(n, np.int64)
    index = np.empty(n, np.int64)
    n_events = np.empty(n, np.int64)
    i = 0
    for c in classes:
        for k in range(first_index, first_index + per_class):
            s = render_glyph(c, seed, k, spec)
            images[i] = s.image
            events[i] = event_grey_frame(s.events, h, w)
            spikes[i] = spike_rate_frame(s.spikes, spec.spike_threshold)
            labels[i], index[i], n_events[i] = c, k, len(s.events)
            i += 1
    return GlyphSet(images, events, spikes, labels, index, n_events, spec, seed)
