"""Analysis figures: the mean-removed cosine of HSFE's temporal points, both modes, on real
checkpoints; the firing statistics of converted datasets against hand-made spike patterns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikesim import open_dataset, write_dat
from spikesim.stats import compare_statistics, dataset_statistics, pick_spread
from spklip.data import load_checkpoint_clips
from spklip.errors import SpklipError
from spklip.evaluation.domain_gap import domain_gap
from spklip.evaluation.dynamics import hsfe_dynamics, hsfe_point_features, mean_removed_cosine
from spklip.factory import create_model
from spklip.training.loop import train
from tests.spklip.test_data import make_converted
from tests.spklip.training.test_loop import MINI, config

# MINI (2 blocks of 5 frames in 12) with 3 blocks: the paper's mode has >= 3 points.
MINI3 = {**MINI, "hsfe": {**MINI["hsfe"], "n_blocks": 3}}
# one block of 9 count frames, each the sum of 2 spike frames (the model bins 20 -> 10)
MINI1 = {
    **MINI,
    "frames": 20,
    "temporal_bin": 2,
    "hsfe": {**MINI["hsfe"], "n_blocks": 1, "radius": 4},
}
FSVE_MINI = {"frames": 12, "image_size": [8, 16], "embed_dim": 16, "text": MINI["text"]}


def train_tiny(data: Path, out: Path, **kw) -> Path:
    """One epoch of a minuscule model on ``data``; returns the run folder."""
    train(config(data, out, epochs=1, **kw))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_converted(tmp_path_factory.mktemp("conv"), per_class=4, frames=20, size=(8, 16))


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "three_blocks": train_tiny(data, root / "three", model_overrides=MINI3),
        "one_block": train_tiny(data, root / "one", model_overrides=MINI1),
    }


def test_mean_removed_cosine_by_hand() -> None:
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = mean_removed_cosine(f)
    # mean (2/3, 2/3): deviations (1/3, -2/3), (-2/3, 1/3), (1/3, 1/3)
    d = np.array([[1, -2], [-2, 1], [1, 1]]) / 3
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(c, d @ d.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    np.testing.assert_allclose(c, c.T)
    # two points are opposite once their mean is removed, whatever they are
    np.testing.assert_allclose(
        mean_removed_cosine(np.random.default_rng(0).random((2, 7))), [[1, -1], [-1, 1]]
    )
    # points equal to their mean are 0, not NaN
    assert not mean_removed_cosine(np.ones((3, 4))).any()
    with pytest.raises(SpklipError, match="points >= 2"):
        mean_removed_cosine(np.ones((1, 4)))


def test_block_points_are_hsfe_blocks_and_windows_of_a_still_clip_agree() -> None:
    model = create_model("spklip-tiny", seed=0, image_size=[8, 16], **MINI3).eval()
    g = torch.Generator().manual_seed(1)
    spikes = (torch.rand(2, 12, 8, 16, generator=g) < 0.3).to(torch.uint8)
    feats, points, mode = hsfe_point_features(model, spikes, mode="auto")
    assert mode == "blocks" and [p["block"] for p in points] == [0, 1, 2]
    with torch.no_grad():
        expected = model.visual.hsfe(spikes).flatten(2).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    assert [p["start"] for p in points] == model.visual.hsfe.block_starts

    # windows: n_blocks x windows points in time order, each reading its part of a block
    feats, points, mode = hsfe_point_features(model, spikes, mode="windows", windows=2)
    assert mode == "windows" and feats.shape[:2] == (2, 6)
    starts = [p["start"] for p in points]
    assert starts == sorted(starts)
    assert all(p["stop"] - p["start"] == 2 for p in points)  # 5 // 2, the last frame unused
    # a clip that does not change in time: stretching any sub-window gives the block back
    still = spikes[:, :1].expand(2, 12, 8, 16).contiguous()
    feats, points, _ = hsfe_point_features(model, still, mode="windows", windows=2)
    np.testing.assert_allclose(feats, np.broadcast_to(feats[:, :1], feats.shape), atol=1e-6)
    with pytest.raises(SpklipError, match="windows"):
        hsfe_point_features(model, spikes, mode="windows", windows=6)  # blocks have 5 frames
    with pytest.raises(SpklipError, match="mode"):
        hsfe_point_features(model, spikes, mode="frames")
    # two blocks: "auto" takes sub-windows (two mean-removed points are always opposite)
    two = create_model("spklip-tiny", seed=0, image_size=[8, 16], **MINI).eval()
    feats, points, mode = hsfe_point_features(two, spikes, windows=3)
    assert mode == "windows" and feats.shape[1] == 6


@pytest.mark.parametrize(
    ("run", "asked", "mode", "points"),
    [
        ("three_blocks", "auto", "blocks", 3),
        ("three_blocks", "windows", "windows", 6),  # 3 blocks x 2 windows
        ("one_block", "auto", "windows", 5),
    ],
)
def test_hsfe_dynamics_writes_heatmaps_and_numbers(data, runs, tmp_path, run, asked, mode, points):
    png, out_json = tmp_path / "hsfe_dynamics.png", tmp_path / "hsfe_dynamics.json"
    windows = 2 if run == "three_blocks" else 5
    result = hsfe_dynamics(
        runs[run], data, png, clips=2, mode=asked, windows=windows, out_json=out_json
    )
    assert json.loads(out_json.read_text()) == result
    assert result["mode"] == mode and len(result["points"]) == points
    assert png.stat().st_size > 10_000 and result["figure"] == str(png)
    assert [c["class"] for c in result["clips"]] == ["MoveLeft", "MoveRight"]  # spread
    for matrix in [c["correlation"] for c in result["clips"]] + [result["mean_correlation"]]:
        m = np.array(matrix)
        assert m.shape == (points, points)
        np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-3)
        np.testing.assert_allclose(m, m.T, atol=1e-3)
        assert (np.abs(m) <= 1.0).all()
    assert set(result["mean_by_lag"]) == {str(k) for k in range(1, points)}
    assert result["unrelated_level"] == pytest.approx(-1 / (points - 1))
    # points in spike frames of the input window (one_block: 2 spike frames per HSFE frame)
    per = result["data_bin"] * result["temporal_bin"]
    assert per == (2 if run == "one_block" else 1)
    assert all(p["spike_start"] == p["start"] * per for p in result["points"])


def test_checkpoint_clips_are_read_as_in_training(data, runs):
    loaded = load_checkpoint_clips(runs["three_blocks"], data, clips=3)
    assert loaded.dataset.bin == 1 and loaded.spikes.shape == (2, 12, 8, 16)  # 2 test clips
    assert loaded.describe()["clip_paths"] == [r.path for r in loaded.dataset.records]


def test_hsfe_dynamics_refuses_what_it_cannot_show(data, runs, tmp_path):
    with pytest.raises(SpklipError, match="one HSFE block"):
        hsfe_dynamics(runs["one_block"], data, tmp_path / "x.png", mode="blocks")
    fsve = train_tiny(data, tmp_path / "fsve", model="spklip-fsve-tiny", model_overrides=FSVE_MINI)
    with pytest.raises(SpklipError, match="HSFE"):
        hsfe_dynamics(fsve, data, tmp_path / "x.png")
    small = make_converted(tmp_path / "small", size=(8, 8))
    with pytest.raises(SpklipError, match="8x8"):
        hsfe_dynamics(runs["three_blocks"], small, tmp_path / "x.png")


def patterned(root: Path, period_of_x, frames: int = 24) -> Path:
    """A converted dataset (2 classes x 3 clips, 8x16) whose pixel (y, x) fires every
    ``period_of_x(x)`` frames from frame 0, in every clip."""
    make_converted(root, per_class=3, frames=frames, size=(8, 16))
    periods = np.array([period_of_x(x) for x in range(16)])
    fires = (np.arange(frames)[:, None, None] % periods[None, None, :]) == 0
    spikes = np.broadcast_to(fires, (frames, 8, 16))
    for rec in open_dataset(root).clips:
        write_dat(root / rec.path, spikes, overwrite=True)
    return root


def test_statistics_of_a_known_pattern(tmp_path):
    a = patterned(tmp_path / "a", lambda x: 1 + x % 4)  # periods 1, 2, 3, 4
    stats = dataset_statistics(a)
    assert stats.clips == 6 and stats.frames == 24
    # counts over 24 frames: 24, 12, 8, 6 spikes, each for a quarter of the pixels
    expected = np.zeros(25, np.int64)
    expected[[24, 12, 8, 6]] = 6 * 8 * 16 // 4
    np.testing.assert_array_equal(stats.count_histogram, expected)
    rate = np.mean([1, 1 / 2, 1 / 3, 1 / 4])
    summary = stats.summary()
    assert summary["mean_firing_rate"] == pytest.approx(rate)
    np.testing.assert_allclose(stats.spatial_rate[3], [1 / (1 + x % 4) for x in range(16)])
    assert stats.temporal_mean[0] == 128 and stats.temporal_std[0] == 0  # all fire at t=0
    assert stats.temporal_mean[1] == 32  # only period 1
    assert summary["per_pixel_count_median"] == 8 and summary["silent_pixel_fraction"] == 0
    assert (stats.clip_rates == pytest.approx(rate)) and summary["clip_rate_std"] == 0
    # a window and a split
    assert dataset_statistics(a, frames=12, split="test").count_histogram.sum() == 2 * 128
    with pytest.raises(Exception, match="fewer than"):
        dataset_statistics(a, frames=25)
    with pytest.raises(Exception, match="no clips in split"):
        dataset_statistics(a, split="dev")
    assert pick_spread(10, 3) == [0, 4, 9] and pick_spread(3, 5) == [0, 1, 2]


def test_domain_gap_figure_and_numbers(tmp_path):
    a = patterned(tmp_path / "a", lambda x: 2)
    b = patterned(tmp_path / "b", lambda x: 4)
    png = tmp_path / "out" / "domain_gap.png"
    result = domain_gap(a, b, png, names=("sim", "real"), out_json=tmp_path / "out" / "g.json")
    assert json.loads((tmp_path / "out" / "g.json").read_text()) == result
    assert png.stat().st_size > 10_000
    assert result["datasets"]["sim"]["mean_firing_rate"] == pytest.approx(0.5)
    assert result["datasets"]["real"]["mean_firing_rate"] == pytest.approx(0.25)
    gap = result["gap"]
    assert gap["firing_rate_ratio"] == pytest.approx(0.5)
    assert gap["count_histogram_js_bits"] == pytest.approx(1.0)  # disjoint counts: 12 vs 6
    same = compare_statistics(dataset_statistics(a), dataset_statistics(a))
    assert same["count_histogram_js_bits"] == 0 and same["firing_rate_ratio"] == 1
    with pytest.raises(SpklipError, match="two different names"):
        domain_gap(a, b, png, names=("x", "x"))
