"""The classes of the synthetic dataset: their motions, phrases, naming and split rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import is_whole
from ..errors import SpikesimError

STYLES = ("sim", "real")
CLIPS_PER_GROUP = 2  # clips cYY in each group gXX (one scene, different motions)
SPLIT_DIR = "ucfTrainTestlist"
_TEST_GROUPS_MOD10 = (2, 5, 8)  # groups 2, 5, 8, 12, 15, 18, ... are test: 30 % of groups
MAX_GROUPS = 99  # gXX has two digits


@dataclass(frozen=True)
class ClassSpec:
    """One action class: a motion, how much of it, and how captions say it.

    ``amount`` is the range the per-clip size of the motion is drawn from, in the unit of its
    ``motion``: ``scale`` end/start size ratio; ``rotate`` degrees turned; ``translate``
    fraction of the room the object has along ``direction`` (1 = wall to wall); ``blink`` on/off
    cycles; ``bounce`` number of bounces; ``fade`` unused; ``orbit`` turns. ``real_amount`` is
    the same for ``style="real"`` (smaller, local motions). ``reverse=True`` plays the forward
    motion backwards, so the class is its partner reversed in time.
    """

    name: str
    motion: str
    amount: tuple[float, float]
    real_amount: tuple[float, float]
    phrases: tuple[str, ...]
    tests: str
    reverse: bool = False
    direction: tuple[int, int] = (0, 0)


def _spec(name, motion, amount, real_amount, phrases, tests, **kw) -> ClassSpec:
    return ClassSpec(name, motion, amount, real_amount, tuple(phrases), tests, **kw)


_RIGHT, _DOWN = (1, 0), (0, 1)
# Ordered so that the first n classes hold whole pairs: n = 8 already has time-reversal and
# speed classes. Translation ranges of the three MoveRight speeds are disjoint.
CLASS_SPECS: tuple[ClassSpec, ...] = (
    _spec("Grow", "scale", (1.8, 2.5), (1.25, 1.5),
          ["grows larger", "expands", "gets bigger"], "time direction (reverse of Shrink)"),
    _spec("Shrink", "scale", (1.8, 2.5), (1.25, 1.5),
          ["shrinks", "gets smaller", "contracts"], "time direction (reverse of Grow)",
          reverse=True),
    _spec("RotateClockwise", "rotate", (120.0, 240.0), (45.0, 90.0),
          ["rotates clockwise", "turns clockwise", "spins clockwise"],
          "time direction (reverse of RotateAnticlockwise)"),
    _spec("RotateAnticlockwise", "rotate", (120.0, 240.0), (45.0, 90.0),
          ["rotates anticlockwise", "turns counterclockwise", "spins anticlockwise"],
          "time direction (reverse of RotateClockwise)", reverse=True),
    _spec("MoveLeft", "translate", (0.42, 0.58), (0.20, 0.28),
          ["moves to the left", "slides left", "travels leftwards"],
          "time direction (reverse of MoveRight)", reverse=True, direction=_RIGHT),
    _spec("MoveRight", "translate", (0.42, 0.58), (0.20, 0.28),
          ["moves to the right", "slides right", "travels rightwards"],
          "time direction (reverse of MoveLeft); speed (vs MoveRightFast, MoveRightSlow)",
          direction=_RIGHT),
    _spec("MoveRightFast", "translate", (0.78, 1.0), (0.36, 0.48),
          ["moves quickly to the right", "rushes to the right", "darts right"],
          "speed only (vs MoveRight, MoveRightSlow)", direction=_RIGHT),
    _spec("MoveRightSlow", "translate", (0.14, 0.26), (0.07, 0.13),
          ["moves slowly to the right", "creeps to the right", "drifts slowly right"],
          "speed only (vs MoveRight, MoveRightFast)", direction=_RIGHT),
    _spec("MoveUp", "translate", (0.42, 0.58), (0.20, 0.28),
          ["moves up", "rises", "slides upwards"], "time direction (reverse of MoveDown)",
          reverse=True, direction=_DOWN),
    _spec("MoveDown", "translate", (0.42, 0.58), (0.20, 0.28),
          ["moves down", "sinks", "slides downwards"], "time direction (reverse of MoveUp)",
          direction=_DOWN),
    _spec("Blink", "blink", (3.0, 5.0), (3.0, 5.0),
          ["blinks on and off", "flashes", "flickers in and out of view"],
          "temporal change without motion (frame averages show a faint static object)"),
    _spec("Bounce", "bounce", (2.0, 3.0), (2.0, 3.0),
          ["bounces up and down", "hops", "keeps bouncing"],
          "back-and-forth motion (vs the one-way MoveUp / MoveDown)"),
    _spec("FadeIn", "fade", (0.0, 0.0), (0.0, 0.0),
          ["fades in", "slowly appears", "emerges from the background"],
          "time direction of contrast (reverse of FadeOut)"),
    _spec("FadeOut", "fade", (0.0, 0.0), (0.0, 0.0),
          ["fades out", "slowly disappears", "vanishes into the background"],
          "time direction of contrast (reverse of FadeIn)", reverse=True),
    _spec("OrbitClockwise", "orbit", (0.75, 1.25), (0.75, 1.25),
          ["circles clockwise", "orbits clockwise", "travels round a clockwise circle"],
          "time direction of a path (reverse of OrbitAnticlockwise; vs RotateClockwise)"),
    _spec("OrbitAnticlockwise", "orbit", (0.75, 1.25), (0.75, 1.25),
          ["circles anticlockwise", "orbits counterclockwise",
           "travels round an anticlockwise circle"],
          "time direction of a path (reverse of OrbitClockwise)", reverse=True),
)  # fmt: skip
SPEC_INDEX = {s.name: i for i, s in enumerate(CLASS_SPECS)}


def class_names(n: int = 12) -> list[str]:
    """The first ``n`` class names of ``CLASS_SPECS`` (CamelCase, UCF101 style), 1 <= n <= 16."""
    if not is_whole(n) or not 1 <= n <= len(CLASS_SPECS):
        raise SpikesimError(f"classes must be between 1 and {len(CLASS_SPECS)}, got {n!r}")
    return [s.name for s in CLASS_SPECS[:n]]


def clip_name(cls: str, index: int) -> str:
    """File name of clip ``index`` (0-based) of class ``cls``: ``v_<cls>_gXX_cYY.avi``."""
    group, clip = divmod(index, CLIPS_PER_GROUP)
    return f"v_{cls}_g{group + 1:02d}_c{clip + 1:02d}.avi"


def is_test_group(group: int) -> bool:
    """True if group ``gXX`` (1-based) goes to ``testlist01``: groups 2, 5, 8 of every ten."""
    return group % 10 in _TEST_GROUPS_MOD10


@dataclass(frozen=True)
class SynthClip:
    """One rendered clip: ``frames`` uint8 (T, H, W, 3) RGB, its caption, group and clip
    (1-based), and ``track``, the ground truth per frame as float64 (T,) arrays: ``cx``, ``cy``
    object centre (pixels, y down), ``radius`` (pixels, circumscribed circle), ``angle``
    (degrees, clockwise on screen), ``visible`` (0 = absent, 1 = full contrast)."""

    cls: str
    group: int
    clip: int
    frames: np.ndarray
    caption: str
    track: dict[str, np.ndarray]
    paraphrases: tuple[str, ...] = ()  # the same clip said in other words
