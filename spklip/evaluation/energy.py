"""Operation counts and energy of a video encoder on real inputs, as in the paper's Table 6.

``estimate_energy(model, spikes)`` runs the video encoder (``model.visual`` of a SPKLIP model,
or any module that takes spikes (B, T, H, W)) once, without gradients, and counts per clip:

- **MACs** of dense layers: every convolution, linear layer and matrix product whose input
  is real-valued. Convolutions, linear layers and FSVE's :class:`~spklip.fsve.SpikeMatmul`
  are counted by forward hooks from their shapes; matrix products the hooks cannot see (the
  ANN's attention inside ``scaled_dot_product_attention`` and ``nn.MultiheadAttention``) are
  the rest of ``torch.utils.flop_counter.FlopCounterMode``'s total (a MAC is 2 FLOPs).
- **SOPs** (synaptic operations) of spiking layers: in a spiking encoder, a layer whose input
  holds only 0/1 values does an accumulate per input spike and fan-out, so
  SOPs = firing rate of its input x its MACs (the MACs already sum over the time steps).
- **Neuron updates**: LIF neurons x time steps.
- **Memory accesses** (32-bit words): weights, activations and membrane potentials; the
  counting model is in :func:`estimate_energy` and ``docs/fsve.md``.

and turns them into energy with the 45 nm figures (Horowitz, ISSCC 2014, as used by the
paper): 4.6 pJ per MAC, 0.9 pJ per accumulate (SOP) and per neuron update, 5.0 pJ per 32-bit
memory access. ``energy_table_markdown`` lays several results side by side;
``energy_report`` measures checkpoints on clips of a dataset and writes the table
(``spklip energy``), with each checkpoint's zero-shot Top-1 read from the ``eval.json`` that
``spklip eval`` wrote for it (``evals``), so that accuracy stands next to the joules
(the paper's hybrid vs fully spiking FSVE, A.5).

The binary share is reported twice: over every synaptic layer's input, the first layer's
(the spike stream) included, and between layers only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from spikesim import write_json

from ..data import load_checkpoint_clips
from ..errors import SpklipError
from ..fsve import SpikeMatmul, is_spiking_neuron
from ..model import ENCODERS

__all__ = [
    "PJ_PER_MAC",
    "PJ_PER_MEMORY_ACCESS",
    "PJ_PER_NEURON_UPDATE",
    "PJ_PER_SOP",
    "LayerCount",
    "binary_activation_fraction",
    "energy_report",
    "energy_report_markdown",
    "energy_table_markdown",
    "estimate_energy",
    "read_accuracy",
    "survey_layers",
    "write_energy_report",
]

PJ_PER_MAC = 4.6  # 32-bit float multiply (3.7 pJ) + add (0.9 pJ), 45 nm
PJ_PER_SOP = 0.9  # 32-bit float add: a spike only gates an accumulate
PJ_PER_NEURON_UPDATE = 0.9  # one LIF membrane update per neuron and time step
PJ_PER_MEMORY_ACCESS = 5.0  # one 32-bit word read or written (SRAM)

_SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, SpikeMatmul)


@dataclass
class LayerCount:
    """What one synaptic layer (conv, linear or spike matmul) did, per clip."""

    name: str
    kind: str  # "conv", "linear" or "matmul"
    macs: float  # multiply-accumulates of a dense execution, all time steps
    binary_input: bool  # the input (for a matmul: one operand) held only 0 and 1
    input_rate: float  # share of non-zero input elements (the firing rate if binary)
    input_elements: float  # elements read (binary ones and real ones)
    binary_elements: float  # of which 0/1 spikes
    output_elements: float  # elements written
    weights: int  # parameters of the layer
    weight_reads: float  # weights x inputs processed (sub-blocks, time steps) per clip


def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


def _rate(t: torch.Tensor) -> float:
    return float(torch.count_nonzero(t)) / max(1, t.numel())


def _items(x: torch.Tensor, module: nn.Module) -> int:
    """Independent inputs in one call: maps for a convolution ((N, C, H, W), or (T, N, ...)
    in SpikingJelly's multi-step mode), rows of a 2-D linear input, sequences of a 3-D one."""
    if isinstance(module, nn.Linear):
        return x.shape[0] if x.ndim <= 2 else math.prod(x.shape[:-2])
    extra = x.ndim - (module.weight.ndim - 1)  # batch dims before (C, *spatial)
    return math.prod(x.shape[:extra])


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of scaled_dot_product_attention's CPU kernel, which FlopCounterMode has no formula
    for: Q K^T and the weighted sum of V, 2 FLOPs per multiply-add (as its other kernels)."""
    *batch, s_q, d = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * s_q * s_k * (d + d_v)


_CUSTOM_FLOPS = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _CUSTOM_FLOPS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_attention_flops


def _module_names(encoder: nn.Module) -> dict[nn.Module, str]:
    return {m: n or type(m).__name__ for n, m in encoder.named_modules()}


def _encoder(model: nn.Module) -> nn.Module:
    visual = getattr(model, "visual", None)
    return visual if isinstance(visual, nn.Module) else model


def _inputs(spikes: torch.Tensor | Sequence[torch.Tensor], clips: int | None) -> tuple[tuple, int]:
    """The encoder's positional inputs and the clips (samples) they hold: a tensor is a batch
    (B, T, H, W); a sequence of tensors (a multi-input model such as S-CMRL, whose batch axis
    is not the first) needs ``clips``."""
    if isinstance(spikes, torch.Tensor):
        if spikes.ndim != 4 or spikes.shape[0] < 1:
            raise SpklipError(
                f"spikes have shape {tuple(spikes.shape)}; expected a batch (B, T, H, W)"
            )
        return (spikes,), spikes.shape[0]
    if clips is None or clips < 1:
        raise SpklipError("several model inputs were given: pass clips= (samples in the batch)")
    return tuple(spikes), int(clips)


def survey_layers(
    model: nn.Module, spikes: torch.Tensor | Sequence[torch.Tensor], *, clips: int | None = None
) -> tuple[list[LayerCount], dict[str, float]]:
    """Run the video encoder of ``model`` once on ``spikes`` (B, T, H, W) and measure it.

    ``spikes`` may also be a sequence of inputs passed positionally (e.g. S-CMRL's
    ``(vision, audio)``), with ``clips`` the samples they hold.
    Returns the synaptic layers in call order (per clip) and totals per clip:
    ``flop_counter_macs`` (all MACs FlopCounterMode saw), ``neuron_updates``, ``clips``.
    The encoder runs in eval mode without gradients; its mode is restored afterwards.
    """
    inputs, b = _inputs(spikes, clips)
    encoder = _encoder(model)
    names = _module_names(encoder)
    layers: dict[str, LayerCount] = {}
    neuron_updates = 0

    def on_synapse(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        name = names[module]
        out = output.numel()
        if isinstance(module, SpikeMatmul):
            a, b = inputs
            kind, macs = "matmul", out * a.shape[-1]
            weights, weight_reads = 0, 0
            binary = [t for t in (a, b) if _is_binary(t)]
            elements = a.numel() + b.numel()
            binary_elements = sum(t.numel() for t in binary)
            # event-driven on the sparser spike operand
            rate = min((_rate(t) for t in binary), default=_rate(a))
        else:
            x = inputs[0]
            if isinstance(module, nn.Linear):
                kind, macs = "linear", out * module.in_features
            else:
                taps = math.prod(module.kernel_size) * (module.in_channels // module.groups)
                kind, macs = "conv", out * taps
            weights = sum(p.numel() for p in module.parameters(recurse=False))
            weight_reads = weights * _items(x, module)
            binary = [x] if _is_binary(x) else []
            elements = x.numel()
            binary_elements = elements if binary else 0
            rate = _rate(x)
        prev = layers.get(name)
        count = LayerCount(
            name,
            kind,
            float(macs),
            bool(binary),
            rate,
            float(elements),
            float(binary_elements),
            float(out),
            weights,
            float(weight_reads),
        )
        if prev is not None:  # a module called more than once: add the calls up
            total = prev.macs + count.macs
            count.input_rate = (prev.input_rate * prev.macs + rate * macs) / max(total, 1.0)
            count.binary_input = prev.binary_input and count.binary_input
            for key in ("macs", "input_elements", "binary_elements", "output_elements"):
                setattr(count, key, getattr(prev, key) + getattr(count, key))
            count.weight_reads += prev.weight_reads
        layers[name] = count

    def on_neuron(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal neuron_updates
        neuron_updates += inputs[0].numel()

    handles = []
    for module in encoder.modules():
        if isinstance(module, _SYNAPTIC):
            handles.append(module.register_forward_hook(on_synapse))
        elif is_spiking_neuron(module):
            handles.append(module.register_forward_hook(on_neuron))
    was_training = encoder.training
    param = next(encoder.parameters(), None)
    device = param.device if param is not None else inputs[0].device
    # The fused Transformer fast path of eval mode runs no Linear modules and no op that
    # FlopCounterMode counts: take the plain path while counting.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        encoder.eval()
        torch.backends.mha.set_fastpath_enabled(False)
        with (
            torch.no_grad(),
            FlopCounterMode(display=False, custom_mapping=_CUSTOM_FLOPS) as counter,
        ):
            encoder(*(x if x is None else x.to(device) for x in inputs))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for handle in handles:
            handle.remove()
        encoder.train(was_training)

    per_clip = []
    for count in layers.values():
        for key in (
            "macs",
            "input_elements",
            "binary_elements",
            "output_elements",
            "weight_reads",
        ):
            setattr(count, key, getattr(count, key) / b)
        per_clip.append(count)
    totals = {
        "flop_counter_macs": counter.get_total_flops() / 2 / b,
        "neuron_updates": neuron_updates / b,
        "clips": float(b),
    }
    return per_clip, totals


def _time_steps(model: nn.Module) -> int | None:
    config = getattr(_encoder(model), "config", None)
    if config is None or not hasattr(config, "visual"):
        return None
    return ENCODERS[config.visual].time_steps(config)


def _fraction(layers: list[LayerCount]) -> dict[str, Any]:
    dense = [c for c in layers if c.kind != "matmul"]
    elements = sum(c.input_elements for c in dense)
    binary = sum(c.binary_elements for c in dense)
    # Between layers: every input but the first layer's, which reads the (binned) stream.
    inner = sum(c.input_elements for c in dense[1:])
    inner_binary = sum(c.binary_elements for c in dense[1:])
    return {
        "binary_activation_fraction": binary / elements if elements else 0.0,
        "inter_layer_binary_fraction": inner_binary / inner if inner else 0.0,
        "binary_layers": sum(c.binary_input for c in dense),
        "layers": len(dense),
        "real_valued_inputs": [c.name for c in dense if not c.binary_input],
    }


def binary_activation_fraction(
    model: nn.Module, spikes: torch.Tensor | Sequence[torch.Tensor], *, clips: int | None = None
) -> dict[str, Any]:
    """The share of the activations feeding convolutions and linear layers that are 0/1.

    Measured on ``spikes`` (B, T, H, W) with hooks on every convolution and linear layer of
    the video encoder (the first layer's input is the spike stream itself). Returns
    ``binary_activation_fraction`` (binary input elements / all input elements),
    ``binary_layers`` of ``layers``, and the names of the layers whose input was real-valued
    (``real_valued_inputs``; e.g. FSVE's readout with ``fsve.readout = "membrane"``).
    """
    layers, _ = survey_layers(model, spikes, clips=clips)
    return _fraction(layers)


def estimate_energy(
    model: nn.Module,
    spikes: torch.Tensor,
    *,
    spiking: bool | None = None,
    pj_per_mac: float = PJ_PER_MAC,
    pj_per_sop: float = PJ_PER_SOP,
    pj_per_neuron_update: float = PJ_PER_NEURON_UPDATE,
    pj_per_memory_access: float = PJ_PER_MEMORY_ACCESS,
    spike_bits: int = 1,
    include_layers: bool = True,
    clips: int | None = None,
) -> dict[str, Any]:
    """Operation counts and energy of one clip of ``spikes`` (B, T, H, W) through the video
    encoder of ``model`` (a SPKLIP, or any module taking spikes); averages over the B clips.
    A multi-input model (S-CMRL) takes a sequence of inputs and ``clips`` (see
    :func:`survey_layers`).

    ``spiking`` (None: whether the encoder has SpikingJelly neurons): in a spiking encoder a
    layer whose input is all 0/1 costs SOPs (rate x MACs), in an ANN every layer costs MACs.

    Memory model, in 32-bit words per clip: each synaptic layer reads its weights once per
    input it processes (per sub-block of the ANN, per time step of FSVE; the ANN's temporal
    Transformer once per clip), reads its input (a 0/1 spike costs ``spike_bits``/32 of a
    word, a real value one word) and writes its output (one word per element); each LIF
    neuron reads and writes its membrane potential once per time step (2 words per update);
    parameters outside the hooked layers (norms, embeddings, fused attention projections)
    are read once per clip. Element-wise work (norms folded into weights, residual adds,
    activations) is not counted in either network.

    Returns a JSON-able dict: op counts, ``memory`` (weights, activations, neuron_state,
    total), ``compute_J``, ``memory_J``, ``total_J`` (joules per clip), the energy figures
    used, and with ``include_layers`` ``per_layer``: one dict per synaptic layer.
    """
    if not 1 <= spike_bits <= 32:
        raise SpklipError(f"spike_bits = {spike_bits} must be between 1 and 32")
    encoder = _encoder(model)
    if spiking is None:
        spiking = any(is_spiking_neuron(m) for m in encoder.modules())
    layers, totals = survey_layers(model, spikes, clips=clips)
    as_sop = [c for c in layers if spiking and c.binary_input]
    as_mac = [c for c in layers if not (spiking and c.binary_input)]
    hooked = sum(c.macs for c in layers)
    other_macs = max(0.0, totals["flop_counter_macs"] - hooked)  # attention the hooks miss
    macs = sum(c.macs for c in as_mac) + other_macs
    sops = sum(c.input_rate * c.macs for c in as_sop)
    sop_macs = sum(c.macs for c in as_sop)
    neuron_updates = totals["neuron_updates"]

    word = spike_bits / 32 if spiking else 1.0
    fired = {c.name for c in layers}
    hooked_params = {
        id(p)
        for m, name in _module_names(encoder).items()
        if name in fired
        for p in m.parameters(recurse=False)
    }
    other_params = sum(p.numel() for p in encoder.parameters() if id(p) not in hooked_params)
    weight_words = sum(c.weight_reads for c in layers) + other_params
    activation_words = sum(
        c.binary_elements * word + (c.input_elements - c.binary_elements) + c.output_elements
        for c in layers
    )
    state_words = 2 * neuron_updates
    memory_words = weight_words + activation_words + state_words

    compute_pj = macs * pj_per_mac + sops * pj_per_sop + neuron_updates * pj_per_neuron_update
    memory_pj = memory_words * pj_per_memory_access
    steps = _time_steps(model)
    result: dict[str, Any] = {
        "spiking": bool(spiking),
        "clips": int(totals["clips"]),
        "input_shape": (
            list(spikes.shape[1:])
            if isinstance(spikes, torch.Tensor)
            else [None if x is None else list(x.shape) for x in spikes]
        ),
        "time_steps": steps,
        "macs": macs,
        "other_macs": other_macs,
        "sops": sops,
        "sop_layer_macs": sop_macs,
        "firing_rate": sops / sop_macs if sop_macs else None,
        "neuron_updates": neuron_updates,
        "memory": {
            "weights": weight_words,
            "activations": activation_words,
            "neuron_state": state_words,
            "total": memory_words,
        },
        **_fraction(layers),
        "compute_J": compute_pj * 1e-12,
        "memory_J": memory_pj * 1e-12,
        "total_J": (compute_pj + memory_pj) * 1e-12,
        "energy_model": {
            "pj_per_mac": pj_per_mac,
            "pj_per_sop": pj_per_sop,
            "pj_per_neuron_update": pj_per_neuron_update,
            "pj_per_memory_access": pj_per_memory_access,
            "spike_bits": spike_bits,
        },
    }
    if include_layers:
        result["per_layer"] = [asdict(c) for c in layers]
    return result


_ROWS: list[tuple[str, str, float]] = [
    # (label, key path in the result, unit the value is divided by)
    ("zero-shot Top-1 (from eval.json)", "accuracy.top1", 1.0),
    ("MACs, M", "macs", 1e6),
    ("SOPs, M", "sops", 1e6),
    ("MACs of the SOP layers if run dense, M", "sop_layer_macs", 1e6),
    ("mean firing rate of SOP-layer inputs", "firing_rate", 1.0),
    ("neuron updates, M", "neuron_updates", 1e6),
    ("memory: weights, M words", "memory.weights", 1e6),
    ("memory: activations, M words", "memory.activations", 1e6),
    ("memory: neuron state, M words", "memory.neuron_state", 1e6),
    ("memory: total, M words", "memory.total", 1e6),
    ("binary share of layer inputs, input layer counted", "binary_activation_fraction", 1.0),
    ("binary share between layers", "inter_layer_binary_fraction", 1.0),
    ("compute_J", "compute_J", 1.0),
    ("memory_J", "memory_J", 1.0),
    ("total_J", "total_J", 1.0),
]


def _lookup(result: Mapping[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _cell(value: Any, scale: float, key: str) -> str:
    if value is None:
        return "-"
    if key.endswith("_J"):
        return f"{value:.3e}"
    if key == "accuracy.top1":
        return f"{value:.4f}"
    value = value / scale
    if key in ("firing_rate", "binary_activation_fraction", "inter_layer_binary_fraction"):
        text = f"{value:.4f}"
        return ">0.9999" if text == "1.0000" and value < 1 else text  # never round up to all
    return f"{value:,.1f}" if value >= 100 else f"{value:.3g}"


def energy_table_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table, one column per result of :func:`estimate_energy` (keyed by a name
    such as "ANN (spklip-tiny)"), one row per count that any of them has; energies in joules
    per clip."""
    if not results:
        raise SpklipError("no energy results to tabulate")
    names = list(results)
    lines = [
        "| per clip | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, key, scale in _ROWS:
        cells = [_cell(_lookup(results[n], key), scale, key) for n in names]
        if all(c == "-" for c in cells):  # e.g. no accuracy given for any column
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def energy_report(
    checkpoints: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    split: str | None = "test",
    clips: int = 8,
    out: str | os.PathLike | None = None,
    device: str | torch.device | None = "cpu",
    include_layers: bool = False,
    spike_bits: int = 1,
    evals: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike] | None = None,
) -> dict[str, dict[str, Any]]:
    """The Table-6-like energy estimate of each checkpoint's video encoder on real clips.

    ``checkpoints``: ``{name: path}``, or paths named by their encoder (``"ann"`` for HSFE +
    STAR-Net, ``"snn"`` for FSVE; ``"ann_2"`` ... when repeated). Each is measured by
    :func:`estimate_energy` on the same ``clips`` clips of ``split`` of ``data`` (spread over
    the classes, centred windows), read as its training run read them (the model's input
    frames, the run's data-side bin; see ``spklip.data.load_checkpoint_clips``).

    Returns ``{name: result}``, each the per-clip dict of :func:`estimate_energy` (``macs``,
    ``sops``, ``neuron_updates``, ``memory``, ``compute_J``, ``memory_J``, ``total_J``, ...)
    plus ``checkpoint``, ``model_name``, ``visual``, ``epoch``, ``data``, ``split`` and the
    clips used. ``evals``: the ``eval.json`` of each checkpoint (``spklip eval``; by
    name, or one per checkpoint in order); each result then holds ``accuracy``
    (:func:`read_accuracy`), shown as the table's first row. The hybrid FSVE
    (``fsve.temporal = "ann"``) is named ``"hybrid"``. With ``out``, writes
    ``OUT/energy.json`` (that dict) and ``OUT/energy.md`` (:func:`energy_table_markdown` with
    a header saying what was measured).
    """

    if isinstance(checkpoints, Mapping):
        named = [(str(k), v) for k, v in checkpoints.items()]
    else:
        named = [(None, v) for v in checkpoints]
    if not named:
        raise SpklipError("no checkpoints given; pass at least one --checkpoint")
    if evals is not None and not isinstance(evals, Mapping) and len(evals) != len(named):
        raise SpklipError(
            f"{len(evals)} eval.json files for {len(named)} checkpoints; give one per checkpoint"
        )
    results: dict[str, dict[str, Any]] = {}
    for index, (name, path) in enumerate(named):
        loaded = load_checkpoint_clips(path, data, split=split, clips=clips, device=device)
        given = name
        if name is None:
            config = loaded.model.config
            base = ENCODERS[config.visual].report_name
            if config.visual == "fsve" and config.fsve.temporal == "ann":
                base = "hybrid"  # spiking CNN + ANN Transformer: not an SNN throughout
            name, k = base, 2
            while name in results:
                name, k = f"{base}_{k}", k + 1
        elif name in results:
            raise SpklipError(f"two checkpoints are named {name!r}; give distinct names")
        measured = estimate_energy(
            loaded.model, loaded.spikes, include_layers=include_layers, spike_bits=spike_bits
        )
        results[name] = {**loaded.describe(), "split": split, **measured}
        if evals is not None:
            source = (
                evals.get(given if given is not None else name)
                if isinstance(evals, Mapping)
                else evals[index]
            )
            if source is None:
                raise SpklipError(f"no eval.json given for checkpoint {name!r}; add it to evals")
            results[name]["accuracy"] = read_accuracy(source)
    if out is not None:
        write_energy_report(results, out)
    return results


def read_accuracy(path: str | os.PathLike) -> dict[str, Any]:
    """``{"top1", "top5", "source"}`` from an ``eval.json`` written by ``spklip eval``
    (zero-shot Top-1/Top-5 as fractions in [0, 1])."""
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        zero_shot = result["zero_shot"]
        top1 = float(zero_shot["top1"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SpklipError(
            f"{path} is not an eval.json of spklip eval ({e}); run spklip eval --out"
        ) from e
    top5 = zero_shot.get("top5")
    return {"top1": top1, "top5": None if top5 is None else float(top5), "source": str(path)}


def write_energy_report(results: Mapping[str, Mapping[str, Any]], out: str | os.PathLike) -> Path:
    """Write ``OUT/energy.json`` and ``OUT/energy.md`` (atomically) for the dict of
    :func:`energy_report`; returns the Markdown path."""
    from spikesim import write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "energy.json", dict(results))
    write_atomic(out / "energy.md", energy_report_markdown(results))
    return out / "energy.md"


def energy_report_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The table of :func:`energy_table_markdown` with one column per checkpoint (named
    ``name: model, epoch``) under a header naming the data and clips it was measured on."""
    columns = {
        f"{name} ({r.get('model_name') or r.get('visual')}, epoch {r.get('epoch')})": r
        for name, r in results.items()
    }
    first = next(iter(results.values()))
    lines = [
        "# Energy per clip of the video encoders (45 nm figures)",
        "",
        f"Measured on {len(first.get('clip_paths', []))} clips of split `{first.get('split')}` "
        f"of `{first.get('data')}` (centred windows, read as each model was trained).",
        "",
    ]
    for name, r in results.items():
        accuracy = r.get("accuracy")
        source = f"; Top-1 from `{accuracy['source']}`" if accuracy else ""
        lines.append(
            f"- {name}: `{r.get('checkpoint')}`, input {r.get('input_shape')} "
            f"(data bin {r.get('data_bin')}, model temporal_bin {r.get('temporal_bin')}){source}"
        )
    model = first["energy_model"]
    lines += [
        "",
        f"Energy model: {model['pj_per_mac']} pJ per MAC, {model['pj_per_sop']} pJ per SOP, "
        f"{model['pj_per_neuron_update']} pJ per neuron update, "
        f"{model['pj_per_memory_access']} pJ per 32-bit memory access; spikes stored in "
        f"{model['spike_bits']} bit(s).",
        "",
        energy_table_markdown(columns),
    ]
    return "\n".join(lines)
