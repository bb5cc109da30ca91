"""Named model configs and the factory that builds them.

Every ``*.json`` file in ``spklip/model_configs/`` (and any folder or file given to
:func:`add_model_config`) is a model named after the file: ``spklip-tiny.json`` ->
``"spklip-tiny"``. The file holds a nested :class:`~spklip.model.SPKLIPConfig` dict.

Overrides change a named config without editing it. Each keyword is either

- a dotted path to one field: ``create_model("spklip-paper", **{"hsfe.n_blocks": 3})``;
- a section with a dict, merged key by key: ``create_model("spklip-paper", hsfe={"n_blocks": 3})``;
- a top-level field: ``create_model("spklip-tiny", embed_dim=256)``.

On the command line, ``parse_overrides(["hsfe.n_blocks=3", "hsfe.step=null"])`` turns
``KEY=VALUE`` strings into that dict (values are JSON; anything else is a string).
:data:`ABLATIONS` names the overrides of the paper's ablations; ``create_model(name,
ablation="blocks-7")`` builds one (:func:`ablation_overrides` resolves it on the named config).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import SpklipError
from .loss import loss_options, uses_caption_targets
from .model import SPKLIP, SPKLIPConfig
from .tokenizer import SpikeTokenizer

__all__ = [
    "ABLATIONS",
    "TrainRecipe",
    "ablation_overrides",
    "add_model_config",
    "apply_overrides",
    "create_model",
    "create_model_from_config",
    "get_model_config",
    "get_recipe",
    "list_models",
    "parse_overrides",
]

_CONFIG_SOURCES: list[Path] = [Path(__file__).parent / "model_configs"]
_REGISTRY: dict[str, dict[str, Any]] = {}
_SCANNED = False

# The paper's ablations (Tables 2-4) as overrides of a named config (see docs/model.md).
# "full" is the model as configured: MTF + SA in HSFE, and STAR-Net's temporal Transformer.
# blocks-N (Table 3) keep the sub-block step, so more blocks cover a longer window: the
# input frames grow to hold them (ablation_overrides adds hsfe.step and frames).
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "mtf-only": {"hsfe.fusion": "mean", "star.temporal_layers": 0},
    "mtf-sa": {"hsfe.fusion": "attention", "star.temporal_layers": 0},
    "no-channel-slicing": {"hsfe.channel_slicing": False},
    "blocks-3": {"hsfe.n_blocks": 3},
    "blocks-5": {"hsfe.n_blocks": 5},
    "blocks-7": {"hsfe.n_blocks": 7},
}


def ablation_overrides(name: str, config: SPKLIPConfig) -> dict[str, Any]:
    """The overrides of ablation ``name`` (:data:`ABLATIONS`) for a model built from ``config``.

    A block-count ablation keeps ``config``'s sub-block step (``hsfe.step``; with
    ``hsfe.step = null`` the step the config resolves to, or 2r+1, adjacent blocks, when it
    has one block) and sets ``frames`` to max(config frames, the raw frames the N blocks span):
    for spklip-paper (r = 30, step 45) 3 and 5 blocks read 151 and 241 of the 250 frames, 7
    blocks read 331 frames.
    """
    if name not in ABLATIONS:
        raise SpklipError(f"unknown ablation {name!r}; available: {', '.join(ABLATIONS)}")
    overrides = dict(ABLATIONS[name])
    if "hsfe.n_blocks" in overrides:
        hsfe = config.hsfe
        n = overrides["hsfe.n_blocks"]
        if hsfe.step is not None:
            step = hsfe.step
        elif hsfe.n_blocks > 1:
            step = hsfe.resolved_step(config.binned_frames)
        else:
            step = hsfe.block_length
        span = hsfe.block_length + (n - 1) * step  # binned frames
        overrides["hsfe.step"] = step
        overrides["frames"] = max(config.frames, span * config.temporal_bin)
    return overrides


def _scan() -> None:
    global _SCANNED
    _REGISTRY.clear()
    for source in _CONFIG_SOURCES:
        files = [source] if source.is_file() else sorted(source.glob("*.json"))
        for path in files:
            try:
                _REGISTRY[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise SpklipError(f"model config {path} cannot be read: {e}") from e
    _SCANNED = True


def _registry() -> dict[str, dict[str, Any]]:
    if not _SCANNED:
        _scan()
    return _REGISTRY


def add_model_config(path: str | os.PathLike[str]) -> None:
    """Register one more ``.json`` config file, or every ``.json`` in a folder."""
    path = Path(path)
    if not path.exists():
        raise SpklipError(f"model config path {path} does not exist")
    _CONFIG_SOURCES.append(path)
    _scan()


def list_models() -> list[str]:
    """Names of the registered model configs, sorted."""
    return sorted(_registry())


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["hsfe.n_blocks=3", "image_size=[60,80]"]`` -> ``{"hsfe.n_blocks": 3, ...}``.

    Values are parsed as JSON (numbers, true/false, null, lists); anything that is not JSON
    stays a string (``hsfe.fusion=mean``, ``image_size=60x80``).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpklipError(f"override {item!r} is not KEY=VALUE, e.g. hsfe.n_blocks=3")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = value
    return out


def _set_path(tree: dict[str, Any], path: list[str], value: Any, full_key: str) -> None:
    node = tree
    for depth, part in enumerate(path):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(path[:depth])
            valid = sorted(node) if isinstance(node, dict) else []
            prefix = f"{where}." if where else ""
            raise SpklipError(
                f"unknown config key {full_key!r}; valid keys here: "
                + ", ".join(prefix + k for k in valid)
            )
        if depth == len(path) - 1:
            if isinstance(node[part], dict) and isinstance(value, Mapping):
                for key, sub in value.items():
                    _set_path(node[part], [key], sub, f"{full_key}.{key}")
            else:
                node[part] = value
        else:
            node = node[part]


def apply_overrides(config: SPKLIPConfig, overrides: Mapping[str, Any]) -> SPKLIPConfig:
    """A new config with ``overrides`` (dotted keys or nested dicts) applied and validated."""
    tree = config.to_dict()
    for key, value in overrides.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)  # e.g. hsfe=HSFEConfig(...)
        _set_path(tree, key.split("."), copy.deepcopy(value), key)
    return SPKLIPConfig.from_dict(tree)


@dataclass(frozen=True)
class TrainRecipe:
    """How a named model is trained unless told otherwise: the ``recipe`` section of its
    config JSON, the paper's numbers (Sec. 4.1) for what it leaves out."""

    lr: float = 2e-5  # AdamW peak learning rate, reached after the warm-up
    batch_size: int = 8  # clips per step and process
    epochs: int = 30
    captions: str = "mixed"  # training texts: "caption" | "prompt" | "mixed" | "both"
    # (spklip.data); "both": a class prompt and the clip's caption, two loss terms
    loss: str = "eq6"  # spklip.loss.LOSSES: "eq6" (the paper's Eq. 6: identity
    # positives, sum of the two directions), "label-aware" (ours: clips of one class in a
    # batch are not negatives, mean of the two directions) or "caption-aware" (label-aware
    # for class prompts, identity for a clip's own caption: hard negatives within a class)

    caption_weight: float = 1.0  # with captions "both": weight of the caption term
    # (identity targets, spklip.loss.prompt_caption_loss) against the prompt term
    caption_paraphrases: bool = False  # a clip's training caption drawn from its caption
    # and the paraphrases its source listed (spklip.data.SpikeClips ``paraphrases``)

    def __post_init__(self) -> None:
        loss_options(self.loss)  # a SpklipError naming the choices
        if not (isinstance(self.caption_weight, (int, float)) and self.caption_weight >= 0):
            raise SpklipError(
                f"recipe caption_weight must be a number >= 0, got {self.caption_weight!r}"
            )

    @property
    def label_aware(self) -> bool:
        """Whether the recipe's loss uses label-aware targets."""
        return bool(loss_options(self.loss)["label_aware"])

    @property
    def instance(self) -> bool:
        """Whether a clip's own caption has that clip alone as positive (the other clips of
        its class are its negatives), while class prompts stay label-aware."""
        return uses_caption_targets(self.loss)

    @property
    def reduction(self) -> str:
        """How the recipe's loss combines the two directions: "sum" (Eq. 6) or "mean"."""
        return str(loss_options(self.loss)["reduction"])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> TrainRecipe:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpklipError(
                f"{where}: unknown recipe key {unknown[0]!r}; valid: {', '.join(sorted(names))}"
            )
        return cls(**data)


