"""Checkpoints: one folder per epoch, written atomically, read without unpickling objects.

Layout of a training run::

    OUT/checkpoints/epoch_001/      model.safetensors   weights (safetensors)
                                    config.json         model name, overrides, model and
                                                        train config, classes, epoch, and
                                                        tokenizer: {kind, version, sha256}
                                    tokenizer.json      the run's tokenizer (SpikeTokenizer JSON)
                                    state.pt            optimizer, scheduler, epoch, RNG
                                                        (tensors and plain containers only)
    OUT/checkpoints/latest          text file: the name of the newest complete folder

A folder is written under a temporary name and renamed when complete, then ``latest`` is
replaced, so a run killed at any moment leaves the previous checkpoint usable.
``state.pt`` is read with ``torch.load(weights_only=True)``: a file carrying arbitrary
Python objects is refused, never executed.

Format 2 adds the tokenizer record to ``config.json`` (and checks ``tokenizer.json`` against
its sha256 on reading). Format-1 checkpoints, written before the byte tokenizer existed, still
load: their ``tokenizer.json`` is a run-trained BPE, and their model is rebuilt with
``text.tokenizer = "bpe-run"``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_model

from spikesim import temp_name, write_atomic

from .errors import SpklipError
from .factory import create_model_from_config
from .model import SPKLIP
from .tokenizer import SpikeTokenizer

FORMAT = "spklip-checkpoint/2"
READ_FORMATS = ("spklip-checkpoint/1", FORMAT)  # format 1: no tokenizer record, BPE tokenizer
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
STATE = "state.pt"
LATEST = "latest"
CHECKPOINTS = "checkpoints"


@dataclass
class Checkpoint:
    """What a checkpoint folder holds, loaded to CPU.

    ``state_dict``: name -> tensor of the model weights; ``config``: the ``config.json``
    dict (keys ``format``, ``model_name``, ``model_overrides``, ``model_config``,
    ``train_config``, ``classes``, ``epoch``); ``tokenizer_json``: the tokenizer as JSON
    text; ``train_state``: optimizer / scheduler / RNG state, or None when not asked for.
    """

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    tokenizer_json: str
    train_state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def epoch(self) -> int:
        return int(self.config.get("epoch", 0))


def epoch_dir_name(epoch: int) -> str:
    """``3`` -> ``"epoch_003"``."""
    return f"epoch_{epoch:03d}"


def save_checkpoint(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    *,
    config: dict[str, Any],
    tokenizer_json: str,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (unwrapped, not the DDP wrapper), ``config``, the tokenizer and the
    optional ``train_state`` into ``folder``, atomically. If ``folder`` sits in a
    ``checkpoints/`` directory, ``checkpoints/latest`` is pointed at it. Returns ``folder``.

    ``train_state`` may hold tensors, numbers, strings, lists, tuples and dicts only
    (what ``torch.load(weights_only=True)`` reads back). When ``tokenizer_json`` is a
    :meth:`SpikeTokenizer.to_json` string, its kind, version and sha256 are recorded in
    ``config.json`` under ``"tokenizer"``.
    """
    folder = Path(folder)
    record = _tokenizer_record(tokenizer_json)
    if record is not None:
        config = {**config, "tokenizer": record}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(folder)  # <name>.tmp-<pid>-<rand>, the scheme of every writer
    tmp.mkdir()
    try:
        (tmp / CONFIG).write_text(
            json.dumps({"format": FORMAT, **config}, indent=2, default=str), encoding="utf-8"
        )
        save_model(model, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        # safetensors creates its file 0600; give it the mode of the run's other files.
        os.chmod(tmp / WEIGHTS, (tmp / CONFIG).stat().st_mode & 0o777)
        (tmp / TOKENIZER).write_text(tokenizer_json, encoding="utf-8")
        if train_state is not None:
            torch.save(train_state, tmp / STATE)
        if folder.exists():  # re-writing the same epoch (a resumed run redoing it)
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except (SafetensorError, OSError) as err:  # a full disk, a quota, a read-only folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise SpklipError(
            f"{folder}: could not write the checkpoint ({err}); nothing of it was kept: free "
            "some space and continue with --resume"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.parent.name == CHECKPOINTS:
        write_atomic(folder.parent / LATEST, folder.name + "\n")
    return folder


def _tokenizer_record(tokenizer_json: str) -> dict[str, str] | None:
    """``{"kind", "version", "sha256"}`` of a SpikeTokenizer JSON, or None for other text."""
    try:
        data = json.loads(tokenizer_json)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not all(k in data for k in ("kind", "version", "sha256")):
        return None
    return {k: data[k] for k in ("kind", "version", "sha256")}


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run (``run_dir`` or its
    ``checkpoints/``), or None when there is none yet."""
    run_dir = Path(run_dir)
    ckdir = run_dir if run_dir.name == CHECKPOINTS else run_dir / CHECKPOINTS
    pointer = ckdir / LATEST
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8", errors="replace").strip()
        candidate = ckdir / name
        # The pointer names a folder beside it; anything else (a path leaving the run) is ignored.
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            if (candidate / CONFIG).is_file() and candidate.resolve().parent == ckdir.resolve():
                return candidate
    # No pointer (or a stale one): the highest-numbered complete folder.
    found = sorted(p for p in ckdir.glob("epoch_*") if (p / CONFIG).is_file())
    return found[-1] if found else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint folder, a file inside one, a run folder, its ``checkpoints/`` or
    the ``checkpoints/latest`` pointer (-> the latest); return the checkpoint folder or raise
    SpklipError."""
    p = Path(path)
    if not p.exists():
        raise SpklipError(
            f"{p}: no such checkpoint; give a run folder or OUT/checkpoints/epoch_NNN"
        )
    if p.is_file():
        if p.name in (WEIGHTS, CONFIG, TOKENIZER, STATE) and (p.parent / WEIGHTS).exists():
            return p.parent
        if p.name == LATEST:  # the pointer file OUT/checkpoints/latest
            latest = latest_checkpoint(p.parent)
            if latest is not None:
                return latest
        raise SpklipError(
            f"{p}: not a spklip checkpoint; give the checkpoint folder (with {WEIGHTS} and "
            f"{CONFIG}) or the run folder"
        )
    if (p / WEIGHTS).exists() or (p / CONFIG).exists():
        return p
    latest = latest_checkpoint(p)
    if latest is None:
        raise SpklipError(
            f"{p}: no checkpoint in this folder; expected {WEIGHTS} + {CONFIG}, or "
            f"{CHECKPOINTS}/epoch_NNN from `spklip train`"
        )
    return latest


def _bad(path: Path, what: str) -> SpklipError:
    return SpklipError(
        f"{path}: {what}; the checkpoint is corrupt or incomplete, use another epoch"
    )


def load_checkpoint(path: str | os.PathLike, *, with_train_state: bool = False) -> Checkpoint:
    """Read a checkpoint (see :func:`resolve_checkpoint` for what ``path`` may be) to CPU.

    Never unpickles Python objects: weights come from safetensors, the training state
    from ``torch.load(weights_only=True)``. Any missing, truncated or foreign file
    raises a one-line SpklipError.
    """
    folder = resolve_checkpoint(path)
    for name in (WEIGHTS, CONFIG, TOKENIZER):
        if not (folder / name).is_file():
            raise _bad(folder, f"{name} is missing")
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(folder / CONFIG, f"not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("format") not in READ_FORMATS:
        found = config.get("format") if isinstance(config, dict) else None
        if isinstance(found, str) and found.startswith("spklip-checkpoint/"):
            raise SpklipError(
                f"{folder / CONFIG}: checkpoint format {found} is newer than this spklip reads "
                f"({', '.join(READ_FORMATS)}); upgrade spklip"
            )
        raise SpklipError(f"{folder / CONFIG}: not a {FORMAT} config; is this a spklip checkpoint?")
    try:
        state_dict = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise _bad(folder / WEIGHTS, f"unreadable weights ({first})") from None
    tokenizer_json = (folder / TOKENIZER).read_text(encoding="utf-8")
    record = config.get("tokenizer")
    if isinstance(record, dict):
        found = _tokenizer_record(tokenizer_json)
        if found is None or found["sha256"] != record.get("sha256"):
            raise _bad(
                folder / TOKENIZER,
                f"not the {record.get('kind')} tokenizer config.json records (sha256 differs)",
            )
    train_state = None
    if with_train_state:
        train_state = load_train_state(folder / STATE)
    return Checkpoint(folder, config, state_dict, tokenizer_json, train_state)


def load_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one-line errors: a file that holds
    arbitrary Python objects (a pickle that could run code) is refused unread."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "training state is missing (saved without it?)")
    try:
        with warnings.catch_warnings():
            # A foreign pickle protocol warns before being refused; the refusal says enough.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SpklipError(
            f"{path}: refused to load: it holds Python objects, not only tensors "
            "(not written by spklip, or tampered with)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise _bad(path, f"unreadable training state ({first})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise _bad(path, "training state has no epoch")
    return state


def load_model(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[SPKLIP, Checkpoint]:
    """Rebuild the model of a checkpoint (its saved config, weights and tokenizer) on
    ``device``, in eval mode. Returns the model and the loaded :class:`Checkpoint`."""
    ckpt = load_checkpoint(path)
    model_config = ckpt.config.get("model_config")
    if ckpt.config.get("kind") == SCMRL_KIND:
        raise SpklipError(f"{ckpt.path}: an S-CMRL checkpoint; evaluate it with `spklip av-eval`")
    if not isinstance(model_config, dict):
        raise SpklipError(f"{ckpt.path / CONFIG}: no model_config; not written by spklip train")
    if ckpt.config.get("format") == READ_FORMATS[0] and isinstance(model_config.get("text"), dict):
        # Written before tokenizer kinds existed: its tokenizer.json is a run-trained BPE.
        model_config = {
            **model_config,
            "text": {"tokenizer": "bpe-run", **model_config["text"]},
        }
    model = create_model_from_config(model_config)
    try:
        missing, unexpected = model.load_state_dict(ckpt.state_dict, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape: written by other model code
        first = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), "")
        raise SpklipError(
            f"{ckpt.path / WEIGHTS}: weights do not fit the saved model config ({first.rstrip('.')}"
            "); the checkpoint was written by another version of spklip, or is damaged"
        ) from None
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise SpklipError(
            f"{ckpt.path / WEIGHTS}: weights do not fit the saved model config ({len(missing)} "
            f"missing, {len(unexpected)} unexpected, e.g. {first}); the checkpoint is damaged"
        )
    model.tokenizer = SpikeTokenizer.from_json(ckpt.tokenizer_json)
    return model.to(device).eval(), ckpt


def checkpoint_tokenizer(ckpt: Checkpoint) -> dict[str, Any]:
    """Which tokenizer a checkpoint used: ``{"kind", "version", "sha256"}`` from its
    ``config.json`` (format 2), or rebuilt from its ``tokenizer.json`` (format 1)."""
    record = ckpt.config.get("tokenizer")
    if isinstance(record, dict):
        return dict(record)
    tok = SpikeTokenizer.from_json(ckpt.tokenizer_json)
    return {"kind": tok.kind, "version": tok.version, "sha256": tok.sha256}


# ----------------------------------------------------------------------------- S-CMRL

SCMRL_KIND = "scmrl"  # config.json "kind" of an S-CMRL checkpoint (SPKLIP ones have none)


def save_scmrl_checkpoint(
    folder: str | os.PathLike, model: torch.nn.Module, *, config: dict[str, Any]
) -> Path:
    """Write an S-CMRL (``spklip.scmrl.SCMRL``) checkpoint into ``folder``, atomically, in the
    layout of :func:`save_checkpoint`: ``model_config`` (its ``SCMRLConfig``) and ``kind``
    "scmrl" are added to ``config`` (the caller's train settings, classes, epoch, data
    settings); ``tokenizer.json`` is empty (S-CMRL reads no text)."""
    model_config = model.config.to_dict()
    full = {**config, "kind": SCMRL_KIND, "model_config": model_config}
    return save_checkpoint(folder, model, config=full, tokenizer_json="")


def load_scmrl_model(path: str | os.PathLike, *, device: str | torch.device = "cpu"):
    """Rebuild the S-CMRL of a :func:`save_scmrl_checkpoint` folder (or a run folder / its
    ``checkpoints/``, as :func:`resolve_checkpoint` reads them) on ``device``, in eval mode.
    Returns (model, :class:`Checkpoint`)."""
    from .scmrl import SCMRL, get_scmrl_config

    ckpt = load_checkpoint(path)
    model_config = ckpt.config.get("model_config")
    if ckpt.config.get("kind") != SCMRL_KIND or not isinstance(model_config, dict):
        raise SpklipError(
            f"{ckpt.path / CONFIG}: not an S-CMRL checkpoint; give the folder `spklip av-train` "
            "wrote"
        )
    model = SCMRL(get_scmrl_config("scmrl-paper", **model_config))
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise SpklipError(
            f"{ckpt.path / WEIGHTS}: weights do not fit the saved S-CMRL config ({first}); the "
            "checkpoint is damaged or from another spklip version"
        ) from None
    return model.to(device).eval(), ckpt
