"""The tuning set for interpolation defaults: synthetic clips with the damage real footage has.

The flow method's defaults are tuned on these clips only; the real clips of
``../shared/data/clips`` are the held-out scoring set and are never used for tuning. Each clip
is a rendered synth scene (``spikesim.synth.render_clip``, ``style="real"``: cluttered
background, small motion, sensor noise) or a still scene with a small moving part, then
degraded the way flow is known to be untrustworthy on:

- ``blocky``: JPEG at quality 6 per frame (8x8 blocks that move with the grid, not the scene);
- ``h264-crf44``: H.264 at CRF 44 (smeared, blocky, skipped blocks);
- ``noisy``: Gaussian noise sigma 10/255 per frame, then H.264 CRF 28;
- ``lowlight``: a tenth of the light, shot noise (about 25 photons at full scale), 8-bit;
- ``nearstatic``: a talking-head-like scene (one small region moving a pixel or less per
  frame) with noise, H.264 CRF 30;
- ``drift``: a still camera drifting 0.2 px per frame, noisy, H.264 CRF 34;
- ``upscaled``: a quarter-size video blown up 4x (blurred edges, blocky motion);
- ``clean-*``: plain synth clips with larger motion, lightly compressed, where flow must keep
  its gain (so a default cannot win the set by always cross-fading).

    .venv/bin/python -m benchmarks.tuning_clips --out runs/tuning-clips
    .venv/bin/python -m benchmarks.bench_interp --clips runs/tuning-clips --no-speed
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from spikesim.synth import class_names, render_clip

SIZE = (240, 320)
FRAMES = 41


def _grey(rgb: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) float32 luma in [0, 1]."""
    w = np.array([0.299, 0.587, 0.114], np.float32)
    return (rgb.astype(np.float32) @ w) / 255.0


def _h264(path: Path, frames: np.ndarray, crf: int, fps: float = 25.0) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            image = np.clip(np.round(f * 255), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for f in frames:
        image = np.clip(np.round(f * 255), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        out.append(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255)
    return np.stack(out)


def _talking_head(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A still frame where one elliptical region (a head) sways and nods by about a pixel."""
    h, w = base.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * 0.45, w * 0.5
    mask = (((yy - cy) / (h * 0.28)) ** 2 + ((xx - cx) / (w * 0.15)) ** 2 < 1).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    face = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3.0)
    face = 0.25 + 0.5 * (face - face.min()) / (np.ptp(face) + 1e-6)
    out = []
    for k in range(FRAMES):
        dx = 1.5 * np.sin(2 * np.pi * k / 23.0) + 0.4 * k / FRAMES
        dy = 0.8 * np.sin(2 * np.pi * k / 17.0 + 1.0)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(face, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        mk = cv2.warpAffine(mask, m, (w, h))
        out.append(base * (1 - mk) + moved * mk)
    return np.stack(out)


def _drift(base: np.ndarray, step: float) -> np.ndarray:
    h, w = base.shape
    out = []
    for k in range(FRAMES):
        m = np.float32([[1, 0, step * k], [0, 1, 0.5 * step * k]])
        out.append(cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def make_tuning_set(out: Path, seed: int = 0) -> list[Path]:
    """Write the tuning clips into ``out`` (one folder, ``.mp4`` H.264); returns their paths."""
    import av

    if "libx264" not in av.codecs_available:
        raise SystemExit("this FFmpeg has no libx264; the tuning set needs it")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = class_names(12)
    scenes = [
        _grey(
            render_clip(names[i], 2 * i, size=SIZE, frames=FRAMES, style="real", seed=seed).frames
        )
        for i in (0, 2, 4, 7)
    ]
    written = []

    def save(name: str, frames: np.ndarray, crf: int) -> None:
        path = out / f"{name}.mp4"
        _h264(path, np.clip(frames, 0, 1), crf)
        written.append(path)

    save("blocky-grow", _jpeg(scenes[0], 6), 16)
    save("blocky-move", _jpeg(scenes[2], 6), 16)
    save("h264-crf44-rotate", scenes[1], 44)
    save("h264-crf44-move", scenes[3], 44)
    save("noisy-grow", scenes[0] + rng.normal(0, 10 / 255, scenes[0].shape), 28)
    save("noisy-move", scenes[2] + rng.normal(0, 10 / 255, scenes[2].shape), 28)
    for i, scene in ((1, scenes[1]), (3, scenes[3])):
        light = rng.poisson(scene * 0.1 * 255 / 10.0 * 2.5).astype(np.float32) * 10.0 / 2.5 / 255
        save(f"lowlight-{i}", _jpeg(light, 90), 20)
    head = _talking_head(rng, scenes[1][0])
    save("nearstatic-head", head + rng.normal(0, 3 / 255, head.shape), 30)
    head2 = _talking_head(rng, scenes[3][0])
    save("nearstatic-head-crf40", head2 + rng.normal(0, 2 / 255, head2.shape), 40)
    drift = _drift(scenes[2][0], 0.2)
    save("drift", drift + rng.normal(0, 4 / 255, drift.shape), 34)
    small = np.stack([cv2.resize(f, (80, 60), interpolation=cv2.INTER_AREA) for f in scenes[3]])
    big = np.stack([cv2.resize(f, (320, 240), interpolation=cv2.INTER_NEAREST) for f in small])
    save("upscaled", big, 23)
    # Clean footage with plain motion, where flow must keep its gain over the cross-fade.
    for i in (2, 4, 8):
        sim = render_clip(names[i], 2 * i + 1, size=SIZE, frames=FRAMES, style="sim", seed=seed)
        save(f"clean-{names[i]}", _grey(sim.frames), 18)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/tuning-clips"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for path in make_tuning_set(args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
