"""Slow, obvious references for FSVE's neuron and for counting synaptic operations.

- ``lif_reference``: a LIF neuron stepped element by element in Python floats.
- ``lif_autograd_reference``: the same dynamics on tensors, one time step at a time, with the
  rectangular surrogate written as its own autograd function: gradients by BPTT.
- ``rect_surrogate_grad``: the rectangular surrogate's derivative.
- ``event_driven_accumulates``: the accumulates a conv layer does if it only works on
  input spikes (each spike is added into every output that its weights reach).

and one test helper, ``calibrate_batchnorm``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def lif_reference(
    x: np.ndarray,
    *,
    tau: float,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    decay_input: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Input currents (T, N) -> spikes (T, N) 0/1 and membrane after reset (T, N), from V=v_reset.

    Charge: H = V + (X - (V - v_reset)) / tau if decay_input else V - (V - v_reset)/tau + X.
    Fire: spike = 1 when H >= v_threshold. Reset: V = v_reset after a spike, else V = H.
    """
    steps, n = x.shape
    spikes = np.zeros((steps, n))
    potentials = np.zeros((steps, n))
    for i in range(n):
        v = v_reset
        for t in range(steps):
            if decay_input:
                h = v + (x[t, i] - (v - v_reset)) / tau
            else:
                h = v - (v - v_reset) / tau + x[t, i]
            fired = h >= v_threshold
            spikes[t, i] = 1.0 if fired else 0.0
            v = v_reset if fired else h
            potentials[t, i] = v
    return spikes, potentials


def rect_surrogate_grad(h_minus_threshold: np.ndarray, width: float) -> np.ndarray:
    """d spike / d H of the rectangular surrogate: 1/width inside |H - V_th| < width/2, else 0."""
    return np.where(np.abs(h_minus_threshold) < width / 2, 1.0 / width, 0.0)


class _RectSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.width = width
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        inside = (x.abs() < ctx.width / 2).to(grad.dtype)
        return grad * inside / ctx.width, None


def lif_autograd_reference(
    x: torch.Tensor,
    *,
    tau: float,
    width: float,
    v_threshold: float = 1.0,
    decay_input: bool = False,
    detach_reset: bool = True,
) -> torch.Tensor:
    """Input (T, ...) float -> spikes (T, ...), differentiable through the surrogate; hard
    reset to 0 (the reset's dependence on the spike is cut with ``detach_reset``)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau if decay_input else v - v / tau + x[t]
        spike = _RectSpike.apply(h - v_threshold, width)
        gate = spike.detach() if detach_reset else spike
        v = h * (1 - gate)
        out.append(spike)
    return torch.stack(out)


def event_driven_accumulates(spikes: np.ndarray, out_channels: int, kernel: int) -> int:
    """Accumulates of a stride-1, zero-padded ("same") conv with a kernel x kernel window on
    input (B, C, H, W) 0/1: every input spike is added once into each output position of
    each output channel whose window covers it."""
    _, _, h, w = spikes.shape
    r = kernel // 2
    total = 0
    for b, c, y, x in zip(*np.nonzero(spikes), strict=True):
        del b, c
        rows = min(y + r, h - 1) - max(y - r, 0) + 1  # outputs whose window holds row y
        cols = min(x + r, w - 1) - max(x - r, 0) + 1
        total += rows * cols * out_channels
    return int(total)


def calibrate_batchnorm(model: torch.nn.Module, spikes: torch.Tensor, passes: int = 2) -> None:
    """Test helper, not a reference: give an untrained model the BatchNorm statistics of
    ``spikes`` (a cumulative average over a few train-mode passes without gradients), as
    training would. An untrained FSVE in eval mode normalises with the initial statistics
    (mean 0, variance 1), and its deeper layers then hardly fire."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model.encode_video(spikes)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)


def threshold_spike_reference(x: np.ndarray, alpha: float, batch_dim: int) -> np.ndarray:
    """Eq. 9-11's neuron, element by element: x > alpha * mean(|x|) of its own sample."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), batch_dim, 0)
    out = np.zeros_like(x)
    for b in range(x.shape[0]):
        flat = x[b].ravel()
        threshold = alpha * sum(abs(v) for v in flat) / len(flat)
        out[b] = np.array([1.0 if v > threshold else 0.0 for v in flat]).reshape(x[b].shape)
    return np.moveaxis(out, 0, batch_dim)


def spike_driven_attention_reference(
    u: np.ndarray,
    *,
    wq: np.ndarray,
    wk: np.ndarray,
    wv: np.ndarray,
    wo: np.ndarray,
    alphas: dict[str, float],
    heads: int,
    tau: float,
    bn: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float],
) -> np.ndarray:
    """Eq. 9-11 with loops, tokens u (S, B, d) -> (S, B, d):

    x = LIF(u) per channel over the S steps; Q = SN(x Wq^T), K, V likewise (Eq. 9);
    A[b, h, i, j] = SN(sum_c Q[i, b, h, c] K[j, b, h, c] / sqrt(d/heads)) (Eq. 10, no mask);
    M[i, b, h, c] = sum_j A[b, h, i, j] V[j, b, h, c]; out = u + BN(SN(M) Wo^T) (Eq. 11),
    BN in eval form (weight, bias, running mean, running var, eps); SN a threshold spike."""
    s, b, d = u.shape
    dh = d // heads
    x = np.zeros_like(u)
    for bi in range(b):
        x[:, bi, :] = lif_reference(u[:, bi, :], tau=tau)[0]
    q = threshold_spike_reference(x @ wq.T, alphas["q"], 1)
    k = threshold_spike_reference(x @ wk.T, alphas["k"], 1)
    v = threshold_spike_reference(x @ wv.T, alphas["v"], 1)
    scores = np.zeros((b, heads, s, s))
    for bi in range(b):
        for h in range(heads):
            for i in range(s):
                for j in range(s):
                    total = 0.0
                    for c in range(h * dh, (h + 1) * dh):
                        total += q[i, bi, c] * k[j, bi, c]
                    scores[bi, h, i, j] = total / math.sqrt(dh)
    a = threshold_spike_reference(scores, alphas["score"], 0)
    mixed = np.zeros((s, b, d))
    for bi in range(b):
        for h in range(heads):
            for i in range(s):
                for c in range(h * dh, (h + 1) * dh):
                    mixed[i, bi, c] = sum(a[bi, h, i, j] * v[j, bi, c] for j in range(s))
    spikes = threshold_spike_reference(mixed, alphas["attn"], 1)
    weight, bias, mean, var, eps = bn
    y = spikes @ wo.T
    return u + (y - mean) / np.sqrt(var + eps) * weight + bias
