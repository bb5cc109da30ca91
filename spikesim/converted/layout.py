"""The layout of a converted dataset, in one place: file names, the manifest row, their I/O.

A folder written by ``spikesim convert``::

    <class>/<stem>.dat + <stem>.json   spikes and sidecar (written by DatWriter, atomically)
    manifest.jsonl                     one ``ClipRecord`` row per converted clip, sorted by path
    manifest.shard-I-of-N.jsonl        the same, for the clips of one shard, once it finished
    classes.txt                        class names, line number - 1 = label
    config.yaml                        SpikeCV-style description (spike_h, spike_w, ...)
    failures.jsonl                     {"clip", "reason"} per clip that failed in the last run
    train/<class>/<stem>.dat           SpikeCV's recognition layout: relative symlinks to the
    test/<class>/<stem>.dat            .dat of each clip of that split (no sidecars, see below)

Everything here is written through ``spikesim.files.write_atomic`` (temporary name, rename).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import DatasetError
from ..files import read_jsonl, read_text, temp_name, write_atomic

MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
CLASSES = "classes.txt"
CONFIG = "config.yaml"
_SHARD_MANIFEST = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.jsonl$")
# A config.yaml is a few kilobytes; a larger one is refused before YAML parses it.
_MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class ClipRecord:
    """One converted clip: a row of ``manifest.jsonl`` (the only manifest-row type).

    ``path`` is the ``.dat`` relative to the dataset root; ``frames`` the number of spike
    frames; ``source`` the video it came from (relative to the source dataset root);
    ``caption`` is None when the source had none (prompts are then built from ``cls``);
    ``paraphrases``: other wordings of the caption from the source's ``captions.jsonl``
    (empty when it listed none; training may draw them, evaluation uses ``caption``).
    ``repeats``: source frames that repeated their predecessor and were bridged by
    interpolation (None: not recorded, e.g. a manifest written before repeats were detected,
    or ``--keep-repeats``).
    """

    path: str
    cls: str
    label: int
    split: str
    caption: str | None
    frames: int
    height: int
    width: int
    source: str
    factor: int
    repeats: int | None = None
    paraphrases: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str = "manifest") -> ClipRecord:
        """Parse one manifest row; the types must be exact (``"15"`` is not a frame count)."""
        try:
            record = cls(
                path=_typed(row["path"], str, "path"),
                cls=_typed(row["class"], str, "class"),
                label=_typed(row["label"], int, "label"),
                split=_typed(row["split"], str, "split"),
                caption=None
                if row.get("caption") is None
                else _typed(row["caption"], str, "caption"),
                frames=_typed(row["frames"], int, "frames"),
                height=_typed(row["height"], int, "height"),
                width=_typed(row["width"], int, "width"),
                source=_typed(row.get("source", ""), str, "source"),
                factor=_typed(row.get("factor", 1), int, "factor"),
                repeats=None
                if row.get("repeats") is None
                else _typed(row["repeats"], int, "repeats"),
                paraphrases=tuple(
                    _typed(t, str, "paraphrase")
                    for t in _typed(row.get("paraphrases", []), list, "paraphrases")
                ),
            )
        except KeyError as err:
            raise DatasetError(
                f"{where}: a row lacks {err}; re-run spikesim convert to rewrite it"
            ) from None
        except TypeError as err:
            raise DatasetError(f"{where}: {err}; re-run spikesim convert to rewrite it") from None
        if record.frames < 1 or record.height < 1 or record.width < 1 or record.label < 0:
            raise DatasetError(
                f"{where}: {record.path} has frames {record.frames}, size "
                f"{record.height}x{record.width}, label {record.label}; they must be positive"
            )
        return record

    def to_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "class": self.cls,
            "label": self.label,
            "split": self.split,
            "caption": self.caption,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "source": self.source,
            "factor": self.factor,
            "repeats": self.repeats,
            **({"paraphrases": list(self.paraphrases)} if self.paraphrases else {}),
        }


def _typed(value: Any, kind: type, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        what = {int: "an integer", str: "text", list: "a list"}[kind]
        raise TypeError(f"{name} must be {what}, got {value!r}")
    return value


def check_clip_path(path: str, where: str) -> None:
    """Refuse a manifest path that is absolute or climbs out of the dataset root."""
    part = PurePosixPath(path)
    if part.is_absolute() or ".." in part.parts or "\\" in path or not path:
        raise DatasetError(f"{where}: path {path!r} points outside the dataset")


# ---------------------------------------------------------------------------- manifest


def read_manifest(path: str | os.PathLike) -> list[ClipRecord]:
    """The records of a manifest file, sorted by path; a path listed twice is an error."""
    path = Path(path)
    records = [
        ClipRecord.from_row(row, str(path))
        for row in read_jsonl(path, fix="re-run spikesim convert")
    ]
    return sorted_records(records, str(path))


def sorted_records(records: Iterable[ClipRecord], where: str) -> list[ClipRecord]:
    """Records sorted by path; raises ``DatasetError`` when a path is listed twice."""
    out = sorted(records, key=lambda r: r.path)
    for a, b in itertools.pairwise(out):
        if a.path == b.path:
            raise DatasetError(f"{where}: {a.path} is listed twice; re-run spikesim convert")
    return out


def write_manifest(path: str | os.PathLike, records: Iterable[ClipRecord]) -> None:
    write_jsonl(path, (r.to_row() for r in sorted(records, key=lambda r: r.path)))


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    write_atomic(Path(path), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_failures(path: str | os.PathLike, failures: Iterable[dict[str, str]]) -> None:
    write_jsonl(path, sorted(failures, key=lambda r: r["clip"]))


def shard_name(kind: str, shard: tuple[int, int]) -> str:
    """``manifest.shard-I-of-N.jsonl`` / ``failures.shard-I-of-N.jsonl``."""
    return f"{kind}.shard-{shard[0]}-of-{shard[1]}.jsonl"


def shard_manifests(out: Path) -> list[Path]:
    return sorted(
        p for p in out.glob("manifest.shard-*-of-*.jsonl") if _SHARD_MANIFEST.match(p.name)
    )


# ---------------------------------------------------------------------------- classes, config


def write_classes(out: str | os.PathLike, names: Iterable[str]) -> None:
    names = list(names)
    for name in names:
        if not name or "\n" in name or "\r" in name or name != name.strip():
            raise DatasetError(
                f"class name {name!r} cannot be written to {CLASSES}: it is empty, holds a "
                "line break or starts/ends with spaces; rename the class folder"
            )
    write_atomic(Path(out) / CLASSES, "".join(f"{name}\n" for name in names))


def read_classes(path: str | os.PathLike) -> list[str] | None:
    """Class names of ``classes.txt`` (index = label), or None if there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    return [ln.strip() for ln in read_text(path).splitlines() if ln.strip()]


