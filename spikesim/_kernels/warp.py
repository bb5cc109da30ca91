"""Flow-based frame interpolation kernels (private; see ``spikesim.interpolate``).

Conventions: images ``(H, W)`` float32; flows ``(H, W, 2)`` float32 in pixels, channel 0 = x
(columns), channel 1 = y (rows), as OpenCV's optical flow gives them: ``flow01[y, x]`` is the
displacement that takes pixel (y, x) of frame 0 to its place in frame 1. Samples outside the
image are clamped to the border (replicate).
"""

from __future__ import annotations

import numpy as np

from ._jit import JIT, njit


@njit(**JIT)
def _fb_confidence(flow_ab, flow_ba, inv_sigma2, out):
    """Forward-backward consistency of ``flow_ab`` on frame a's grid, into ``out`` (H, W).

    Follow a pixel p to q = p + flow_ab(p) and come back with flow_ba(q), sampled bilinearly
    (q clamped to the image): where p is visible in both frames and the flows are right, the
    round trip ends at p. ``out = exp(-|error|^2 * inv_sigma2)``: 1 for a consistent pixel,
    towards 0 for an occluded or mis-tracked one. float32 arithmetic (as fast as it gets here).
    """
    h, w = out.shape
    k = np.float32(inv_sigma2)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    ymax = np.float32(h - 1)
    xmax = np.float32(w - 1)
    for i in range(h):
        for j in range(w):
            dx = flow_ab[i, j, 0]
            dy = flow_ab[i, j, 1]
            y = min(max(np.float32(i) + dy, zero), ymax)
            x = min(max(np.float32(j) + dx, zero), xmax)
            y0 = int(y)  # y >= 0, so truncation is floor
            x0 = int(x)
            y1 = min(y0 + 1, h - 1)
            x1 = min(x0 + 1, w - 1)
            fy = y - np.float32(y0)
            fx = x - np.float32(x0)
            w00 = (one - fy) * (one - fx)
            w01 = (one - fy) * fx
            w10 = fy * (one - fx)
            w11 = fy * fx
            bx = w00 * flow_ba[y0, x0, 0] + w01 * flow_ba[y0, x1, 0]
            bx += w10 * flow_ba[y1, x0, 0] + w11 * flow_ba[y1, x1, 0]
            by = w00 * flow_ba[y0, x0, 1] + w01 * flow_ba[y0, x1, 1]
            by += w10 * flow_ba[y1, x0, 1] + w11 * flow_ba[y1, x1, 1]
            ex = dx + bx
            ey = dy + by
            out[i, j] = np.exp(-(ex * ex + ey * ey) * k)


@njit(**JIT)
def _time_maps(flow01, flow10, t, still, moving, map0, map1, strength):
    """Where each pixel of the frame at time ``t`` in (0, 1) comes from in each neighbour.

    Flows from time t to the neighbours are approximated from the pair flows (linear motion):
    ``d0 = -(1-t) t f01 + t^2 f10`` and ``d1 = (1-t)^2 f01 - t (1-t) f10``. Where the implied
    motion over the pair, ``|d1 - d0|``, is below ``still`` pixels, both are zeroed (a plain
    cross-fade: flow noise on a static area would only blur it); they reach full size at
    ``moving`` pixels. Writes absolute sampling positions ``map0``, ``map1`` ``(H, W, 2)``
    (x, y; for ``cv2.remap``) and the ramp ``strength`` ``(H, W)`` in [0, 1].
    """
    h, w = strength.shape
    # float32 throughout (the maps are float32 anyway): about a third faster than float64.
    t = np.float32(t)
    a = np.float32(1.0) - t
    c0_01, c0_10 = -a * t, t * t  # d0 = c0_01 f01 + c0_10 f10
    c1_01, c1_10 = a * a, -t * a  # d1 = c1_01 f01 + c1_10 f10
    still = np.float32(still)
    ramp = np.float32(1.0 / (moving - still))
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for i in range(h):
        y = np.float32(i)
        for j in range(w):
            u01 = flow01[i, j, 0]
            v01 = flow01[i, j, 1]
            u10 = flow10[i, j, 0]
            v10 = flow10[i, j, 1]
            d0x = c0_01 * u01 + c0_10 * u10
            d0y = c0_01 * v01 + c0_10 * v10
            d1x = c1_01 * u01 + c1_10 * u10
            d1y = c1_01 * v01 + c1_10 * v10
            mx = d1x - d0x
            my = d1y - d0y
            s = min(max((np.sqrt(mx * mx + my * my) - still) * ramp, zero), one)
            x = np.float32(j)
            map0[i, j, 0] = x + s * d0x
            map0[i, j, 1] = y + s * d0y
            map1[i, j, 0] = x + s * d1x
            map1[i, j, 1] = y + s * d1y
            strength[i, j] = s


@njit(**JIT)
def _occlusion_blend(warp0, warp1, strength, t, floor, out, resid):
    """Blend the two warped neighbours at time ``t``.

    ``warp0``, ``warp1``: ``(H, W, 2)``, channel 0 the warped image, channel 1 its warped
    forward-backward confidence. Each side is weighted by its time weight times its confidence
    (plus ``floor``), so a pixel hidden in one neighbour comes from the other; confidence
    counts only as far as the pixel was warped (``strength``), so a still pixel gets the plain
    cross-fade. Writes the frame into ``out`` and the squared disagreement of the two warps
    into ``resid``.
    """
    h, w = out.shape
    a = 1.0 - t
    for i in range(h):
        for j in range(w):
            s = strength[i, j]
            w0 = warp0[i, j, 0]
            w1 = warp1[i, j, 0]
            a0 = a * (1.0 - s * (1.0 - warp0[i, j, 1]) + floor)
            a1 = t * (1.0 - s * (1.0 - warp1[i, j, 1]) + floor)
            out[i, j] = (a0 * w0 + a1 * w1) / (a0 + a1)
            diff = w0 - w1
            resid[i, j] = diff * diff


@njit(**JIT)
def _trust_blend(i0, i1, t, warped, resid_flow, resid_still, eps, out):
    """Final frame: the cross-fade ``(1-t) i0 + t i1`` pulled towards ``warped`` by how much
    better the flow explains the pair locally. ``resid_flow`` / ``resid_still`` are local
    means of the squared disagreement of the two warps / of the two raw frames; the weight is
    ``still / (still + flow + eps)``, so where the flow does not beat "nothing moved" the
    cross-fade wins. Values are clipped to [0, 1]."""
    h, w = out.shape
    a = 1.0 - t
    for i in range(h):
        for j in range(w):
            lin = a * i0[i, j] + t * i1[i, j]
            rs = resid_still[i, j]
            weight = rs / (rs + resid_flow[i, j] + eps)
            value = lin + weight * (warped[i, j] - lin)
            out[i, j] = min(max(value, 0.0), 1.0)
