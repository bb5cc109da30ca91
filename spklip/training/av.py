"""Training S-CMRL and its baselines (spklip.scmrl) on audio-visual spike data.

- :func:`train_av`: AdamW (no decay on biases and norms), linear warm-up and cosine decay,
  gradient clipping, seeded shuffles, optional modality dropout (:func:`drop_modality`) for
  the models that read both streams; one dict per epoch (loss parts, lr, train and
  validation Top-1, seconds); optionally restores the epoch with the best validation Top-1.
- :func:`run_av_experiment`: every variant (:data:`VARIANTS`) x seeds, validation for the
  epoch choice, the test split read once per run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..av_data import AVTensors, iter_batches, model_device, time_major
from ..errors import SpklipError
from ..evaluation.av import (
    binary_activation_share,
    estimate_av_energy,
    evaluate_av,
    noise_robustness,
)
from ..scmrl import SCMRL, SCMRLConfig, count_parameters, get_scmrl_config
from ..scmrl_loss import SCMRLLossConfig, scmrl_loss
from .optim import lr_factor, param_groups

# ----------------------------------------------------------------------------- training


@dataclass
class AVTrainConfig:
    """One training run of :func:`train_av`."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3  # peak AdamW learning rate, after the warm-up
    weight_decay: float = 1e-2  # not applied to biases and norms
    warmup: float = 0.05  # warm-up share of all steps
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # max global gradient norm
    seed: int = 0  # shuffles (and, in run_av_experiment, the initial weights)
    loss: SCMRLLossConfig = field(default_factory=SCMRLLossConfig)
    select_best: bool = True  # with a validation set: end on the epoch of best val Top-1
    # modality dropout: per training sample, with this probability, the spikes of one of the
    # two streams (chosen at random) are zeroed (:func:`drop_modality`); only for models that
    # read both streams; 0 turns it off
    modality_dropout: float = 0.0
    log: Callable[[dict[str, Any]], None] | None = None  # called with each epoch's row

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise SpklipError("train_av: epochs and batch_size must be >= 1 and lr > 0")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise SpklipError(
                f"train_av: modality_dropout = {self.modality_dropout}; give a probability "
                "in [0, 1)"
            )


DROPPED_NONE, DROPPED_VISION, DROPPED_AUDIO = 0, 1, 2


