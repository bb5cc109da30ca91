"""Groups of clips and the validation split carved out of a training split by group.

A group is the set of clips that share actors, scene or movie: UCF101's ``gXX``, HMDB51's
source video (the file name before ``_<class>_<tags>``), otherwise the clip itself. Clips of
one group must stay on one side of any split, or a model is scored on near-copies of what it
trained on. A group name can recur across classes (UCF101's official splits hold out the
same group numbers in every class; an HMDB51 movie gives clips to several classes; a
``spikesim synth`` group is one scene, the same object and background in every class), so
the validation split holds out group names across classes too (``ValHoldout.groups``).

:func:`clip_group` is the one group rule: ``spikesim.sources`` uses it to split a source
tree into train/test, and :func:`carve_val` uses it (through each converted clip's
``source`` path) to hold out a validation split from the training clips.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from .checks import is_whole
from .errors import DatasetError

_UCF_NAME = re.compile(r"^v_(?P<cls>[A-Za-z0-9]+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
# <movie>_<class>_<body part>_<camera motion>_<people>_<viewpoint>_<quality>_<index>
_HMDB_TAIL = r"_[a-z]+_[a-z]+_np\d+_[a-z]+_[a-z]+_\d+$"
LAYOUTS: tuple[str, ...] = ("ucf101", "hmdb51", "folders")

VAL = "val"  # the name of the carved split
GROUP_RULES: tuple[str, ...] = ("shared", "per-class")


def clip_group(source: str, cls: str, layout: str | None = None) -> str:
    """The group of the clip whose source video is ``source`` (a path or file stem) in class
    ``cls``: ``"gXX"`` for a UCF101 name ``v_<cls>_gXX_cYY``, the movie name for an HMDB51
    name ``<movie>_<cls>_<tags>``, else the file stem (a group of one).

    ``layout``: ``"ucf101"``, ``"hmdb51"`` or ``"folders"`` when the whole tree's layout is
    known (``spikesim.sources`` guesses it once); None tries UCF101 then HMDB51 per name.
    """
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    stem = PurePosixPath(str(source).replace("\\", "/")).stem
    if layout in (None, "ucf101") and (m := _UCF_NAME.match(stem)):
        return f"g{int(m['group']):02d}"
    if layout in (None, "hmdb51") and (m := re.match(rf"^(.*)_{re.escape(cls)}{_HMDB_TAIL}", stem)):
        return m[1]
    return stem


@dataclass(frozen=True)
class ValHoldout:
    """How a validation split is carved from a training split: ``fraction`` of the groups
    drawn with ``seed``. ``groups``: ``"shared"`` (the default) draws group names from all
    classes together, so a name held out is held out in every class and no validation scene
    is seen in training under another class; a class that the draw would leave with no
    validation group, or with no training group, gets its own draw. ``"per-class"`` (the
    rule of runs recorded before session 6, whose records have no ``groups`` key) draws
    per class and can put one scene on both sides. Either way each class with two or more
    groups has at least one on each side; a class with one group stays in training.
    ``val_paths``: the clips chosen by a recorded run (``splits.json``), which then win over
    the draw so evaluation uses exactly the run's validation clips."""

    fraction: float = 0.2
    seed: int = 0
    from_split: str = "train"
    val_paths: frozenset[str] | None = None
    groups: str = "shared"

    def __post_init__(self) -> None:
        if not isinstance(self.fraction, (int, float)) or not 0 < self.fraction < 1:
            raise DatasetError(
                f"validation fraction must be between 0 and 1 (exclusive), got {self.fraction!r}"
            )
        if not is_whole(self.seed) or self.seed < 0:
            raise DatasetError(f"validation seed must be a whole number >= 0, got {self.seed!r}")
        if self.groups not in GROUP_RULES:
            raise DatasetError(
                f"validation groups must be one of {', '.join(GROUP_RULES)}, got {self.groups!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (without the paths)."""
        return {
            "fraction": self.fraction,
            "seed": int(self.seed),
            "from_split": self.from_split,
            "groups": self.groups,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ValHoldout:
        """From :meth:`to_dict` or a ``splits.json`` (whose ``val`` list is reused as is)."""
        try:
            paths = record.get("val")
            return cls(
                fraction=float(record["fraction"]),
                seed=int(record["seed"]),
                from_split=str(record.get("from_split", "train")),
                val_paths=None if paths is None else frozenset(str(p) for p in paths),
                groups=str(record.get("groups", "per-class")),
            )
        except (KeyError, TypeError, ValueError):
            raise DatasetError(
                "a validation record needs 'fraction' and 'seed' (and optionally 'val', a "
                "list of clip paths); rewrite it with spikesim.ValHoldout.to_dict()"
            ) from None


def carve_val(clips: Iterable[Any], holdout: ValHoldout | None = None) -> dict[str, str]:
    """``{clip path: "train" | "val"}`` for the clips of ``holdout.from_split``.

    ``clips``: records with ``path``, ``cls``, ``split`` and ``source`` (``ClipRecord``).
    Groups come from :func:`clip_group` of each ``source``. ``groups="shared"``: the sorted
    names of all classes' groups are shuffled by a generator seeded with ``seed`` and the
    first ``round(fraction * n)`` are validation in every class; ``"per-class"``, and any
    class the shared draw leaves with no group on one side: the class's own names sorted
    and shuffled by a generator seeded with ``(seed, crc32(class))``. The carving depends
    only on the clips, the fraction and the seed, not on their order. With
    ``holdout.val_paths`` those clips are val, and every one of them must be among
    ``clips``.
    """
    holdout = holdout or ValHoldout()
    pool = [c for c in clips if c.split == holdout.from_split]
    if holdout.val_paths is not None:
        paths = {c.path for c in pool}
        missing = sorted(holdout.val_paths - paths)
        if missing:
            raise DatasetError(
                f"{len(missing)} recorded validation clips (e.g. {missing[0]}) are not in the "
                f"{holdout.from_split!r} split of this dataset; evaluate on the run's own data"
            )
        return {c.path: VAL if c.path in holdout.val_paths else holdout.from_split for c in pool}
    groups: dict[str, dict[str, str]] = {}
    for c in pool:
        groups.setdefault(c.cls, {})[c.path] = clip_group(c.source or c.path, c.cls)
    seed = int(holdout.seed)

    def order(names: Sequence[str], cls: str | None) -> list[str]:
        key = seed if cls is None else [seed, zlib.crc32(cls.encode())]
        return [names[k] for k in np.random.default_rng(key).permutation(len(names))]

    held = hold_out_groups(
        {cls: members.values() for cls, members in groups.items()},
        holdout.fraction,
        order,
        shared=holdout.groups == "shared",
    )
    return {
        path: VAL if group in held[cls] else holdout.from_split
        for cls, members in groups.items()
        for path, group in members.items()
    }


def hold_out_groups(
    names_by_class: Mapping[str, Iterable[str]],
    fraction: float,
    order: Callable[[Sequence[str], str | None], Sequence[str]],
    *,
    shared: bool = True,
) -> dict[str, set[str]]:
    """``{class: group names held out}``: the one rule for the generated test split and
    the carved validation split. ``order(names, cls)`` ranks sorted names (``cls`` None:
    the names of all classes together); the first ``round(fraction * n)`` are held out, at
    least one and never all. ``shared``: names are ranked together and held out in every
    class that has them; a class left with no group on one side is ranked on its own.
    A class with a single group keeps it."""
    by_class = {cls: sorted(set(names)) for cls, names in names_by_class.items()}
    common: set[str] = set()
    if shared:
        every = sorted({g for names in by_class.values() for g in names})
        common = set(list(order(every, None))[: _n_held(len(every), fraction)])
    out: dict[str, set[str]] = {}
    for cls, names in by_class.items():
        chosen = common & set(names)
        if len(names) < 2:
            chosen = set()
        elif not shared or len(chosen) in (0, len(names)):
            chosen = set(list(order(names, cls))[: _n_held(len(names), fraction)])
        out[cls] = chosen
    return out


def _n_held(n: int, fraction: float) -> int:
    """How many of ``n`` groups are held out: ``round(n * fraction)``, at least one and
    never all (none of a single group)."""
    return min(max(round(n * fraction), 1), n - 1) if n >= 2 else 0


def splits_record(clips: Sequence[Any], holdout: ValHoldout) -> dict[str, Any]:
    """What a run records in ``splits.json``: the holdout settings and the sorted clip paths
    of each side (``"train"``, ``"val"``)."""
    side = carve_val(clips, holdout)
    return {
        **holdout.to_dict(),
        "val": sorted(p for p, s in side.items() if s == VAL),
        "train": sorted(p for p, s in side.items() if s != VAL),
    }
