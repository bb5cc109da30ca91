"""Energy estimate: SOPs are firing rate x MACs, exact on known spike patterns; neuron updates
and memory follow the documented counting model; FSVE's compute costs less than the ANN's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from spklip.energy import (
    PJ_PER_MAC,
    PJ_PER_MEMORY_ACCESS,
    PJ_PER_NEURON_UPDATE,
    PJ_PER_SOP,
    energy_table_markdown,
    estimate_energy,
)
from spklip.factory import create_model
from spklip.fsve import FSVEConfig, lif_layer

from .naive_snn import calibrate_batchnorm, event_driven_accumulates

KEYS = {
    "spiking",
    "clips",
    "input_shape",
    "time_steps",
    "macs",
    "other_macs",
    "sops",
    "sop_layer_macs",
    "firing_rate",
    "neuron_updates",
    "memory",
    "binary_activation_fraction",
    "binary_layers",
    "layers",
    "per_layer",
    "real_valued_inputs",
    "compute_J",
    "memory_J",
    "total_J",
    "energy_model",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def quarter_pattern(batch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """0/1 spikes (B, C, H, W) where exactly one input in four fires: at every pixel, the
    channels c with (c + y + 2x) % 4 == 0 (two of each eight)."""
    b, c, y, x = np.meshgrid(
        np.arange(batch), np.arange(channels), np.arange(height), np.arange(width), indexing="ij"
    )
    return torch.from_numpy(((c + y + 2 * x + 0 * b) % 4 == 0).astype(np.float32))


def test_sops_of_a_conv_fed_a_known_spike_pattern() -> None:
    spikes = quarter_pattern(3, 8, 6, 10)  # a batch (B, T, H, W): the conv reads T as channels
    assert spikes.mean().item() == 0.25
    conv = nn.Conv2d(8, 4, 3, padding=1, bias=False)
    result = estimate_energy(conv, spikes, spiking=True)
    macs = 4 * 6 * 10 * 8 * 9  # per clip: outputs x (input channels x taps)
    assert result["sop_layer_macs"] == macs
    assert result["sops"] == 0.25 * macs  # rate x MACs, exactly
    assert result["macs"] == 0 and result["firing_rate"] == 0.25
    assert result["compute_J"] == pytest.approx(0.25 * macs * PJ_PER_SOP * 1e-12)
    # the formula counts the zero padding as silent inputs: it bounds the event-driven count
    assert event_driven_accumulates(spikes.numpy(), 4, 3) / 3 < result["sops"]
    # the same layer in an ANN is all MACs
    dense = estimate_energy(conv, spikes, spiking=False)
    assert dense["macs"] == macs and dense["sops"] == 0
    assert dense["compute_J"] == pytest.approx(macs * PJ_PER_MAC * 1e-12)


def test_sops_of_a_pointwise_conv_equal_the_event_driven_count() -> None:
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(2, 16, 5, 7, generator=g) < 0.3).float()
    result = estimate_energy(nn.Conv2d(16, 6, 1), spikes, spiking=True)
    # without a border every input spike reaches each of the 6 outputs at its pixel exactly once
    assert result["sops"] == pytest.approx(event_driven_accumulates(spikes.numpy(), 6, 1) / 2)
    assert result["sops"] == pytest.approx(spikes.sum().item() * 6 / 2)


class LifThenLinear(nn.Module):
    """Spikes (B, T, H, W) -> time-major LIF layer (T, B, H, W) -> linear over W (3 outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.lif = lif_layer(FSVEConfig(decay_input=False, v_threshold=1.0))
        self.linear = nn.Linear(8, 3)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.linear(self.lif(spikes.float().transpose(0, 1) * 2.0))


def test_neuron_updates_and_the_memory_model() -> None:
    b, t, h, w = 2, 5, 4, 8
    spikes = quarter_pattern(b, t, h, w)
    result = estimate_energy(LifThenLinear(), spikes, spike_bits=1)
    assert result["spiking"] is True
    assert result["neuron_updates"] == t * h * w  # neurons (H x W) x time steps, per clip
    memory = result["memory"]
    assert memory["neuron_state"] == 2 * t * h * w  # V read and written each step
    assert memory["weights"] == (8 * 3 + 3) * t  # weights read once per time step
    # the linear layer reads T*H*W spikes (1 bit each) and writes T*H*3 words
    assert memory["activations"] == pytest.approx(t * h * w / 32 + t * h * 3)
    assert memory["total"] == pytest.approx(sum(v for k, v in memory.items() if k != "total"))
    assert result["sops"] == pytest.approx(spikes.mean().item() * t * h * 3 * 8)
    compute = result["sops"] * PJ_PER_SOP + t * h * w * PJ_PER_NEURON_UPDATE
    assert result["compute_J"] == pytest.approx(compute * 1e-12)
    assert result["memory_J"] == pytest.approx(memory["total"] * PJ_PER_MEMORY_ACCESS * 1e-12)
    # with 32-bit spikes the activation traffic of the spike input grows 32 times
    wide = estimate_energy(LifThenLinear(), spikes, spike_bits=32)
    assert wide["memory"]["activations"] == pytest.approx(t * h * w + t * h * 3)


@pytest.fixture(scope="module")
def tiny_results() -> dict[str, dict]:
    g = torch.Generator().manual_seed(0)
    spikes = torch.rand(2, 250, 48, 64, generator=g) < 0.15
    ann = create_model("spklip-tiny", seed=0)
    fsve = create_model("spklip-fsve-tiny", seed=0)
    calibrate_batchnorm(fsve, spikes)  # firing rates as after training, not a silent network
    return {
        "ANN (spklip-tiny)": estimate_energy(ann, spikes),
        "FSVE (spklip-fsve-tiny)": estimate_energy(fsve, spikes),
    }


def test_energy_dict_is_json_and_fsve_compute_is_below_the_ann(tiny_results) -> None:
    ann = tiny_results["ANN (spklip-tiny)"]
    snn = tiny_results["FSVE (spklip-fsve-tiny)"]
    for result in (ann, snn):
        assert set(result) == KEYS
        json.dumps(result)
        assert result["total_J"] == pytest.approx(result["compute_J"] + result["memory_J"])
        assert result["clips"] == 2 and result["time_steps"] == 5
    assert ann["spiking"] is False and ann["sops"] == 0 and ann["neuron_updates"] == 0
    assert ann["macs"] > 3e8  # ~0.33 GMAC per clip (docs/model.md: 0.66 GFLOP)
    assert ann["other_macs"] > 0  # attention matmuls the hooks cannot see are still counted
    assert snn["spiking"] is True and snn["macs"] == snn["other_macs"] == 0  # all SOPs
    assert 0.05 < snn["firing_rate"] < 0.5 and snn["sops"] > 0
    assert snn["neuron_updates"] > 0 and snn["binary_activation_fraction"] == 1.0
    assert snn["compute_J"] < ann["compute_J"]
    # memory weighs more in the spiking encoder: membrane state is read and written each step
    assert snn["memory_J"] / snn["total_J"] > ann["memory_J"] / ann["total_J"]
    assert snn["memory"]["neuron_state"] == 2 * snn["neuron_updates"]


def test_energy_table_markdown(tiny_results) -> None:
    table = energy_table_markdown(tiny_results)
    lines = table.strip().splitlines()
    assert lines[0] == "| per clip | ANN (spklip-tiny) | FSVE (spklip-fsve-tiny) |"
    rows = {line.split("|")[1].strip(): line for line in lines[2:]}
    assert {"compute_J", "memory_J", "total_J", "SOPs, M", "MACs, M"} <= set(rows)
    ann_total = tiny_results["ANN (spklip-tiny)"]["total_J"]
    assert f"{ann_total:.3e}" in rows["total_J"]
    assert all(line.count("|") == 4 for line in lines)