def drop_modality(
    vision: torch.Tensor, audio: torch.Tensor, p: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Modality dropout on a batch-major batch: each sample, with probability ``p``, has
    the spikes of one stream zeroed, vision or audio with equal chance (draws from
    ``generator``). Returns (vision, audio, dropped): new tensors (the inputs are not
    changed) and per sample :data:`DROPPED_NONE`, :data:`DROPPED_VISION` or
    :data:`DROPPED_AUDIO` (int64, shape (B,)). A model that must still classify such samples
    learns to use each modality alone, not only the one that is usually the more reliable."""
    if not 0.0 <= p < 1.0:
        raise SpklipError(f"drop_modality: p = {p}; give a probability in [0, 1)")
    if vision.shape[0] != audio.shape[0]:
        raise SpklipError(
            f"drop_modality: vision has {vision.shape[0]} samples and audio {audio.shape[0]}; "
            "give batch-major tensors of one batch"
        )
    b = vision.shape[0]
    drop = torch.rand(b, generator=generator) < p
    which = torch.randint(0, 2, (b,), generator=generator)  # 0: vision, 1: audio
    dropped = torch.where(drop, which + 1, torch.zeros_like(which))
    keep_v = (dropped != DROPPED_VISION).to(vision.dtype).view(b, *([1] * (vision.dim() - 1)))
    keep_a = (dropped != DROPPED_AUDIO).to(audio.dtype).view(b, *([1] * (audio.dim() - 1)))
    return vision * keep_v.to(vision.device), audio * keep_a.to(audio.device), dropped


def train_av(
    model: SCMRL,
    train_set: Dataset,
    *,
    val_set: Dataset | None = None,
    config: AVTrainConfig | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``train_set``; returns one dict per epoch: ``epoch`` (1-based),
    ``loss``, ``ce``, ``sa`` (sample means), ``lr`` (at the epoch's end), ``train_top1`` (on
    the batches as trained), ``val_top1`` (None without ``val_set``), ``seconds``. With
    ``val_set`` and ``select_best``, the weights of the best validation epoch (the earliest of
    ties) are restored at the end and that row has ``"best": True``. With
    ``modality_dropout`` > 0 and a model that reads both streams, each training batch goes
    through :func:`drop_modality` (its own seeded draws: the shuffles stay those of p = 0);
    validation and test inputs are never dropped."""
    cfg = config or AVTrainConfig()
    if len(train_set) == 0:
        raise SpklipError("train_av: the training set is empty")
    device = model_device(model)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup * total)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    # its own stream of draws, so that the shuffles are those of a run without dropout
    drop_gen = torch.Generator().manual_seed(cfg.seed + 7919)
    dropout = cfg.modality_dropout if len(model.config.modalities) == 2 else 0.0
    rows: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        sums = {"loss": 0.0, "ce": 0.0, "sa": 0.0, "correct": 0.0}
        seen = 0
        for vision, audio, labels in iter_batches(train_set, cfg.batch_size, generator):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, total, warmup, cfg.min_lr_ratio)
            labels = labels.to(device)
            if dropout > 0:
                vision, audio, _ = drop_modality(vision, audio, dropout, drop_gen)
            out = model(time_major(vision).to(device), time_major(audio).to(device))
            parts = scmrl_loss(out, labels, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            b = len(labels)
            seen += b
            for key in ("loss", "ce", "sa"):
                sums[key] += float(parts[key].detach()) * b
            sums["correct"] += float((out.logits.argmax(dim=1) == labels).sum())
        row: dict[str, Any] = {
            "epoch": epoch,
            **{k: sums[k] / seen for k in ("loss", "ce", "sa")},
            "lr": optimizer.param_groups[0]["lr"],
            "train_top1": sums["correct"] / seen,
            "val_top1": None,
        }
        if val_set is not None and len(val_set):
            row["val_top1"] = evaluate_av(model, val_set, batch_size=cfg.batch_size)["top1"]
            if cfg.select_best and (best is None or row["val_top1"] > best[0]):
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (row["val_top1"], epoch, state)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if cfg.log is not None:
            cfg.log(row)
    if best is not None:
        model.load_state_dict(best[2])
        rows[best[1] - 1]["best"] = True
    return rows


# ----------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class AVVariant:
    """A row of the comparison: overrides of the model config and of the loss config."""

    name: str
    model: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Any] = field(default_factory=dict)


