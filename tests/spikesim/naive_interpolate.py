"""Slow, obvious references for ``spikesim.interpolate`` and its kernels (float64, loops).

Flows are ``(H, W, 2)``: channel 0 along x (columns), channel 1 along y (rows);
``flow01[y, x]`` takes pixel (y, x) of frame 0 to its place in frame 1.
"""

from __future__ import annotations

import math

import numpy as np


def naive_hold(frames: np.ndarray, factor: int) -> np.ndarray:
    """Sample and hold: each source frame, then factor - 1 copies of it, ..., the last one."""
    out = []
    for k in range(len(frames) - 1):
        out.extend([frames[k]] * factor)
    out.append(frames[-1])
    return np.array(out, np.float32)


def naive_linear(frames: np.ndarray, factor: int) -> np.ndarray:
    """Cross-fade: output k * factor + m is (1 - m/factor) frames[k] + m/factor frames[k+1]."""
    f = frames.astype(np.float64)
    out = []
    for k in range(len(f) - 1):
        for m in range(factor):
            t = m / factor
            out.append((1 - t) * f[k] + t * f[k + 1])
    out.append(f[-1])
    return np.array(out, np.float32)


def bilinear(img: np.ndarray, y: float, x: float) -> np.ndarray | float:
    """Sample ``img`` (H, W) or (H, W, C) at (row y, column x) with border clamping."""
    h, w = img.shape[:2]
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)
    y0, x0 = math.floor(y), math.floor(x)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    fy, fx = y - y0, x - x0
    img = img.astype(np.float64)
    return (
        (1 - fy) * (1 - fx) * img[y0, x0]
        + (1 - fy) * fx * img[y0, x1]
        + fy * (1 - fx) * img[y1, x0]
        + fy * fx * img[y1, x1]
    )


def naive_fb_confidence(flow_ab: np.ndarray, flow_ba: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-|flow_ab(p) + flow_ba(p + flow_ab(p))|^2 / sigma^2) for every pixel p of frame a."""
    h, w = flow_ab.shape[:2]
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            dx, dy = flow_ab[i, j]
            back = bilinear(flow_ba, i + dy, j + dx)
            err = np.array([dx, dy], np.float64) + back
            out[i, j] = math.exp(-(err @ err) / sigma**2)
    return out


def naive_time_maps(flow01, flow10, t, still, moving):
    """Sampling positions (x, y) in frame 0 and frame 1 for the frame at time t, and the ramp.

    d0 = -(1-t) t f01 + t^2 f10 and d1 = (1-t)^2 f01 - t (1-t) f10 (linear motion), both
    scaled by s = clip((|d1 - d0| - still) / (moving - still), 0, 1).
    """
    h, w = flow01.shape[:2]
    map0 = np.zeros((h, w, 2))
    map1 = np.zeros((h, w, 2))
    strength = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            f01 = flow01[i, j].astype(np.float64)
            f10 = flow10[i, j].astype(np.float64)
            d0 = -(1 - t) * t * f01 + t * t * f10
            d1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
            s = min(max((np.linalg.norm(d1 - d0) - still) / (moving - still), 0.0), 1.0)
            map0[i, j] = (j + s * d0[0], i + s * d0[1])
            map1[i, j] = (j + s * d1[0], i + s * d1[1])
            strength[i, j] = s
    return map0, map1, strength


def naive_remap(img: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """out[i, j] = img sampled bilinearly at (x, y) = maps[i, j], border clamped."""
    h, w = maps.shape[:2]
    out = np.zeros((h, w, *img.shape[2:]))
    for i in range(h):
        for j in range(w):
            x, y = maps[i, j]
            out[i, j] = bilinear(img, y, x)
    return out


def naive_occlusion_blend(warp0, warp1, strength, t, floor):
    """Weights (1-t)(1 - s(1 - c0) + floor) and t(1 - s(1 - c1) + floor); returns the blend and
    the squared difference of the two warped images."""
    w0, c0 = warp0[..., 0].astype(np.float64), warp0[..., 1].astype(np.float64)
    w1, c1 = warp1[..., 0].astype(np.float64), warp1[..., 1].astype(np.float64)
    s = strength.astype(np.float64)
    a0 = (1 - t) * (1 - s * (1 - c0) + floor)
    a1 = t * (1 - s * (1 - c1) + floor)
    return (a0 * w0 + a1 * w1) / (a0 + a1), (w0 - w1) ** 2


def naive_box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size box centred on each pixel, borders mirrored without repeating
    the edge pixel (OpenCV's default border)."""
    r = size // 2
    pad = np.pad(img.astype(np.float64), r, mode="reflect")
    h, w = img.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = pad[i : i + size, j : j + size].mean()
    return out


def naive_trust_blend(i0, i1, t, warped, resid_flow, resid_still, eps):
    """lin + still / (still + flow + eps) * (warped - lin), lin the cross-fade, clipped to
    [0, 1]."""
    lin = (1 - t) * i0.astype(np.float64) + t * i1.astype(np.float64)
    weight = resid_still / (resid_still + resid_flow + eps)
    return np.clip(lin + weight * (warped - lin), 0.0, 1.0)


def naive_photometric(f0, f1, flow01, flow10, window):
    """Local mean of the flow's photometric miss: f1 sampled at p + flow01(p) against f0(p),
    f0 at p + flow10(p) against f1(p), squared, averaged over both."""
    h, w = f0.shape
    miss = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            b1 = bilinear(f1, i + flow01[i, j, 1], j + flow01[i, j, 0])
            b0 = bilinear(f0, i + flow10[i, j, 1], j + flow10[i, j, 0])
            miss[i, j] = 0.5 * ((f0[i, j] - b1) ** 2 + (f1[i, j] - b0) ** 2)
    return naive_box_mean(miss, window)


def naive_warp_frames(
    f0,
    f1,
    flow01,
    flow10,
    ts,
    *,
    still,
    moving,
    sigma,
    floor,
    window,
    noise_floor=0.0,
    photometric=0.0,
):
    """The whole warp-and-blend of ``spikesim.interpolate.warp_frames``, slowly: the frames'
    local change less a noise floor of ``noise_floor`` grey levels squared is what the flow
    must beat, and the flow's photometric miss (x ``photometric``) counts against it."""
    conf0 = naive_fb_confidence(flow01, flow10, sigma)
    conf1 = naive_fb_confidence(flow10, flow01, sigma)
    src0 = np.dstack([f0, conf0])
    src1 = np.dstack([f1, conf1])
    resid_still = naive_box_mean((f0.astype(np.float64) - f1) ** 2, window)
    resid_still = np.maximum(resid_still - (noise_floor / 255.0) ** 2, 0.0)
    photo = photometric * naive_photometric(f0, f1, flow01, flow10, window)
    out = []
    for t in ts:
        map0, map1, strength = naive_time_maps(flow01, flow10, t, still, moving)
        warped, resid = naive_occlusion_blend(
            naive_remap(src0, map0), naive_remap(src1, map1), strength, t, floor
        )
        out.append(
            naive_trust_blend(
                f0, f1, t, warped, naive_box_mean(resid, window) + photo, resid_still, 1e-6
            )
        )
    return np.array(out)
