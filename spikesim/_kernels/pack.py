"""Bit-packing kernels for ``.dat`` frames (private: see ``spikesim.dat.pack_frames``).

File order: pixels row by row, byte j holds pixels 8j..8j+7, bit k (LSB first) is pixel 8j+k;
with ``flipud`` the file's row r is image row H-1-r.

Two paths each way:
- row path: when every file row starts on a byte (W % 8 == 0) or rows are not flipped, one
  packed byte is exactly 8 consecutive pixels of one image row (one uint64 of the bool array):
  unpack spreads its bits over 8 bytes, pack folds 8 bytes into 8 bits with one multiply.
  One unit of work is a (frame, row).
- bit path: flipped rows whose width is not a multiple of 8 (a byte may straddle two rows).
  One unit of work is a frame, walking its pixels with a running (row, col).
"""

from __future__ import annotations

import numpy as np

from ._jit import JIT, PARALLEL, njit, prange

# Keeps only bit 0 of every byte after the or-folds in _fold_byte.
_LOW_BITS = np.uint64(0x0101010101010101)
# b_k at bit 8k times 2**(56 - 7k) lands on bit 56 + k; all other products miss bits 56..63
# and no two products share a bit, so there are no carries.
_GATHER = np.uint64(0x0102040810204080)


@njit(**JIT)
def _pack_word(word):
    # The byte of bits of 8 pixels that are each 0 or 1 (byte m of the little-endian word is
    # pixel 8j+m): multiplying moves bit 8m to bit 56+m with no carries between them.
    return np.uint8((word * _GATHER) >> np.uint64(56))


@njit(**JIT)
def _fold_byte(word):
    # Or-fold each byte onto its own bit 0 (so any nonzero uint8 counts as a spike): bits 0..3
    # of a byte only ever receive bits of the same byte, whatever the shifts bring in above.
    word = word | (word >> np.uint64(4))
    word = word | (word >> np.uint64(2))
    word = word | (word >> np.uint64(1))
    word = word & _LOW_BITS
    return _pack_word(word)


# Each kernel handles one unit of work (a row, or a frame) and has a parallel driver
# (prange: every unit writes only its own bytes, so no races) and a serial one for small
# reads, where waking the thread pool costs more than the work itself.
# In the row kernels, each row is taken as a slice first: indexing a slice with the loop
# counter lets LLVM drop Numba's negative-index checks and vectorise (3-5x faster).


@njit(**JIT)
def _pack_row(words, rows, row_bytes, flipud, out, i):
    """Row i (frame i // rows) of words uint64 (T, nb) -> out uint8 (T, nb) in file order."""
    t = i // rows
    r = i % rows
    # Walk the big input forwards (the prefetcher likes it); the small output rows go backwards.
    dst_row = rows - 1 - r if flipud else r
    src = words[t, r * row_bytes : (r + 1) * row_bytes]
    dst = out[t, dst_row * row_bytes : (dst_row + 1) * row_bytes]
    for j in range(row_bytes):
        dst[j] = _fold_byte(src[j])


@njit(**JIT)
def _unpack_row(packed, rows, row_bytes, flipud, out, i):
    """Row i of packed uint8 (T, nb) in file order -> out uint8 (T, nb*8) 0/1 in image order."""
    t = i // rows
    r = i % rows
    # Walk the big output forwards (the prefetcher likes it); the small input rows go backwards.
    src_row = rows - 1 - r if flipud else r
    src = packed[t, src_row * row_bytes : (src_row + 1) * row_bytes]
    dst = out[t, r * row_bytes * 8 : (r + 1) * row_bytes * 8]
    for j in range(row_bytes):
        value = src[j]
        for k in range(8):
            dst[8 * j + k] = (value >> k) & 1


@njit(**JIT)
def _pack_frame_bits(spikes, flipud, out, t):
    """Frame t of spikes uint8 (T, H, W) (nonzero = spike) -> out uint8 (T, H*W//8)."""
    height = spikes.shape[1]
    width = spikes.shape[2]
    r = 0  # file row and column of the next pixel
    c = 0
    for j in range(out.shape[1]):
        value = 0
        for k in range(8):
            src_row = height - 1 - r if flipud else r
            if spikes[t, src_row, c] != 0:
                value |= 1 << k
            c += 1
            if c == width:
                c = 0
                r += 1
        out[t, j] = value


@njit(**JIT)
def _unpack_frame_bits(packed, flipud, out, t):
    """Frame t of packed uint8 (T, H*W//8) -> out uint8 (T, H, W) 0/1 in image order."""
    height = out.shape[1]
    width = out.shape[2]
    r = 0
    c = 0
    for j in range(packed.shape[1]):
        value = packed[t, j]
        for k in range(8):
            dst_row = height - 1 - r if flipud else r
            out[t, dst_row, c] = (value >> k) & 1
            c += 1
            if c == width:
                c = 0
                r += 1


@njit(**PARALLEL)
def _pack_rows(words, rows, row_bytes, flipud, out):
    for i in prange(words.shape[0] * rows):
        _pack_row(words, rows, row_bytes, flipud, out, i)


@njit(**JIT)
def _pack_rows_serial(words, rows, row_bytes, flipud, out):
    for i in range(words.shape[0] * rows):
        _pack_row(words, rows, row_bytes, flipud, out, i)


@njit(**PARALLEL)
def _unpack_rows(packed, rows, row_bytes, flipud, out):
    for i in prange(packed.shape[0] * rows):
        _unpack_row(packed, rows, row_bytes, flipud, out, i)


@njit(**JIT)
def _unpack_rows_serial(packed, rows, row_bytes, flipud, out):
    for i in range(packed.shape[0] * rows):
        _unpack_row(packed, rows, row_bytes, flipud, out, i)


@njit(**PARALLEL)
def _pack_bits(spikes, flipud, out):
    for t in prange(spikes.shape[0]):
        _pack_frame_bits(spikes, flipud, out, t)


@njit(**JIT)
def _pack_bits_serial(spikes, flipud, out):
    for t in range(spikes.shape[0]):
        _pack_frame_bits(spikes, flipud, out, t)


@njit(**PARALLEL)
def _unpack_bits(packed, flipud, out):
    for t in prange(packed.shape[0]):
        _unpack_frame_bits(packed, flipud, out, t)


@njit(**JIT)
def _unpack_bits_serial(packed, flipud, out):
    for t in range(packed.shape[0]):
        _unpack_frame_bits(packed, flipud, out, t)