def write_config(out: str | os.PathLike, config: dict[str, Any], header: str) -> None:
    """``config.yaml``: ``header`` (comment lines) then the mapping, keys in the given order."""
    text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    write_atomic(Path(out) / CONFIG, text)


def read_config(path: str | os.PathLike, *, strict: bool = True) -> dict[str, Any]:
    """The ``config.yaml`` mapping, ``{}`` if absent. The file is read with limits: larger than
    1 MiB, aliases (a YAML bomb), or (``strict``) not valid YAML raise ``DatasetError``; with
    ``strict=False`` a damaged file gives ``{}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        if path.stat().st_size > _MAX_CONFIG_BYTES:
            raise DatasetError(f"{path}: larger than 1 MiB, not a spikesim config; remove it")
        text = read_text(path)
        data = yaml.load(text, Loader=_NoAliasLoader)
    except (yaml.YAMLError, DatasetError) as err:
        if not strict:
            return {}
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"{path}: not valid YAML; re-run spikesim convert") from None
    return data if isinstance(data, dict) else {}


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases: our configs never use them, and
    nested aliases expand exponentially (a few hundred bytes can ask for gigabytes)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases are not allowed ({event.anchor!r})")
        return super().compose_node(parent, index)


# ---------------------------------------------------------------------------- SpikeCV view

SPIKECV_SPLITS = ("train", "test")
"""Split folders SpikeCV's recognition dataset reads (``<root>/train/<class>/*``)."""


