"""Slow, obvious references for the event-CLIP losses (loops over rows, plain Sinkhorn)."""

from __future__ import annotations

import math

import numpy as np


def plain_sinkhorn(scores: np.ndarray, temperature: float, iters: int) -> np.ndarray:
    """P = exp(S / T), then alternately scale columns to sum N / M and rows to sum 1."""
    p = np.exp(np.asarray(scores, np.float64) / temperature)
    n, m = p.shape
    for _ in range(iters):
        p = p / p.sum(axis=0, keepdims=True) * (n / m)
        p = p / p.sum(axis=1, keepdims=True)
    return p


def softmax_row(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def contrastive(s: np.ndarray, v: np.ndarray, t: float) -> float:
    total = 0.0
    for i in range(len(s)):
        z = [float(s[i] @ v[j]) / t for j in range(len(v))]
        top = max(z)
        total += -(z[i] - top - math.log(sum(math.exp(x - top) for x in z)))
    return total / len(s)


def similarity_kl(s: np.ndarray, v: np.ndarray, t: float, iters: int) -> float:
    q = plain_sinkhorn(v @ v.T, t, iters)
    total = 0.0
    for i in range(len(s)):
        p = softmax_row(np.array([s[i] @ v[j] for j in range(len(v))]) / t)
        total += sum(q[i, j] * math.log(q[i, j] / p[j]) for j in range(len(v)) if q[i, j] > 0)
    return total / len(s)


def zero_shot_kl(s: np.ndarray, v: np.ndarray, text: np.ndarray, scale: float, t: float) -> float:
    total = 0.0
    for i in range(len(s)):
        pt = softmax_row(scale * (text @ v[i]) / t)
        ps = softmax_row(scale * (text @ s[i]) / t)
        total += float((pt * np.log(pt / ps)).sum())
    return total / len(s) * t * t


def prediction(s: np.ndarray, text: np.ndarray, labels: np.ndarray) -> float:
    out = []
    for i, c in enumerate(labels):
        a, b = s[i], text[c]
        out.append(1 - float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.mean(out))
