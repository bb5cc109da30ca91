"""Reading converted data needs NumPy and h5py only: spikesim never imports torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import spikesim
from spikesim.converted.layout import ClipRecord, write_classes, write_manifest


def test_folder_and_pack_read_without_torch(tmp_path: Path) -> None:
    folder = tmp_path / "conv"
    records = []
    for i, cls in enumerate(("a", "b")):
        path = f"{cls}/clip.dat"
        spikesim.write_dat(folder / path, np.eye(8, 16, dtype=bool)[None].repeat(5, axis=0))
        records.append(ClipRecord(path, cls, i, "test", None, 5, 8, 16, f"{cls}.avi", 1))
    write_manifest(folder / "manifest.jsonl", records)
    write_classes(folder, ["a", "b"])
    pack = spikesim.pack_dataset(folder, tmp_path / "ds.h5")
    script = textwrap.dedent(
        f"""
        import sys
        import spikesim
        for path in ({str(folder)!r}, {str(pack)!r}):
            ds = spikesim.open_dataset(path)
            assert ds.read(1, 1, 3).shape == (3, 8, 16)
        assert "torch" not in sys.modules, "spikesim imported torch"
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
