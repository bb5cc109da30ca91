"""The JSON sidecar beside a ``.dat`` (or an event ``.h5``): its name and its readers.

``clip.dat`` -> ``clip.json``. Writers (``DatWriter``, the event writer) own the keys
``height``, ``width``, ``frames``, ``flipud``, ``format`` and ``spikesim_version``; the rest says
how the stream was made (encoder, noise, seed, source video, interpolation).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatError, SpikesimError
from .files import write_atomic

__all__ = [
    "check_meta",
    "json_default",
    "publish",
    "read_sidecar",
    "sidecar_path",
    "valid_sidecar",
]


def sidecar_path(data_path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar beside a data file: ``clip.dat`` -> ``clip.json``."""
    return Path(data_path).with_suffix(".json")


def read_sidecar(data_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of ``data_path`` as a dict, ``{}`` when there is none (a bare camera file).

    Raises ``DatError`` when it exists but is not a JSON object with integer height and width.
    """
    side = sidecar_path(data_path)
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatError(
            f"{side}: sidecar is not readable JSON ({err}); fix or delete it "
            "and pass height and width"
        ) from None
    if not isinstance(meta, dict):
        raise DatError(f"{side}: sidecar is not a JSON object; fix or delete it")
    for key in ("height", "width"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DatError(f"{side}: sidecar has no integer {key!r}; fix or delete it")
    if "flipud" in meta and not isinstance(meta["flipud"], bool):
        raise DatError(f"{side}: sidecar flipud must be true or false, got {meta['flipud']!r}")
    if "frames" in meta and (
        isinstance(meta["frames"], bool) or not isinstance(meta["frames"], int)
    ):
        raise DatError(f"{side}: sidecar frames must be an integer, got {meta['frames']!r}")
    return meta


def valid_sidecar(dat: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sidecar of a finished ``.dat`` (or event ``.h5``): readable and agreeing with the
    file, else None
    (used to decide whether a clip is done; anything doubtful is simply made again)."""
    dat = Path(dat)
    try:
        meta = read_sidecar(dat)
        frames = meta["frames"]
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            return None
        if dat.suffix == ".h5":  # an event file: its writer wrote the sidecar after the events
            events = meta["events"]
            if isinstance(events, bool) or not isinstance(events, int) or not dat.stat().st_size:
                return None
        elif dat.stat().st_size != frames * (meta["height"] * meta["width"] // 8):
            return None
    except (OSError, DatError, KeyError, TypeError):
        return None
    return meta


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays and paths in sidecars."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def check_meta(
    path: Path,
    meta: dict[str, Any],
    own: dict[str, Any],
    owned_keys: tuple[str, ...],
    error: type[SpikesimError],
) -> dict[str, Any]:
    """A writer's caller-given sidecar ``meta``, checked: keys the writer owns may repeat only
    with the writer's values (``own``) and are dropped (``owned_keys``); the rest must be
    JSON-able. ``error`` is the writer's error type."""
    for key, value in own.items():
        if key in meta and meta[key] != value:
            raise error(
                f"{path}: meta says {key}={meta[key]!r} but the writer has {value!r}; "
                f"drop {key!r} from meta"
            )
    meta = {k: v for k, v in meta.items() if k not in owned_keys}
    try:
        json.dumps(meta, default=json_default)
    except (TypeError, ValueError) as err:
        raise error(f"{path}: meta cannot be saved as JSON ({err})") from None
    return meta


def publish(tmp: Path, path: Path, sidecar: dict[str, Any]) -> None:
    """Finish a data file written under the temporary name ``tmp``: write its sidecar
    (atomically), then rename ``tmp`` to ``path``. The data file appears last, so its presence
    means the pair is complete."""
    write_atomic(sidecar_path(path), json.dumps(sidecar, indent=2, default=json_default) + "\n")
    os.replace(tmp, path)
