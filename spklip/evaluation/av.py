"""Evaluating S-CMRL (spklip.scmrl): Top-1 and per-class accuracy, robustness to noise on the
audio, the share of binary inter-layer activations and the energy estimate (through
``spklip.evaluation.energy``: SOPs from measured firing rates, MACs, memory, 45 nm figures),
and the results table of an experiment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..av_data import AVTensors, iter_batches, model_device, time_major
from ..errors import SpklipError
from ..metrics import per_class_accuracy, predictions, zero_shot_accuracy
from ..scmrl import SCMRL
from .energy import (
    binary_activation_fraction,
    energy_table_markdown,
    estimate_energy,
    survey_layers,
)


@torch.no_grad()
def predict_av(
    model: SCMRL, dataset: Dataset, *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, classes) float32 and labels (N,) int64 of ``dataset`` in order (eval mode;
    the model's mode is restored)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    logits, labels = [], []
    try:
        for vision, audio, y in iter_batches(dataset, batch_size):
            out = model(time_major(vision).to(device), time_major(audio).to(device))
            logits.append(out.logits.float().cpu().numpy())
            labels.append(y.numpy())
    finally:
        model.train(was_training)
    if not logits:
        raise SpklipError("evaluate: the dataset is empty")
    return np.concatenate(logits), np.concatenate(labels)


def evaluate_av(
    model: SCMRL,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``{"top1": fraction, "per_class": {class: fraction}, "n": samples}`` (ties count
    against the model, as ``spklip.metrics``), and ``"per_group": {group: fraction}`` when
    the dataset has ``groups`` (:class:`spklip.av_data.AVTensors`, e.g. its corruption)."""
    logits, labels = predict_av(model, dataset, batch_size=batch_size)
    names = list(classes or getattr(dataset, "classes", None) or range(logits.shape[1]))
    out: dict[str, Any] = {
        "top1": zero_shot_accuracy(logits, labels, ks=(1,))["top1"],
        "per_class": per_class_accuracy(logits, labels, [str(c) for c in names]),
        "n": len(labels),
    }
    groups = getattr(dataset, "groups", None)
    if groups is not None:
        hit = predictions(logits, labels) == labels
        g = np.asarray(groups)
        out["per_group"] = {str(k): float(hit[g == k].mean()) for k in sorted(set(groups))}
    return out


def noise_robustness(
    model: SCMRL,
    dataset: AVTensors,
    audio_at_snr: Callable[[float], torch.Tensor | np.ndarray],
    snrs: Sequence[float] = (0, 5, 10, 15, 20, 25, 30),
    *,
    batch_size: int = 64,
) -> list[dict[str, float]]:
    """Top-1 on ``dataset`` with its audio spikes replaced by ``audio_at_snr(snr)`` (N, T, Ca,
    M, F), the same samples in the same order recomputed with Gaussian white noise at ``snr``
    dB, for each SNR: ``[{"snr_db": s, "top1": fraction}, ...]``."""
    out = []
    for snr in snrs:
        audio = torch.as_tensor(audio_at_snr(float(snr)))
        if audio.shape != dataset.audio.shape:
            raise SpklipError(
                f"audio_at_snr({snr}) gave shape {tuple(audio.shape)}; the dataset's audio is "
                f"{tuple(dataset.audio.shape)}"
            )
        top1 = evaluate_av(model, dataset.with_audio(audio), batch_size=batch_size)["top1"]
        out.append({"snr_db": float(snr), "top1": top1})
    return out


# ----------------------------------------------------------------------------- measurements

_INPUT_LAYERS = ("audio_embed.stages.0", "vision_embed.stages.0")  # read the input streams


