"""Shared fixtures: the real clips in ../shared/data/clips (skipped with a reason if absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    """Folder with ucf101-mini/ and hmdb51-mini/ (real UCF101 / HMDB51 clips)."""
    if not (CLIPS / "ucf101-mini").is_dir():
        pytest.skip(f"real clips not found at {CLIPS} (shared/ is not beside the repo)")
    return CLIPS


@pytest.fixture(scope="session")
def real_clips(clips_dir: Path) -> list[Path]:
    """The five real clips, sorted."""
    return sorted(p for p in clips_dir.rglob("*") if p.suffix in {".avi", ".mp4"})


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Small convolutions are several times slower on two threads of a shared 2-core machine."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
