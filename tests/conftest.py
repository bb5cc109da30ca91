"""Shared fixtures: the real clips in ../shared/data/clips (skipped with a reason if absent)."""

from __future__ import annotations

from collections.abc import Iterator
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


def _set_one_torch_thread() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_session() -> None:
    """Before any fixture of any scope: one torch thread (below)."""
    _set_one_torch_thread()


@pytest.fixture(autouse=True)
def _one_torch_thread(_one_torch_thread_session: None) -> Iterator[None]:
    """One torch thread in every test, whatever a test before it set: small convolutions are
    several times slower on two threads of a shared 2-core machine, and a float sum depends
    on the thread count, so a result must not depend on which tests ran first."""
    _set_one_torch_thread()
    yield
    _set_one_torch_thread()
