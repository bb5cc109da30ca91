"""Energy estimate: SOPs are firing rate x MACs, exact on known spike patterns; neuron updates
and memory follow the documented counting model; FSVE's compute costs less than the ANN's;
the report measures checkpoints on real clips and writes the table as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spikesim import open_dataset
from spklip.checkpoint import load_model
from spklip.errors import SpklipError
from spklip.evaluation.energy import (
    PJ_PER_MAC,
    PJ_PER_MEMORY_ACCESS,
    PJ_PER_NEURON_UPDATE,
    PJ_PER_SOP,
    energy_report,
    energy_report_markdown,
    energy_table_markdown,
    estimate_energy,
)
from spklip.factory import create_model
from spklip.fsve import FSVEConfig, lif_layer
from tests.spklip.evaluation.test_analysis import FSVE_MINI, train_tiny
from tests.spklip.naive_snn import calibrate_batchnorm, event_driven_accumulates
from tests.spklip.test_data import make_converted

KEYS = {
    "spiking",
    "inter_layer_binary_fraction",
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
    ann = create_model("spklip-tiny", seed=0)
    fsve = create_model("spklip-fsve-tiny", seed=0)
    results = {}
    for name, model in (("ANN (spklip-tiny)", ann), ("FSVE (spklip-fsve-tiny)", fsve)):
        g = torch.Generator().manual_seed(0)
        spikes = torch.rand(2, model.config.frames, 48, 64, generator=g) < 0.15
        if model is fsve:  # firing rates as after training, not a silent network
            calibrate_batchnorm(fsve, spikes)
        results[name] = estimate_energy(model, spikes)
    return results


def test_energy_dict_is_json_and_fsve_compute_is_below_the_ann(tiny_results) -> None:
    ann = tiny_results["ANN (spklip-tiny)"]
    snn = tiny_results["FSVE (spklip-fsve-tiny)"]
    for result in (ann, snn):
        assert set(result) == KEYS
        json.dumps(result)
        assert result["total_J"] == pytest.approx(result["compute_J"] + result["memory_J"])
        assert result["clips"] == 2
    assert ann["time_steps"] == create_model("spklip-tiny").config.hsfe.n_blocks
    assert snn["time_steps"] == 5
    assert ann["spiking"] is False and ann["sops"] == 0 and ann["neuron_updates"] == 0
    assert ann["macs"] > 1e7  # tens of MMACs per clip for spklip-tiny
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
    # a count no column has (here the accuracy, which the caller adds) gets no row of "-"
    assert not any(k.startswith("zero-shot Top-1") for k in rows)
    with_acc = {k: {**v, "accuracy": {"top1": 0.5}} for k, v in tiny_results.items()}
    assert "| zero-shot Top-1 (from eval.json) | 0.5000 | 0.5000 |" in energy_table_markdown(
        with_acc
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A converted dataset and minuscule ANN and FSVE checkpoints trained one epoch on it."""
    root = tmp_path_factory.mktemp("energy")
    data = make_converted(root / "data", per_class=4, frames=20, size=(8, 16))
    return data, {
        "ann": train_tiny(data, root / "ann"),
        "snn": train_tiny(data, root / "snn", model="spklip-fsve-tiny", model_overrides=FSVE_MINI),
    }