VARIANTS: tuple[AVVariant, ...] = (
    AVVariant("scmrl"),
    AVVariant("audio-only", {"fusion": "audio"}),
    AVVariant("vision-only", {"fusion": "vision"}),
    AVVariant("additive", {"fusion": "add"}),
    AVVariant("concat", {"fusion": "concat"}),
    AVVariant("scmrl-no-sa", {}, {"sa_weight": 0.0}),
    AVVariant("scmrl-no-residual", {"residual": False}),
)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def run_av_experiment(
    train_set: AVTensors,
    val_set: AVTensors,
    test_set: AVTensors,
    *,
    models: Sequence[AVVariant | str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 20,
    base: str | SCMRLConfig = "scmrl-tiny",
    train: AVTrainConfig | None = None,
    audio_at_snr: Callable[[float], torch.Tensor | np.ndarray] | None = None,
    snrs: Sequence[float] = (0, 5, 10, 15, 20, 25, 30),
    measure_batch: int = 8,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every variant (default :data:`VARIANTS`; names pick from it) with every seed.

    Each run: ``torch.manual_seed(seed)`` then the model (``base`` config, sized to the data:
    steps, channels, input sizes, classes), :func:`train_av` for ``epochs`` with validation on
    ``val_set`` choosing the epoch, then the test split read once: Top-1, per class and, with
    ``audio_at_snr`` (a callable giving the test set's audio spikes at an SNR), the noise
    curve. The first seed's model also gets :func:`binary_activation_share` and
    :func:`estimate_av_energy` on the first ``measure_batch`` test samples.

    Returns a JSON-able dict: ``variants`` {name: {``model``, ``loss`` (overrides), ``runs``
    (per seed: seed, best_epoch, val_top1, test_top1, per_class, per_group (None without
    groups), noise, history, seconds), ``test_top1_mean``/``_sd``, ``per_group`` (test Top-1
    by the test set's groups: {group: {mean, sd}}, when it has groups),
    ``val_top1_mean``/``_sd``, ``noise`` (per SNR: mean, sd),
    ``binary``, ``energy``, ``parameters``}}, ``seeds``, ``epochs``, ``base`` (config dict),
    ``train`` (settings), ``sizes`` (samples per split), ``seconds``.
    """
    by_name = {v.name: v for v in VARIANTS}
    chosen: list[AVVariant] = []
    for v in models or VARIANTS:
        if isinstance(v, str):
            if v not in by_name:
                raise SpklipError(f"unknown variant {v!r}; choose from {', '.join(by_name)}")
            v = by_name[v]
        chosen.append(v)
    if not seeds:
        raise SpklipError("run_av_experiment: give at least one seed")
    base_cfg = get_scmrl_config(base, **train_set.shapes)
    train_cfg = train or AVTrainConfig()
    begin = time.perf_counter()
    result: dict[str, Any] = {
        "base": base_cfg.to_dict(),
        "seeds": list(seeds),
        "epochs": epochs,
        "train": {k: v for k, v in asdict(train_cfg).items() if k not in ("log", "loss")},
        "loss": asdict(train_cfg.loss),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        "variants": {},
    }
    probe = test_set.subset(range(min(measure_batch, len(test_set))))
    probe_batch = (time_major(probe.vision), time_major(probe.audio))
    for variant in chosen:
        model_cfg = get_scmrl_config(base_cfg, **dict(variant.model))
        loss_cfg = SCMRLLossConfig(**{**asdict(train_cfg.loss), **dict(variant.loss)})
        runs = []
        entry: dict[str, Any] = {"model": dict(variant.model), "loss": dict(variant.loss)}
        for seed in seeds:
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = SCMRL(model_cfg)
            cfg = AVTrainConfig(
                **{**vars(train_cfg), "epochs": epochs, "seed": seed, "loss": loss_cfg}
            )
            history = train_av(model, train_set, val_set=val_set, config=cfg)
            best = next((r for r in history if r.get("best")), history[-1])
            test = evaluate_av(model, test_set)
            run = {
                "seed": seed,
                "best_epoch": best["epoch"],
                "val_top1": best["val_top1"],
                "test_top1": test["top1"],
                "per_class": test["per_class"],
                "per_group": test.get("per_group"),
                "noise": (
                    noise_robustness(model, test_set, audio_at_snr, snrs)
                    if audio_at_snr is not None
                    else None
                ),
                "history": history,
            }
            if seed == seeds[0]:
                entry["binary"] = binary_activation_share(model, probe_batch)
                entry["energy"] = estimate_av_energy(model, probe_batch)
                entry["parameters"] = count_parameters(model)
            run["seconds"] = time.perf_counter() - start
            runs.append(run)
            if log is not None:
                log(
                    f"{variant.name} seed {seed}: val {run['val_top1']:.3f} (epoch "
                    f"{run['best_epoch']}), test {run['test_top1']:.3f}, {run['seconds']:.0f} s"
                )
        entry["runs"] = runs
        for key in ("test_top1", "val_top1"):
            entry[f"{key}_mean"], entry[f"{key}_sd"] = _mean_sd([r[key] for r in runs])
        if runs[0]["per_group"] is not None:  # test Top-1 by group (e.g. corruption)
            entry["per_group"] = {}
            for g in runs[0]["per_group"]:
                mean, sd = _mean_sd([r["per_group"][g] for r in runs])
                entry["per_group"][g] = {"mean": mean, "sd": sd}
        if audio_at_snr is not None:
            entry["noise"] = []
            for i, snr in enumerate(snrs):
                mean, sd = _mean_sd([r["noise"][i]["top1"] for r in runs])
                entry["noise"].append({"snr_db": float(snr), "top1_mean": mean, "top1_sd": sd})
        result["variants"][variant.name] = entry
    result["seconds"] = time.perf_counter() - begin
    return result