def binary_activation_share(
    model: SCMRL, batch: tuple[torch.Tensor | None, torch.Tensor | None]
) -> dict[str, Any]:
    """The share of inter-layer activations that are exactly 0/1, measured with forward hooks
    on every convolution and linear layer (``spklip.energy.survey_layers``) on ``batch`` =
    (vision, audio), time-major as the model takes them.

    Returns ``inter_layer_binary_fraction`` (binary input elements / all input elements of the
    layers that do not read the input streams), ``binary_activation_fraction`` (all layers),
    ``binary_layers`` of ``layers``, and ``real_valued_inputs``: the names of the layers that
    read real values (the cross-modal residual's linear layer reads CCSSA's rate product)."""
    vision, audio = batch
    clips = (vision if vision is not None else audio).shape[1]
    layers, _ = survey_layers(model, (vision, audio), clips=clips)
    dense = [c for c in layers if c.kind != "matmul"]
    inner = [c for c in dense if c.name not in _INPUT_LAYERS]
    elements = sum(c.input_elements for c in inner)
    share = binary_activation_fraction(model, (vision, audio), clips=clips)
    return {
        "inter_layer_binary_fraction": (
            sum(c.binary_elements for c in inner) / elements if elements else 0.0
        ),
        "binary_activation_fraction": share["binary_activation_fraction"],
        "binary_layers": share["binary_layers"],
        "layers": share["layers"],
        "real_valued_inputs": share["real_valued_inputs"],
    }


def estimate_av_energy(
    model: SCMRL,
    batch: tuple[torch.Tensor | None, torch.Tensor | None],
    *,
    include_layers: bool = False,
) -> dict[str, Any]:
    """Energy per sample of ``model`` on ``batch`` = (vision, audio) time-major, with
    ``spklip.energy.estimate_energy``'s counting (SOPs = measured input firing rate x MACs of
    layers reading spikes, MACs of the others and of the attention's real-valued products,
    LIF updates, memory accesses; 45 nm figures). Adds ``model`` (the config as a dict)."""
    vision, audio = batch
    clips = (vision if vision is not None else audio).shape[1]
    result = estimate_energy(model, (vision, audio), clips=clips, include_layers=include_layers)
    result["time_steps"] = model.config.steps
    result["model"] = model.config.to_dict()
    return result


def results_markdown(results: Mapping[str, Any]) -> str:
    """A Markdown table of :func:`run_av_experiment`'s result: per variant the validation and
    test Top-1 (mean ± sd over seeds), the per-seed test Top-1, the inter-layer binary share
    and the energy per sample; the test Top-1 by group when the test set had groups; then
    ``spklip.energy``'s table of the counts per variant."""
    lines = [
        f"Seeds {results['seeds']}, {results['epochs']} epochs; samples: {results['sizes']}.",
        "",
        "| variant | val Top-1 | test Top-1 | test per seed | binary share | energy, µJ |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, e in results["variants"].items():
        per_seed = ", ".join(f"{r['test_top1']:.3f}" for r in e["runs"])
        binary = e.get("binary", {}).get("inter_layer_binary_fraction")
        energy = e.get("energy", {}).get("total_J")
        lines.append(
            f"| {name} | {e['val_top1_mean']:.3f} ± {e['val_top1_sd']:.3f} | "
            f"{e['test_top1_mean']:.3f} ± {e['test_top1_sd']:.3f} | {per_seed} | "
            f"{'-' if binary is None else f'{binary:.4f}'} | "
            f"{'-' if energy is None else f'{energy * 1e6:.3f}'} |"
        )
    grouped = {n: e["per_group"] for n, e in results["variants"].items() if e.get("per_group")}
    if grouped:  # where fusion helps: test Top-1 by group (the corruption of the clips)
        names = sorted({g for pg in grouped.values() for g in pg})
        lines += ["", "Test Top-1 by group (mean ± sd over seeds):", ""]
        lines.append("| variant | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for n, pg in grouped.items():
            cells = [f"{pg[g]['mean']:.3f} ± {pg[g]['sd']:.3f}" if g in pg else "-" for g in names]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    energies = {n: e["energy"] for n, e in results["variants"].items() if e.get("energy")}
    if energies:  # the counts behind the energy column, as in `spklip energy`'s table
        lines += ["", "Energy per sample (first seed's model, 45 nm figures):", ""]
        lines.append(energy_table_markdown(energies))
    return "\n".join(lines) + "\n"