def test_energy_report_measures_checkpoints_on_real_clips_and_writes_the_table(
    checkpoints, tmp_path
) -> None:
    data, runs = checkpoints
    out = tmp_path / "report"
    report = energy_report([runs["snn"], runs["ann"]], data, clips=2, out=out)
    assert list(report) == ["snn", "ann"]  # named by encoder, in the order given
    for name, r in report.items():
        assert KEYS - {"per_layer"} <= set(r)
        assert r["total_J"] == pytest.approx(r["compute_J"] + r["memory_J"])
        assert r["clips"] == 2 and r["input_shape"] == [12, 8, 16] and r["split"] == "test"
        assert r["visual"] == ("fsve" if name == "snn" else "ann")
        assert r["clip_paths"] == [
            "MoveLeft/v_MoveLeft_g03_c01.dat",
            "MoveRight/v_MoveRight_g03_c01.dat",
        ]
    assert report["snn"]["spiking"] and report["snn"]["sops"] > 0
    assert not report["ann"]["spiking"] and report["ann"]["sops"] == 0
    # the same clips as estimate_energy on them directly
    model, _ = load_model(runs["ann"])
    clips = torch.stack([torch.from_numpy(open_dataset(data).read(i, 4, 12)) for i in (2, 6)])
    direct = estimate_energy(model, clips, include_layers=False)
    assert report["ann"]["compute_J"] == pytest.approx(direct["compute_J"])
    assert report["ann"]["memory"] == pytest.approx(direct["memory"])

    assert json.loads((out / "energy.json").read_text()) == report
    md = (out / "energy.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| per clip"))
    assert "snn (spklip-fsve-tiny, epoch 1)" in header and "ann (spklip-tiny, epoch 1)" in header
    for key in ("compute_J", "memory_J", "total_J"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {key} |"))
        assert f"{report['ann'][key]:.3e}" in row and f"{report['snn'][key]:.3e}" in row
    assert energy_report_markdown(report) == md


def test_energy_report_names_and_bad_input(checkpoints, tmp_path) -> None:
    data, runs = checkpoints
    named = energy_report({"mine": runs["ann"]}, data, clips=1, include_layers=True)
    assert list(named) == ["mine"] and named["mine"]["per_layer"]
    twice = energy_report([runs["ann"], runs["ann"]], data, clips=1)
    assert list(twice) == ["ann", "ann_2"] and twice["ann"]["macs"] == twice["ann_2"]["macs"]
    with pytest.raises(SpklipError, match="no checkpoints"):
        energy_report([], data)
    with pytest.raises(SpklipError, match="no such checkpoint"):
        energy_report([tmp_path / "missing"], data)
    with pytest.raises(SpklipError, match="no clips"):
        energy_report([runs["ann"]], data, split="dev")


def test_inter_layer_share_leaves_out_the_first_layers_input() -> None:
    from spklip.evaluation.energy import LayerCount, _fraction

    def layer(name: str, elements: int, binary: int) -> LayerCount:
        fields = {f: 0 for f in LayerCount.__dataclass_fields__}
        fields.update(
            name=name,
            kind="conv",
            input_elements=elements,
            binary_elements=binary,
            binary_input=binary == elements,
        )
        return LayerCount(**fields)

    share = _fraction([layer("stem", 100, 0), layer("a", 30, 30), layer("b", 10, 10)])
    assert share["binary_activation_fraction"] == pytest.approx(40 / 140)
    assert share["inter_layer_binary_fraction"] == 1.0


def test_energy_report_puts_each_checkpoints_accuracy_next_to_its_joules(
    checkpoints, tmp_path
) -> None:
    from spklip.evaluation.zeroshot import evaluate

    data, runs = checkpoints
    evals = {}
    for name, run in runs.items():
        evals[name] = tmp_path / f"{name}.json"
        evaluate(run, data, "test", out=evals[name])
    report = energy_report(runs, data, clips=1, evals=evals, out=tmp_path / "report")
    for name in runs:
        written = json.loads(evals[name].read_text())
        assert report[name]["accuracy"]["top1"] == written["zero_shot"]["top1"]
        assert report[name]["accuracy"]["source"] == str(evals[name])
    md = (tmp_path / "report" / "energy.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| zero-shot Top-1"))
    assert f"{report['ann']['accuracy']['top1']:.4f}" in row
    assert "| binary share of layer inputs, input layer counted |" in md
    assert "| binary share between layers |" in md
    # one eval.json per checkpoint, in order, also works; a missing or foreign file is an error
    in_order = energy_report([runs["snn"]], data, clips=1, evals=[evals["snn"]])
    assert in_order["snn"]["accuracy"] == report["snn"]["accuracy"]
    with pytest.raises(SpklipError, match="one per checkpoint"):
        energy_report([runs["snn"]], data, clips=1, evals=[])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SpklipError, match=r"not an eval\.json"):
        energy_report([runs["snn"]], data, clips=1, evals=[tmp_path / "bad.json"])


def test_the_hybrid_is_named_and_counted_apart_from_the_fully_spiking_encoder(
    checkpoints, tmp_path
) -> None:
    data, runs = checkpoints
    hybrid_run = train_tiny(
        data, tmp_path / "hybrid", model="spklip-fsve-hybrid-tiny", model_overrides=FSVE_MINI
    )
    assert list(energy_report([hybrid_run, runs["snn"]], data, clips=1)) == ["hybrid", "snn"]
    clip = torch.rand(2, 250, 48, 64, generator=torch.Generator().manual_seed(0)) < 0.2
    results = {}
    for name in ("spklip-fsve-tiny", "spklip-fsve-hybrid-tiny"):
        model = create_model(name, seed=0)
        calibrate_batchnorm(model, clip)
        results[name] = estimate_energy(model.eval(), clip)
    snn, hybrid = results["spklip-fsve-tiny"], results["spklip-fsve-hybrid-tiny"]
    assert snn["macs"] == 0 and hybrid["macs"] > 0  # the ANN Transformer runs dense MACs
    assert hybrid["other_macs"] > 0  # its attention products, seen by the flop counter
    # the input layer reads the spike stream: it counts in the share, in both encoders
    assert hybrid["binary_activation_fraction"] > hybrid["inter_layer_binary_fraction"]
    assert snn["binary_activation_fraction"] == 1.0 > hybrid["binary_activation_fraction"]
