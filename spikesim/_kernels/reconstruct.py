"""TFI / TFP kernels: scans along time for every pixel, parallel over rows.

Every kernel loops ``for h in prange(H)`` and writes only row ``h`` of its outputs, so no two
threads write the same element and there is nothing to reduce. Time is the outer loop
inside a row so that each step reads one contiguous row of W bytes.

Inputs are uint8 ``(n, H, W)`` with nonzero meaning "spike"; times are absolute frame indices
(int64), so that a long file can be fed one chunk at a time with per-pixel state carried over.
"""

from __future__ import annotations

import numpy as np

from ._jit import PARALLEL, njit, prange

# Spike times are absolute frame indices. "No spike" is FAR frames away: before the start
# as -FAR, after the end as +FAR. An interval of more than 255 frames gives 255 // d = 0, so
# the sentinels need no special case.
FAR = 1 << 40

# Frames per tile of the per-row scans: a tile of next-spike times (TILE x W int64) stays in
# the L2 cache while the output rows are written in order.
TILE = 64


@njit(**PARALLEL)
def _tfi_chunk(frames, t0, prev, nxt_end, lut, out, out_lo):
    """TFI of the times [out_lo, out_lo + m) covered by a chunk of frames.

    frames:  uint8 (n, H, W), frame i is absolute time t0 + i; [out_lo, out_lo + m) must lie
             inside [t0, t0 + n).
    prev:    int64 (H, W), last spike before t0 (-FAR: none); updated in place to the last
             spike before t0 + n, the state the next chunk starts from.
    nxt_end: int64 (H, W), first spike at or after t0 + n (any value below t0 + n: none).
    lut:     uint8 (257,), lut[d] = 255 // d for d in 1..255 and 0 for d = 256 (longer).
    out:     uint8 (m, H, W), every element written: out[i] is time out_lo + i.

    Per row: a backward pass over the chunk records, at every tile start, each pixel's next
    spike; then tile by tile, a backward pass fills the next-spike time of every frame of the
    tile and a forward pass carries the previous spike and writes out[t] = lut[next - prev].
    """
    n, height, width = frames.shape
    out_hi = out_lo + out.shape[0]
    tiles = (n + TILE - 1) // TILE
    for h in prange(height):
        # first[k, x]: first spike at or after the start of tile k (row `tiles`: after the chunk)
        first = np.empty((tiles + 1, width), np.int64)
        for x in range(width):
            s = nxt_end[h, x]
            first[tiles, x] = s if s >= t0 + n else FAR
        nxt = first[tiles].copy()
        for i in range(n - 1, -1, -1):
            for x in range(width):
                if frames[i, h, x] != 0:
                    nxt[x] = t0 + i
            if i % TILE == 0:
                first[i // TILE] = nxt
        ahead = np.empty((TILE, width), np.int64)  # next spike at or after each time of a tile
        last = prev[h]  # a view: updated in place
        for k in range(tiles):
            a = k * TILE
            b = min(a + TILE, n)
            writes = t0 + b > out_lo and t0 + a < out_hi
            if writes:
                nxt[:] = first[k + 1]
                for i in range(b - 1, a - 1, -1):
                    for x in range(width):
                        if frames[i, h, x] != 0:
                            nxt[x] = t0 + i
                        ahead[i - a, x] = nxt[x]
            for i in range(a, b):
                t = t0 + i
                if writes and out_lo <= t < out_hi:
                    for x in range(width):
                        out[t - out_lo, h, x] = lut[min(ahead[i - a, x] - last[x], 256)]
                for x in range(width):
                    if frames[i, h, x] != 0:
                        last[x] = t


@njit(**PARALLEL)
def _first_spike(frames, t0, want, found):
    """For pixels with want != 0, set found = absolute time of their first spike in frames.

    frames: uint8 (n, H, W) at absolute times [t0, t0 + n).
    want:   uint8 (H, W); cleared where a spike was found, so the caller can stop when empty.
    found:  int64 (H, W), written only where a spike was found.
    A row stops reading as soon as all its wanted pixels are found (usually a few frames).
    """
    n, height, width = frames.shape
    for h in prange(height):
        need = want[h]
        got = found[h]
        left = 0
        for x in range(width):
            left += need[x] != 0
        i = 0
        while left > 0 and i < n:
            row = frames[i, h]
            t = t0 + i
            left = 0
            # Branch-free, so that the loop over x vectorises.
            for x in range(width):
                hit = need[x] != 0 and row[x] != 0
                got[x] = t if hit else got[x]
                still = need[x] != 0 and row[x] == 0
                need[x] = still
                left += still
            i += 1


@njit(**PARALLEL)
def _last_spike(frames, t0, last):
    """Set last = absolute time of the last spike in frames, where a pixel has one.

    frames: uint8 (n, H, W) at absolute times [t0, t0 + n); last: int64 (H, W), in place.
    """
    n, height, width = frames.shape
    for h in prange(height):
        for i in range(n):
            for x in range(width):
                if frames[i, h, x] != 0:
                    last[h, x] = t0 + i


@njit(**PARALLEL)
def _tfp(frames, window, lut, out):
    """Spike count over a sliding window of ``window`` frames, mapped through ``lut``.

    frames: uint8 (n, H, W); window: odd frame count 2h + 1; lut: uint8 (window + 1,)
    with lut[k] = 255 * k // window; out: uint8 (n - window + 1, H, W), out[i] is the window
    frames[i : i + window].
    """
    n, height, width = frames.shape
    for h in prange(height):
        # A running count per pixel: one add and one subtract per frame, whatever the window.
        # Branch-free (add the comparison) so that the loop over x vectorises.
        count = np.zeros(width, np.int32)
        for i in range(n):
            row = frames[i, h]
            if i >= window:
                gone = frames[i - window, h]
                for x in range(width):
                    count[x] += np.int32(row[x] != 0) - np.int32(gone[x] != 0)
            else:
                for x in range(width):
                    count[x] += np.int32(row[x] != 0)
            if i >= window - 1:
                image = out[i - window + 1, h]
                for x in range(width):
                    image[x] = lut[count[x]]