def write_spikecv_view(out: str | os.PathLike, records: Iterable[ClipRecord]) -> int:
    """Link every clip of split ``train`` / ``test`` as ``out/<split>/<class>/<stem>.dat``.

    SpikeCV's recognition dataset takes ``<root>/train`` (or ``test``), one folder per class,
    and every file in it as a sample; our class folders also hold the ``.json`` sidecars, so
    it gets folders of its own holding only ``.dat`` files: relative symlinks (they survive
    moving the dataset; no bytes are copied). Links of clips no longer listed are removed.
    Returns the number of links. Raises ``DatasetError`` when a class is named like a split.
    """
    out = Path(out)
    records = list(records)
    clash = sorted({r.cls for r in records} & set(SPIKECV_SPLITS))
    if clash:
        raise DatasetError(
            f"{out}: a class is named {clash[0]!r}, which is also a SpikeCV split folder; "
            "rename that class folder"
        )
    wanted: dict[Path, str] = {}
    for r in records:
        if r.split in SPIKECV_SPLITS and r.path.endswith(".dat"):  # SpikeCV reads .dat only
            link = out / r.split / r.cls / PurePosixPath(r.path).name
            wanted[link] = os.path.relpath(out / r.path, link.parent)
    for split in SPIKECV_SPLITS:
        folder = out / split
        if not folder.is_dir():
            continue
        for entry in sorted(folder.rglob("*"), reverse=True):  # files before their folders
            if entry.is_symlink() and entry not in wanted:
                entry.unlink()
            elif entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):
                entry.rmdir()
    for link, target in wanted.items():
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(link)
        os.symlink(target, tmp)
        os.replace(tmp, link)
    return len(wanted)


# ---------------------------------------------------------------------------- merging shards


def merge_shards(out: str | os.PathLike) -> tuple[Path, int]:
    """Merge ``manifest.shard-I-of-N.jsonl`` (all N) into ``manifest.jsonl`` and the shard
    failures into ``failures.jsonl``. Returns (manifest path, number of clips).

    Raises ``DatasetError`` when a shard is missing, shards of different N are mixed, or a
    listed ``.dat`` is missing.
    """
    out = Path(out)
    found: dict[int, set[int]] = {}
    for path in shard_manifests(out):
        m = _SHARD_MANIFEST.match(path.name)
        assert m is not None  # shard_manifests matched it
        found.setdefault(int(m[2]), set()).add(int(m[1]))
    if not found:
        raise DatasetError(
            f"{out}: no manifest.shard-I-of-N.jsonl files; run `spikesim convert --shard I/N` "
            "for every shard first"
        )
    if len(found) > 1:
        raise DatasetError(
            f"{out}: shard manifests of different shard counts {sorted(found)}; "
            "delete the ones of the old layout"
        )
    ((count, have),) = found.items()
    missing = sorted(set(range(count)) - have)
    if missing:
        raise DatasetError(
            f"{out}: shards {missing} of {count} have not finished (no manifest); "
            f"run `spikesim convert --shard {missing[0]}/{count}` first"
        )
    records: dict[str, ClipRecord] = {}
    failures: dict[str, dict[str, Any]] = {}
    for i in range(count):
        for record in read_manifest(out / shard_name("manifest", (i, count))):
            records[record.path] = record
        fail_file = out / shard_name("failures", (i, count))
        if fail_file.is_file():
            for row in read_jsonl(fail_file):
                failures[row["clip"]] = row
    for record in records.values():
        if not (out / record.path).is_file():
            raise DatasetError(
                f"{out / record.path}: listed in a shard manifest but missing; run that shard again"
            )
    converted_sources = {r.source for r in records.values()}
    manifest = out / MANIFEST
    write_manifest(manifest, records.values())
    write_failures(out / FAILURES, (r for k, r in failures.items() if k not in converted_sources))
    write_spikecv_view(out, records.values())
    return manifest, len(records)
