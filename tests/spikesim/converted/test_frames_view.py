"""HDF5 packs say how to unpack their bytes; the Tonic-style FrameView yields (T, 1, H, W)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from spikesim.converted import open_dataset
from spikesim.converted.h5 import pack_dataset
from spikesim.converted.tonic import FrameView
from spikesim.dat import write_dat
from spikesim.errors import DatasetError

H, W = 16, 24
CLIPS = [
    ("Grow", "a", 0, "train", 20),
    ("Grow", "b", 0, "test", 12),
    ("Shrink", "c", 1, "train", 30),
]
ROOT = Path(__file__).resolve().parents[3]


def spikes_of(i: int, frames: int) -> np.ndarray:
    return np.random.default_rng(i).random((frames, H, W)) < 0.3


def make_folder(root: Path, flipud: bool) -> Path:
    rows = []
    for i, (cls, stem, label, split, frames) in enumerate(CLIPS):
        rel = f"{cls}/{stem}.dat"
        write_dat(root / rel, spikes_of(i, frames), flipud=flipud)
        rows.append(
            {"path": rel, "class": cls, "label": label, "split": split, "caption": None,
             "frames": frames, "height": H, "width": W, "source": f"{rel}.avi", "factor": 2}
        )  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "classes.txt").write_text("Grow\nShrink\n")
    (root / "config.yaml").write_text(
        yaml.safe_dump({"spike_h": H, "spike_w": W, "flipud": flipud})
    )
    return root


@pytest.mark.parametrize("flipud", [True, False])
def test_pack_records_bit_and_row_order_and_they_unpack(tmp_path: Path, flipud: bool) -> None:
    h5 = pack_dataset(make_folder(tmp_path / "f", flipud), tmp_path / "d.h5")
    with h5py.File(h5, "r") as f:
        attrs = dict(f.attrs)
        assert attrs["bit_order"] == "little" and attrs["pixel_order"] == "row-major"
        assert attrs["row_order"] == ("bottom-up" if flipud else "top-down")
        assert bool(attrs["flipud"]) is flipud
        for i in range(len(CLIPS)):
            raw = f["spikes"][f"{i:07d}"][()]
            # What a reader without spikesim does with the attributes alone:
            bits = np.unpackbits(raw, axis=1, bitorder=attrs["bit_order"])
            frames = bits.reshape(-1, attrs["height"], attrs["width"]).astype(bool)
            if attrs["row_order"] == "bottom-up":
                frames = frames[:, ::-1]
            np.testing.assert_array_equal(frames, spikes_of(i, CLIPS[i][4]))


@pytest.mark.parametrize("packed", [False, True])
def test_frame_view_yields_t_1_h_w_and_targets(tmp_path: Path, packed: bool) -> None:
    folder = make_folder(tmp_path / "f", flipud=True)
    source = pack_dataset(folder, tmp_path / "d.h5") if packed else folder
    view = FrameView(source, split="train")
    assert view.dataset.clips[0].repeats is None  # a manifest without "repeats" still reads
    assert len(view) == 2 and view.targets == [0, 1] and view.classes == ["Grow", "Shrink"]
    assert view.sensor_size == (W, H, 1)
    frames, target = view[1]
    assert frames.shape == (30, 1, H, W) and frames.dtype == np.float32 and target == 1
    np.testing.assert_array_equal(frames[:, 0].astype(bool), spikes_of(2, 30))
    cut = FrameView(open_dataset(source), frames=12, dtype=bool, target_transform=str)
    assert len(cut) == 3
    assert all(cut[i][0].shape == (12, 1, H, W) and cut[i][0].dtype == bool for i in range(3))
    assert cut[-1][1] == "1"
    doubled = FrameView(source, split="test", transform=lambda x: 2 * x)
    assert doubled[0][0].max() == 2.0
    with pytest.raises(DatasetError, match="fewer than frames=13"):
        FrameView(source, frames=13)
    with pytest.raises(DatasetError, match="no clips in split 'val'"):
        FrameView(source, split="val")
    with pytest.raises(IndexError):
        view[2]


def test_frame_view_imports_no_torch() -> None:
    code = "import sys, spikesim.converted.tonic; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_pytorch_example_of_the_docs_runs(tmp_path: Path) -> None:
    """docs/format.md's five-line Dataset over the HDF5 attributes, batched by a DataLoader."""
    torch = pytest.importorskip("torch")
    h5 = pack_dataset(make_folder(tmp_path / "f", flipud=True), tmp_path / "d.h5")
    text = (ROOT / "docs" / "format.md").read_text()
    code = text.split("<!-- pytorch-example -->")[1].split("```python")[1].split("```")[0]
    scope: dict = {}
    exec(code, scope)  # defines SpikeH5
    ds = scope["SpikeH5"](str(h5))
    frames, label = ds[2]
    assert frames.shape == (30, 1, H, W) and label == 1
    np.testing.assert_array_equal(frames[:, 0].numpy().astype(bool), spikes_of(2, 30))
    batch = next(iter(torch.utils.data.DataLoader(FrameView(h5, frames=12), batch_size=3)))
    assert tuple(batch[0].shape) == (3, 12, 1, H, W)
