"""Which torch device to run on: one rule for every command."""

from __future__ import annotations

import torch

from .errors import SpklipError

AUTO = "auto"


def pick_device(device: str | torch.device | None = AUTO) -> torch.device:
    """``"auto"`` (or None): CUDA when available, else CPU; otherwise the device named, checked
    to exist (``cuda:7`` on a machine without it, or ``banana``, is a one-line error)."""
    if device is None or device == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SpklipError(
            f"device {device!r} is not a torch device; use cpu, cuda, cuda:N or auto"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SpklipError(f"device {device!r}: this torch has no CUDA device; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SpklipError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA devices; "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type not in ("cpu", "mps"):
        raise SpklipError(f"device {device!r} is not supported here; use cpu, cuda, cuda:N or auto")
    return dev
