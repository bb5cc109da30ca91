"""Frame sizes: ``HxW`` strings on the command line, ``(H, W)`` tuples everywhere else."""

from __future__ import annotations

from .errors import SpikesimError


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"240x320"`` into ``(240, 320)`` (height first)."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SpikesimError(f"size {text!r} is not HxW, e.g. 240x320")
    h, w = (int(p) for p in parts)
    check_size(h, w)
    return h, w


def check_size(height: int, width: int) -> None:
    """Raise unless the size is positive and H·W is a multiple of 8 (whole bytes per frame)."""
    if height <= 0 or width <= 0:
        raise SpikesimError(f"size {height}x{width} must be positive")
    if (height * width) % 8:
        raise SpikesimError(
            f"size {height}x{width}: H*W = {height * width} is not a multiple of 8, "
            "so frames would not fill whole bytes"
        )


def format_size(height: int, width: int) -> str:
    return f"{height}x{width}"
