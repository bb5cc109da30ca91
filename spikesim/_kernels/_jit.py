"""Numba options in one place, so every kernel is compiled the same way."""

from __future__ import annotations

import numba

# cache=True keeps compiled kernels on disk between processes (tests, workers, CLI calls).
JIT = {"nogil": True, "cache": True, "fastmath": False}
PARALLEL = {**JIT, "parallel": True}

njit = numba.njit
prange = numba.prange