def _entry(name: str) -> dict[str, Any]:
    registry = _registry()
    if name not in registry:
        raise SpklipError(f"unknown model {name!r}; available: {', '.join(sorted(registry))}")
    return registry[name]


def get_model_config(name: str, *, ablation: str | None = None, **overrides: Any) -> SPKLIPConfig:
    """The config registered as ``name``, with ``overrides`` applied, then the named
    ``ablation`` (:func:`ablation_overrides`, resolved on the overridden config)."""
    entry = {k: v for k, v in _entry(name).items() if k != "recipe"}
    config = SPKLIPConfig.from_dict(entry)
    config = apply_overrides(config, overrides) if overrides else config
    if ablation is not None:
        config = apply_overrides(config, ablation_overrides(ablation, config))
    return config


def get_recipe(name: str) -> TrainRecipe:
    """The training recipe of the model registered as ``name`` (its config's ``recipe``)."""
    return TrainRecipe.from_dict(_entry(name).get("recipe", {}), f"model config {name}")


def create_model_from_config(
    config: SPKLIPConfig | Mapping[str, Any],
    *,
    seed: int | None = None,
    tokenizer: SpikeTokenizer | None = None,
) -> SPKLIP:
    """Build a model from a config (or its dict, e.g. from a checkpoint).

    With ``seed`` the initial weights depend only on it (the global RNG is left untouched).
    """
    if not isinstance(config, SPKLIPConfig):
        config = SPKLIPConfig.from_dict(config)
    if seed is None:
        return SPKLIP(config, tokenizer=tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SPKLIP(config, tokenizer=tokenizer)


def create_model(
    name: str,
    *,
    seed: int | None = None,
    tokenizer: SpikeTokenizer | None = None,
    ablation: str | None = None,
    **overrides: Any,
) -> SPKLIP:
    """Build the model registered as ``name`` with ``overrides`` (see the module docstring)
    and, if given, the paper's ``ablation`` (a key of :data:`ABLATIONS`).

    >>> model = create_model("spklip-tiny", seed=0, **{"hsfe.n_blocks": 3, "hsfe.step": None})
    >>> model = create_model("spklip-paper", ablation="blocks-7")  # 331 input frames
    """
    return create_model_from_config(
        get_model_config(name, ablation=ablation, **overrides), seed=seed, tokenizer=tokenizer
    )
