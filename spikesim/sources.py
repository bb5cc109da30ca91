"""Source video datasets: find the clips of a UCF101 / HMDB51 tree, their labels and splits.

A source dataset is a folder of class folders of clips (``SRC/<class>/<clip>.avi``), the
layout of UCF101, HMDB51 and most action-recognition sets. This module only looks at names
and small text files; it never decodes a video.

- Labels: the order of ``classInd.txt`` when present (UCF101), else sorted class names.
- Splits: the official lists when present (UCF101 ``trainlist0K.txt`` / ``testlist0K.txt``;
  HMDB51 ``<class>_test_splitK.txt``), else a generated split that keeps every UCF101 group
  (``_gXX_``, the same actors and scene) or HMDB51 source movie on one side.
- Captions: ``SRC/captions.jsonl`` rows ``{"path": "<class>/<file>", "caption": ...}``,
  else ``None`` (the model then builds prompts from the class name).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import DatasetError
from .files import read_text
from .splits import _HMDB_TAIL, _UCF_NAME, clip_group, hold_out_groups
from .video import VIDEO_SUFFIXES

SPLITS = ("train", "test", "unused")
LAYOUTS = ("ucf101", "hmdb51", "folders")
DEFAULT_TEST_FRACTION = 0.3  # HMDB51 holds out 30 %, UCF101 7 groups of 25 (28 %)

_UCF_TRAIN = re.compile(r"^trainlist0?(\d+)\.txt$", re.IGNORECASE)
_UCF_TEST = re.compile(r"^testlist0?(\d+)\.txt$", re.IGNORECASE)
_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$", re.IGNORECASE)
_HMDB_CODES = {"1": "train", "2": "test", "0": "unused"}


@dataclass(frozen=True)
class SourceClip:
    """One clip of a source dataset.

    ``path`` is relative to the class root, POSIX style (``"Basketball/v_Basketball_g01_c01.avi"``);
    ``source`` is the same file relative to the folder the user gave (they differ when that
    folder wraps the class folders, e.g. ``UCF101/UCF-101/<class>``).
    """

    path: str
    source: str
    cls: str
    label: int
    split: str
    caption: str | None
    group: str
    paraphrases: tuple[str, ...] = ()

    @property
    def out_path(self) -> str:
        """Relative path of the converted ``.dat``: ``<class>/<stem>.dat``."""
        return f"{self.cls}/{PurePosixPath(self.path).stem}.dat"


@dataclass(frozen=True)
class SourceDataset:
    """The clips of a source tree, sorted by path, with labels, splits and captions."""

    src: Path  # the folder the user gave
    root: Path  # the folder holding the class folders (``src`` or one level below)
    name: str
    layout: str  # one of LAYOUTS
    split_source: str  # one line: where the splits came from
    classes: tuple[str, ...]  # index = label
    clips: tuple[SourceClip, ...]

    def source_path(self, clip: SourceClip) -> Path:
        """Absolute path of a clip's video."""
        return self.root / clip.path

    def split_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SPLITS, 0)
        for clip in self.clips:
            counts[clip.split] += 1
        return counts


def scan_source(
    src: str | os.PathLike,
    *,
    splits_dir: str | os.PathLike | None = None,
    split_index: int = 1,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> SourceDataset:
    """Walk ``src`` (``<class>/<clip>`` folders) and return its clips, labels and splits.

    Split files are looked for in ``splits_dir`` when given, else anywhere under ``src``.
    ``split_index`` picks the official split (1, 2 or 3). Raises ``DatasetError`` for a
    missing folder, a tree without clips, a path that escapes ``src``, or a bad split file.
    """
    src = Path(src)
    if not src.is_dir():
        raise DatasetError(f"{src}: not a folder; give the dataset root holding class folders")
    if split_index < 1:
        raise DatasetError(f"split index {split_index} must be 1, 2 or 3")
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test fraction {test_fraction} must be between 0 and 1")
    real_src = src.resolve()
    root = _class_root(src)
    found = _walk_clips(root, real_src)
    if not found:
        raise DatasetError(
            f"{src}: no clips found; expected class folders of videos, "
            f"SRC/<class>/<clip>{{{','.join(VIDEO_SUFFIXES)}}} (the UCF101 / HMDB51 layout)"
        )
    search = Path(splits_dir) if splits_dir is not None else src
    if not search.is_dir():
        raise DatasetError(f"{search}: splits folder not found")
    texts = sorted(p for p in search.rglob("*.txt") if p.is_file())

    folder_classes = sorted({cls for cls, _ in found})
    classes = _class_order(folder_classes, texts)
    label_of = {c: i for i, c in enumerate(classes)}

    layout, split_of, split_source = _official_splits(texts, found, root, real_src, split_index)
    if layout is None:
        layout = _guess_layout(found)
    groups = {(cls, rel): clip_group(rel, cls, layout) for cls, rel in found}
    if split_of is None:
        split_of = _generated_splits(groups, test_fraction)
        unit = {"ucf101": "groups", "hmdb51": "source movies"}.get(layout, "clips")
        split_source = (
            f"generated: {round(test_fraction * 100)} % of the {unit} held out for test in "
            "every class (no official split files found)"
        )
    captions = _read_captions(src, root)

    prefix = root.relative_to(src).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    clips = []
    for cls, rel in found:
        source = prefix + rel
        caption, paraphrases = captions.get(rel, captions.get(source, (None, ())))
        clips.append(
            SourceClip(
                path=rel,
                source=source,
                cls=cls,
                label=label_of[cls],
                split=split_of.get((cls, rel), "unused"),
                caption=caption,
                group=groups[(cls, rel)],
                paraphrases=paraphrases,
            )
        )
    _check_unique_outputs(clips)
    return SourceDataset(
        src=src,
        root=root,
        name=(src.resolve().name or "dataset"),
        layout=layout,
        split_source=split_source,
        classes=tuple(classes),
        clips=tuple(sorted(clips, key=lambda c: c.path)),
    )


def clip_seed(seed: int, path: str) -> int:
    """Per-clip seed in [0, 2**32) from the run seed and the clip's relative path.

    The same clip gets the same seed whatever the worker count, shard or order.
    """
    digest = hashlib.blake2b(f"{int(seed)}\0{path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little")


# ---------------------------------------------------------------------------- walking


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_root(src: Path) -> Path:
    """``src`` itself, or its one subfolder holding the class folders (``UCF101/UCF-101``)."""

    def has_class_folders(folder: Path) -> bool:
        return any(any(_is_video(f) for f in d.iterdir()) for d in _subdirs(folder))

    if has_class_folders(src):
        return src
    candidates = [d for d in _subdirs(src) if has_class_folders(d)]
    if len(candidates) > 1:
        names = ", ".join(d.name for d in candidates[:4])
        raise DatasetError(f"{src}: holds several datasets ({names}); point SRC at one of them")
    return candidates[0] if candidates else src


def _inside(path: Path, real_src: Path) -> bool:
    try:
        path.resolve().relative_to(real_src)
    except ValueError:
        return False
    except (RuntimeError, OSError):  # a symlink loop goes nowhere, so not outside
        return True
    return True


def _clip_entry(entry: os.DirEntry) -> bool:
    """A file, or a link that cannot be followed (a loop): listed, so that converting it
    fails that clip alone (in failures.jsonl) instead of stopping the scan."""
    try:
        return entry.is_file()  # follows links; a link's target is checked by the caller
    except OSError:
        return entry.is_symlink()


def _walk_clips(root: Path, real_src: Path) -> list[tuple[str, str]]:
    """``(class, relative path)`` of every clip, sorted; raises for paths leaving ``src``."""
    found = []
    for class_dir in _subdirs(root):
        if any(c in class_dir.name for c in "\n\r") or not class_dir.name.isprintable():
            raise DatasetError(
                f"{class_dir.parent}: the class folder {class_dir.name!r} has a line break or "
                "control character in its name, which classes.txt cannot hold; rename it"
            )
        if not _inside(class_dir, real_src):
            raise DatasetError(
                f"{class_dir}: class folder links outside the dataset root {real_src}; "
                "copy it in or point SRC at the real folder"
            )
        with os.scandir(class_dir) as entries:
            names = sorted(
                e.name
                for e in entries
                if e.name.lower().endswith(VIDEO_SUFFIXES)
                and not e.name.startswith(".")
                and _clip_entry(e)
                and (not e.is_symlink() or _link_inside(Path(e.path), real_src))
            )
        found += [(class_dir.name, f"{class_dir.name}/{name}") for name in names]
    return found


def _link_inside(link: Path, real_src: Path) -> bool:
    """True for a link that stays inside ``real_src``; raises for one that leaves it."""
    if not _inside(link, real_src):
        raise DatasetError(
            f"{link}: clip links outside the dataset root {real_src}; "
            "copy it in or point SRC at the real folder"
        )
    return True


def _check_unique_outputs(clips: Iterable[SourceClip]) -> None:
    seen: dict[str, str] = {}
    for clip in clips:
        other = seen.setdefault(clip.out_path.lower(), clip.path)
        if other != clip.path:
            raise DatasetError(
                f"{other} and {clip.path} would both be converted to {clip.out_path}; "
                "rename one of them"
            )


# ---------------------------------------------------------------------------- classes


def read_class_index(path: str | os.PathLike) -> list[str]:
    """Class names in label order from a UCF101 ``classInd.txt`` (lines ``"1 ApplyEyeMakeup"``)."""
    path = Path(path)
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<index> <class>', got {line.strip()!r}")
        rows.append((int(parts[0]), parts[1]))
    rows.sort()
    if [i for i, _ in rows] != list(range(1, len(rows) + 1)):
        raise DatasetError(f"{path}: class indices are not 1..{len(rows)} without gaps")
    return [name for _, name in rows]


def _class_order(folder_classes: list[str], texts: list[Path]) -> list[str]:
    index_files = [p for p in texts if p.name.lower() == "classind.txt"]
    if not index_files:
        return folder_classes
    listed = read_class_index(index_files[0])
    by_lower = {c.lower(): c for c in folder_classes}
    # classInd spells some classes differently from their folder (HandstandPushups)
    ordered = [by_lower.get(name.lower(), name) for name in listed]
    extra = sorted(set(folder_classes) - set(ordered))
    if extra:
        raise DatasetError(
            f"{index_files[0]}: class folders {extra[:3]} are not listed; "
            "fix classInd.txt or remove those folders"
        )
    # classes listed but absent on disk keep their label, so labels match the official ones
    return ordered


# ---------------------------------------------------------------------------- splits


def parse_ucf101_list(path: str | os.PathLike) -> list[str]:
    """Relative clip paths of a UCF101 ``trainlist0K.txt`` / ``testlist0K.txt``.

    Lines are ``"<class>/<clip>.avi"`` optionally followed by a 1-based label.
    """
    path = Path(path)
    out = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise DatasetError(f"{path}:{n}: expected '<class>/<clip> [label]', got {line!r}")
        out.append(parts[0].replace("\\", "/"))
    return out


def parse_hmdb51_split(path: str | os.PathLike) -> dict[str, str]:
    """``{clip file name: "train" | "test" | "unused"}`` from a ``<class>_test_splitK.txt``.

    Lines are ``"<clip>.avi 1|2|0"``: 1 train, 2 test, 0 not used in this split.
    """
    path = Path(path)
    out = {}
    for n, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in _HMDB_CODES:
            raise DatasetError(f"{path}:{n}: expected '<clip> 0|1|2', got {line!r}")
        out[parts[0]] = _HMDB_CODES[parts[1]]
    return out


def _check_listed(entry: str, listing: Path, root: Path, real_src: Path) -> None:
    parts = PurePosixPath(entry).parts
    if entry.startswith("/") or ".." in parts or not _inside(root / entry, real_src):
        raise DatasetError(f"{listing}: entry {entry!r} points outside the dataset root")


def _official_splits(
    texts: list[Path],
    found: list[tuple[str, str]],
    root: Path,
    real_src: Path,
    k: int,
) -> tuple[str | None, dict[tuple[str, str], str] | None, str]:
    ucf_train = [p for p in texts if (m := _UCF_TRAIN.match(p.name)) and int(m[1]) == k]
    ucf_test = [p for p in texts if (m := _UCF_TEST.match(p.name)) and int(m[1]) == k]
    hmdb = [p for p in texts if (m := _HMDB_SPLIT.match(p.name)) and int(m["k"]) == k]
    by_lower = {rel.lower(): (cls, rel) for cls, rel in found}

    if ucf_train or ucf_test:
        if not (ucf_train and ucf_test):
            have = (ucf_train or ucf_test)[0]
            raise DatasetError(
                f"{have}: found without its pair; UCF101 split {k} needs both "
                f"trainlist0{k}.txt and testlist0{k}.txt"
            )
        split_of: dict[tuple[str, str], str] = {}
        for split, listing in (("train", ucf_train[0]), ("test", ucf_test[0])):
            for entry in parse_ucf101_list(listing):
                _check_listed(entry, listing, root, real_src)
                key = by_lower.get(entry.lower())
                if key is not None:
                    split_of[key] = split
        if not split_of:
            raise DatasetError(
                f"{ucf_train[0].parent}: no clip under {root} is listed in the UCF101 split "
                "files; check SRC and --splits"
            )
        names = f"{ucf_train[0].name}, {ucf_test[0].name}"
        return "ucf101", split_of, f"official UCF101 split {k} ({names})"

    if hmdb:
        split_of = {}
        class_lower = {cls.lower(): cls for cls, _ in found}
        for listing in hmdb:
            cls = class_lower.get(_HMDB_SPLIT.match(listing.name)["cls"].lower())
            if cls is None:
                continue  # class not present on disk (partial copy)
            for name, split in parse_hmdb51_split(listing).items():
                entry = f"{cls}/{name}"
                _check_listed(entry, listing, root, real_src)
                key = by_lower.get(entry.lower())
                if key is not None:
                    split_of[key] = split
        if not split_of:
            raise DatasetError(
                f"{hmdb[0].parent}: no clip under {root} is listed in the HMDB51 split files; "
                "check SRC and --splits"
            )
        return "hmdb51", split_of, f"official HMDB51 split {k} ({len(hmdb)} class files)"
    return None, None, ""


def _guess_layout(found: list[tuple[str, str]]) -> str:
    stems = [(cls, PurePosixPath(rel).stem) for cls, rel in found]
    # most, not all: a few oddly named clips should not hide the layout of the rest
    enough = 0.9 * len(stems)
    if sum(bool(_UCF_NAME.match(stem)) for _, stem in stems) >= enough:
        return "ucf101"
    hmdb = sum(bool(re.search(rf"_{re.escape(c)}{_HMDB_TAIL}", s)) for c, s in stems)
    return "hmdb51" if hmdb >= enough else "folders"


def _generated_splits(
    groups: dict[tuple[str, str], str], test_fraction: float
) -> dict[tuple[str, str], str]:
    """Hold out ``test_fraction`` of the group names for test, ranked by a hash of the name
    (``spikesim.splits.hold_out_groups``, shared: a name is test in every class that has
    it, as UCF101's official splits hold out the same groups in every class and an HMDB51
    movie's clips of several classes stay on one side). Ranking (rather than thresholding
    the hash) gives every class with two or more groups at least one test group, so
    zero-shot evaluation sees every class.
    """
    per_class: dict[str, set[str]] = {}
    for (cls, _), group in groups.items():
        per_class.setdefault(cls, set()).add(group)

    def by_hash(names: Sequence[str], cls: str | None) -> list[str]:
        prefix = "" if cls is None else f"{cls}/"
        return sorted(names, key=lambda g: hashlib.sha1(f"{prefix}{g}".encode()).hexdigest())

    test_groups = hold_out_groups(per_class, test_fraction, by_hash)
    return {
        key: ("test" if group in test_groups[key[0]] else "train") for key, group in groups.items()
    }


# ---------------------------------------------------------------------------- captions


def _read_captions(src: Path, root: Path) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    for folder in dict.fromkeys((src, root)):
        path = folder / "captions.jsonl"
        if path.is_file():
            return read_captions(path)
    return {}


def read_captions(path: str | os.PathLike) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """``{relative clip path: (caption, paraphrases)}`` from JSON lines ``{"path": ...,
    "caption": ..., "paraphrases": [...]}`` (``paraphrases`` optional: other wordings of
    the same caption, as ``spikesim synth`` writes them)."""
    path = Path(path)
    out = {}
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key, caption = row["path"], row["caption"]
            paraphrases = row.get("paraphrases") or []
            if not isinstance(paraphrases, list) or not all(
                isinstance(t, str) for t in paraphrases
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DatasetError(
                f'{path}:{n}: expected {{"path": "<class>/<clip>", "caption": "...", '
                '"paraphrases": ["...", ...] (optional)}'
            ) from None
        if caption is not None or paraphrases:
            out[str(key).replace("\\", "/")] = (
                None if caption is None else str(caption),
                tuple(t.strip() for t in paraphrases if t.strip()),
            )
    return out
