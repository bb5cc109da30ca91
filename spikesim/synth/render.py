"""Rendering one synthetic clip: appearance, motion, camera and caption."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..checks import check_size, format_size, is_whole
from ..errors import SpikesimError
from .classes import (
    CLASS_SPECS,
    CLIPS_PER_GROUP,
    MAX_GROUPS,
    SPEC_INDEX,
    STYLES,
    ClassSpec,
    SynthClip,
)

_MIN_SIDE = 32  # smaller frames leave no room for an object to move
_MIN_FRAMES = 8
_REAL_BG_SPAN = 0.36  # real style: luma range (2nd..98th percentile) of the cluttered scene
_REAL_MIN_OFFSET = 0.38  # real style: least luma between the object's mean and the scene's
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # RGB weights, as the encoder uses

# Appearance vocabulary. Colours are anchors; each is refitted to the luma the style asks for.
_SHAPES = ("disc", "square", "triangle", "star", "hexagon", "cross")
_TEXTURES = {
    "stripes": "striped",
    "checker": "checkered",
    "noise": "speckled",
    "gradient": "shaded",
}
_BRIGHT_COLOURS = {
    "yellow": (1.0, 0.88, 0.15),
    "orange": (1.0, 0.58, 0.12),
    "cyan": (0.2, 0.9, 0.95),
    "pink": (1.0, 0.55, 0.78),
    "lime": (0.62, 1.0, 0.3),
    "white": (0.95, 0.95, 0.95),
}
_DARK_COLOURS = {
    "red": (0.8, 0.08, 0.08),
    "blue": (0.12, 0.22, 0.9),
    "green": (0.08, 0.5, 0.15),
    "purple": (0.5, 0.12, 0.62),
    "brown": (0.5, 0.3, 0.12),
    "teal": (0.05, 0.45, 0.45),
}
_SIM_BACKGROUNDS = {
    "plain": "plain",
    "gradient": "gradient",
    "noise": "mottled",
    "stripes": "striped",
}
_REAL_BACKDROPS = (
    "cluttered scene",
    "textured backdrop",
    "busy background",
    "natural-looking scene",
)


# ---------------------------------------------------------------------------------------------
# Appearance: colours, textures, sprites, backgrounds


def _luma(rgb) -> float:
    return float(np.dot(np.asarray(rgb, dtype=np.float32), _LUMA))


def _with_luma(rgb, target: float) -> np.ndarray:
    """The colour darkened toward black or lightened toward white until its luma is ``target``."""
    c = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    lum = _luma(c)
    if target <= lum:
        return c * (target / max(lum, 1e-6))
    return c + (1.0 - c) * ((target - lum) / max(1.0 - lum, 1e-6))


def _polygon(shape: str) -> np.ndarray:
    """Vertices (N, 2) of ``shape`` with circumradius 1, centred on the origin."""
    if shape == "disc":
        n, radii = 48, [1.0]
    elif shape == "square":
        n, radii = 4, [1.0]
    elif shape == "triangle":
        n, radii = 3, [1.0]
    elif shape == "hexagon":
        n, radii = 6, [1.0]
    elif shape == "star":
        n, radii = 10, [1.0, 0.45]
    elif shape == "cross":
        a = 0.32  # half the arm width; the arm tips lie on the unit circle
        b = float(np.sqrt(1.0 - a * a))
        pts = [(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b),
               (-a, -b), (-a, -a), (-b, -a), (-b, a), (-a, a), (-a, b)]  # fmt: skip
        return np.array(pts, dtype=np.float64)
    else:  # pragma: no cover - _SHAPES is closed
        raise ValueError(shape)
    angles = np.arange(n) * (2 * np.pi / n) - np.pi / 2
    r = np.array([radii[i % len(radii)] for i in range(n)])
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1] (h, w) float32: a random grid of ``cells`` cells, cubic-upsampled."""
    ch = max(2, round(cells * h / max(h, w)) + 1)
    cw = max(2, round(cells * w / max(h, w)) + 1)
    grid = rng.uniform(-1.0, 1.0, (ch, cw)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    peak = float(np.abs(out).max())
    return out / peak if peak > 0 else out


def _pattern(kind: str, params: dict, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A texture (h, w) float32 in [0, 1]. ``params`` holds the period / angle / phase."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = params["angle"]
    u = x * np.cos(ang) + y * np.sin(ang)
    v = -x * np.sin(ang) + y * np.cos(ang)
    period, phase = params["period"], params["phase"]
    if kind == "stripes":
        # a steep sine: crisp stripes without the aliasing of a hard square wave
        return 0.5 + 0.5 * np.clip(3.0 * np.sin(2 * np.pi * u / period + phase), -1.0, 1.0)
    if kind == "checker":
        s = np.sin(np.pi * u / period + phase) * np.sin(np.pi * v / period + phase)
        return 0.5 + 0.5 * np.clip(4.0 * s, -1.0, 1.0)
    if kind == "noise":
        return 0.5 + 0.5 * _smooth_noise(rng, h, w, max(3, round(max(h, w) / period)))
    if kind == "gradient":
        lo, hi = float(u.min()), float(u.max())
        return (u - lo) / max(hi - lo, 1e-6)
    raise ValueError(kind)  # pragma: no cover


def _sprite(look: dict, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The object at full size: premultiplied RGBA (P, P, 4) float32 and its centre coordinate."""
    side = 2 * int(np.ceil(radius)) + 5
    centre = (side - 1) / 2.0
    shift = 4  # fillPoly's sub-pixel bits: vertices at 1/16 pixel
    pts = _polygon(look["shape"]) * radius + centre
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    alpha = mask.astype(np.float32) / 255.0
    params = {
        "angle": look["tex_angle"],
        "period": max(3.0, look["tex_period"] * radius),
        "phase": float(rng.uniform(0, 2 * np.pi)),
    }
    p = _pattern(look["texture"], params, side, side, rng)[..., None]
    rgb = look["obj_lo"][None, None, :] * (1.0 - p) + look["obj_hi"][None, None, :] * p
    if look["shade"]:  # real style only: the sim sprite is left exactly as it was
        y, x = np.mgrid[0:side, 0:side].astype(np.float32)
        r2 = ((x - centre) ** 2 + (y - centre) ** 2) / np.float32(radius * radius)
        rgb = rgb * (1.0 - np.float32(look["shade"]) * np.minimum(r2, 1.0))[..., None]
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2), centre


def _look(style: str, rng: np.random.Generator) -> dict:
    """The appearance of one group: object shape, texture, colours, background recipe."""
    shape = str(rng.choice(_SHAPES))
    texture = str(rng.choice(list(_TEXTURES)))
    bright = bool(rng.random() < 0.5)  # bright object on a dark background, or the reverse
    palette = _BRIGHT_COLOURS if bright else _DARK_COLOURS
    colour = str(rng.choice(list(palette)))
    anchor = np.clip(np.array(palette[colour]) + rng.normal(0, 0.04, 3), 0, 1)
    if style == "sim":
        # Object and background sit on opposite sides of mid-grey with >= 0.3 luma between any
        # object pixel and any background pixel, so every moving edge fires the encoder.
        if bright:
            hi = rng.uniform(0.78, 0.9)
            lo = hi - rng.uniform(0.12, 0.18)
            bg_level = rng.uniform(0.17, 0.25)
        else:
            lo = rng.uniform(0.15, 0.22)
            hi = lo + rng.uniform(0.10, 0.16)
            bg_level = rng.uniform(0.72, 0.84)
        bg_kind = str(rng.choice(list(_SIM_BACKGROUNDS)))
        backdrop = f"{'dark' if bright else 'light'} {_SIM_BACKGROUNDS[bg_kind]} background"
    else:
        # A shaded object that stands out from a cluttered scene, as a real object in front of
        # a real background does: a bright object in a darker scene or a dark object in a
        # lighter one. The scene spans _REAL_BG_SPAN of luma around bg_level, the object's
        # mean is >= _REAL_MIN_OFFSET from bg_level, so the object is visible in a monochrome
        # spike stream against the background right behind it, yet the statistics differ
        # from sim's (textured scene, weaker and uneven local contrast, shading).
        offset = rng.uniform(_REAL_MIN_OFFSET, _REAL_MIN_OFFSET + 0.1)
        bg_level = rng.uniform(0.28, 0.36) if bright else rng.uniform(0.64, 0.72)
        mid = bg_level + offset if bright else bg_level - offset
        half = 0.5 * rng.uniform(0.12, 0.2)  # texture span, as wide as sim's
        lo, hi = mid - half, mid + half
        bg_kind = "natural"
        backdrop = str(rng.choice(_REAL_BACKDROPS))
    tint = np.clip(1.0 + rng.normal(0, 0.08, 3), 0.7, 1.3)
    return {
        "shape": shape,
        "texture": texture,
        "bright": bright,
        "colour": colour,
        "obj_lo": _with_luma(anchor, lo).astype(np.float32),
        "obj_hi": _with_luma(anchor, hi).astype(np.float32),
        "tex_angle": float(rng.uniform(0, np.pi)),
        "tex_period": float(rng.uniform(0.35, 0.6)),  # in object radii
        "bg_kind": bg_kind,
        "bg_level": float(bg_level),
        "bg_tint": (tint / _luma(tint)).astype(np.float32),
        "backdrop": backdrop,
        "bg_seed": int(rng.integers(2**31)),
        # real: luma falls off toward the rim (a lit 3-D body), by this fraction at the rim
        "shade": float(rng.uniform(0.1, 0.25)) if style == "real" else 0.0,
    }


def _background(look: dict, h: int, w: int) -> np.ndarray:
    """The static background (h, w, 3) float32 RGB of a group, in [0, 1] (read-only)."""
    tint = tuple(float(v) for v in look["bg_tint"])
    return _group_background(look["bg_kind"], look["bg_level"], tint, look["bg_seed"], h, w)


@functools.lru_cache(maxsize=32)  # every class of a group has the same background
def _group_background(kind: str, level: float, tint, seed: int, h: int, w: int) -> np.ndarray:
    bg = _draw_background(kind, level, np.array(tint, np.float32), seed, h, w)
    bg.flags.writeable = False
    return bg


def _draw_background(kind: str, level: float, tint, seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "natural":
        # 1/f-like, as natural images are (about equal power per octave): octaves of value
        # noise from 2 cells to pixel scale, each 0.8 as strong as the coarser one, plus soft
        # blobs that give object-like edges; stretched to luma level +- _REAL_BG_SPAN / 2.
        field = np.zeros((h, w), np.float32)
        for octave in range(int(np.log2(max(h, w) / 2))):
            field += 0.8**octave * _smooth_noise(rng, h, w, 2 ** (octave + 1))
        for _ in range(int(rng.integers(6, 15))):
            blob = np.zeros((h, w), np.float32)
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(3, w // 5 + 4)), int(rng.integers(3, h // 5 + 4)))
            cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            field += rng.uniform(-1.5, 1.5) * cv2.GaussianBlur(blob, (0, 0), 1.0)
        p2, p98 = np.percentile(field, [2, 98])
        lum = level + _REAL_BG_SPAN * ((field - p2) / max(float(p98 - p2), 1e-6) - 0.5)
        chroma = np.stack([_smooth_noise(rng, h, w, 3) for _ in range(3)], axis=2)
        rgb = lum[..., None] * tint * (1.0 + 0.12 * chroma)
        return np.clip(rgb, 0.0, 1.0).astype(np.float32)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    u = (x * np.cos(ang) + y * np.sin(ang)) / max(h, w)
    if kind == "plain":
        lum = np.full((h, w), level, np.float32)
    elif kind == "gradient":
        lum = level + 0.04 * (2.0 * (u - u.min()) / max(float(np.ptp(u)), 1e-6) - 1.0)
    elif kind == "noise":
        lum = level + 0.04 * _smooth_noise(rng, h, w, 6)
    else:  # stripes: wide and faint, so the background never competes with the object
        lum = level + 0.04 * np.sin(2 * np.pi * u * rng.uniform(3, 6))
    return np.clip(lum[..., None] * tint, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Motion: per-frame scale, angle, centre and visibility


def _trajectory(spec: ClassSpec, style: str, rng, h: int, w: int, radius: float, t: int) -> dict:
    """Per-frame arrays (t,) of ``scale`` (of full size), ``angle`` (rad, clockwise on screen),
    ``cx``, ``cy`` (pixels) and ``visible`` (0..1) for one clip of class ``spec``.

    The forward motion is drawn, then reversed in time for ``spec.reverse``: a reversed class
    is exactly its partner played backwards.
    """
    u = np.linspace(0.0, 1.0, t)
    lo, hi = spec.amount if style == "sim" else spec.real_amount
    amount = rng.uniform(lo, hi)
    reach = rng.uniform(*((0.5, 0.9) if style == "sim" else (0.2, 0.35)))
    margin = 2.0 + radius  # the object's centre stays this far from every edge
    room_x, room_y = w - 2 * margin, h - 2 * margin
    scale = np.ones(t)
    angle = np.full(t, rng.uniform(0, 2 * np.pi))
    visible = np.ones(t)
    cx = np.full(t, margin + rng.uniform(0, room_x))
    cy = np.full(t, margin + rng.uniform(0, room_y))
    if spec.motion == "scale":
        scale = amount ** (u - 1.0)  # geometric: the same relative growth every frame
    elif spec.motion == "rotate":
        angle = angle + np.deg2rad(amount) * u
    elif spec.motion == "translate":
        dx, dy = spec.direction
        travel_x, travel_y = amount * room_x * dx, amount * room_y * dy
        x0 = margin + rng.uniform(0, room_x - travel_x)
        y0 = margin + rng.uniform(0, room_y - travel_y)
        cx = x0 + travel_x * u if dx else cx
        cy = y0 + travel_y * u if dy else cy
    elif spec.motion == "blink":
        phase = rng.uniform(0, 1)
        visible = (np.mod(amount * u + phase, 1.0) < 0.5).astype(np.float64)
    elif spec.motion == "bounce":
        height = reach * room_y
        floor = margin + height + rng.uniform(0, room_y - height)
        cy = floor - height * np.abs(np.sin(np.pi * amount * u))
    elif spec.motion == "fade":
        visible = u.copy()
    elif spec.motion == "orbit":
        r = 0.5 * reach * min(room_x, room_y)
        cx0 = margin + r + rng.uniform(0, room_x - 2 * r)
        cy0 = margin + r + rng.uniform(0, room_y - 2 * r)
        phi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * amount * u
        cx, cy = cx0 + r * np.cos(phi), cy0 + r * np.sin(phi)  # y down: phi grows clockwise
    else:  # pragma: no cover - CLASS_SPECS is closed
        raise ValueError(spec.motion)
    traj = {"scale": scale, "angle": angle, "cx": cx, "cy": cy, "visible": visible}
    if spec.reverse:
        traj = {k: v[::-1].copy() for k, v in traj.items()}
    # Hand-held wobble, independent per frame (so it reverses into itself), kept inside the margin.
    jitter = np.clip(rng.normal(0, 0.3, (2, t)), -1.0, 1.0)
    traj["cx"] = traj["cx"] + jitter[0]
    traj["cy"] = traj["cy"] + jitter[1]
    traj["angle"] = traj["angle"] + np.deg2rad(rng.normal(0, 0.4, t))
    return traj


# ---------------------------------------------------------------------------------------------
# Rendering


def _check_args(size, frames: int, style: str, seed: int) -> tuple[int, int]:
    if style not in STYLES:
        raise SpikesimError(f"style {style!r} is unknown; use one of {', '.join(STYLES)}")
    if len(size) != 2 or not all(is_whole(v) for v in size):
        raise SpikesimError(f"size must be (height, width) in pixels, got {size!r}")
    h, w = (int(v) for v in size)
    check_size(h, w)
    if min(h, w) < _MIN_SIDE:
        raise SpikesimError(
            f"size {format_size(h, w)} is too small for synth; use at least {_MIN_SIDE} pixels "
            "on each side, e.g. 120x160"
        )
    if not is_whole(frames) or frames < _MIN_FRAMES:
        raise SpikesimError(f"frames must be an integer >= {_MIN_FRAMES}, got {frames!r}")
    if not is_whole(seed) or seed < 0:
        raise SpikesimError(f"seed must be a non-negative integer, got {seed!r}")
    return h, w


def _rng(seed: int, style: str, *keys: int) -> np.random.Generator:
    keys = (seed, STYLES.index(style), *keys)
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def render_clip(
    cls: str,
    index: int,
    *,
    size: tuple[int, int] = (120, 160),
    frames: int = 32,
    style: str = "sim",
    seed: int = 0,
) -> SynthClip:
    """Render clip ``index`` (0-based) of class ``cls`` in memory, exactly as ``synthesize``
    writes it before compression.

    Returns a ``SynthClip`` whose ``frames`` are uint8 (frames, H, W, 3) RGB. The clip's
    randomness comes from (seed, style, class, group, clip) only; its scene from (seed, style,
    group), shared by every class.
    """
    if cls not in SPEC_INDEX:
        raise SpikesimError(f"class {cls!r} is unknown; known: {', '.join(SPEC_INDEX)}")
    if not is_whole(index) or not 0 <= index < MAX_GROUPS * CLIPS_PER_GROUP:
        raise SpikesimError(f"clip index must be in 0..{MAX_GROUPS * CLIPS_PER_GROUP - 1}")
    h, w = _check_args(size, frames, style, seed)
    spec = CLASS_SPECS[SPEC_INDEX[cls]]
    group, clip = divmod(index, CLIPS_PER_GROUP)
    look = _look(style, _rng(seed, style, 0, group))
    rng = _rng(seed, style, 1, SPEC_INDEX[cls], group, clip)

    short = min(h, w)
    r_lo, r_hi = (0.16, 0.22) if spec.motion == "scale" else (0.12, 0.18)
    radius = rng.uniform(r_lo, r_hi) * short
    sprite, centre = _sprite(look, radius, rng)
    traj = _trajectory(spec, style, rng, h, w, radius, frames)
    brightness = rng.uniform(-0.02, 0.02)  # shifts object and background alike: same contrast
    bg = _background(look, h, w) + np.float32(brightness)
    caption, paraphrases = _caption(
        spec,
        look,
        rng,
        _rng(seed, style, 2, SPEC_INDEX[cls], group, clip),
        size=(radius / short - r_lo) / (r_hi - r_lo),
        start=(float(traj["cx"][0]) / w, float(traj["cy"][0]) / h),
    )

    sprite[..., :3] += np.float32(brightness) * sprite[..., 3:]  # premultiplied
    camera = _Camera(style, rng, h, w, frames)
    bg_u8 = _to_u8(bg)
    out = np.empty((frames, h, w, 3), np.uint8)
    # real: float frames kept for the sensor model, applied to the whole clip at the end
    sensor_in = np.empty((frames, h, w, 3), np.float32) if camera.real else None
    for i in range(frames):
        s, a = traj["scale"][i], traj["angle"][i]
        cx, cy = traj["cx"][i], traj["cy"][i]
        # Only the object's bounding box is warped and blended: the rest is the background.
        reach = radius * s + 2.0
        x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, w)
        y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, h)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        shift = np.array([cx - x0, cy - y0]) - rot @ np.array([centre, centre])
        layer = cv2.warpAffine(
            sprite, np.hstack([rot, shift[:, None]]), (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0),
        )  # fmt: skip
        vis = np.float32(traj["visible"][i])
        patch = bg[y0:y1, x0:x1] * (1.0 - vis * layer[..., 3:]) + vis * layer[..., :3]
        if sensor_in is None:
            out[i] = bg_u8
            out[i, y0:y1, x0:x1] = _to_u8(patch)
        else:
            sensor_in[i] = bg
            sensor_in[i, y0:y1, x0:x1] = patch
            cv2.GaussianBlur(sensor_in[i], (0, 0), 0.7, dst=sensor_in[i])  # lens blur
    if sensor_in is not None:
        out = _to_u8(camera(sensor_in))
    track = {
        "cx": traj["cx"],
        "cy": traj["cy"],
        "radius": radius * traj["scale"],
        "angle": np.rad2deg(traj["angle"]),
        "visible": traj["visible"],
    }
    return SynthClip(cls, group + 1, clip + 1, out, caption, track, paraphrases)


def _to_u8(img: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8, rounded to nearest (``img`` is left unchanged)."""
    scaled = img * np.float32(255.0)
    scaled += np.float32(0.5)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


class _Camera:
    """``style="real"``: the sensor of a real camera (vignetting, fixed-pattern gain, flicker,
    temporal noise) applied to a whole clip; ``style="sim"``: nothing."""

    def __init__(self, style: str, rng: np.random.Generator, h: int, w: int, t: int) -> None:
        self.real = style == "real"
        if not self.real:
            return
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((x - (w - 1) / 2) / (w / 2)) ** 2 + ((y - (h - 1) / 2) / (h / 2)) ** 2
        vignette = 1.0 - 0.06 * r2
        fixed_pattern = 1.0 + rng.normal(0, 0.02, (h, w)).astype(np.float32)
        # slow light-source / auto-exposure flicker plus a little random change per frame
        f, ph = rng.uniform(0.08, 0.2), rng.uniform(0, 2 * np.pi)
        flicker = 1.0 + 0.03 * np.sin(2 * np.pi * f * np.arange(t) + ph) + rng.normal(0, 0.01, t)
        self.gain = (vignette * fixed_pattern)[..., None]
        self.flicker = flicker.astype(np.float32)[:, None, None, None]
        # read noise, std 0.015: uniform rather than Gaussian (3x cheaper to draw; at a few
        # grey levels the shape does not matter), one value per pixel for all three channels
        noise = rng.random((t, h, w, 1), dtype=np.float32)
        noise -= np.float32(0.5)
        noise *= np.float32(0.015 * np.sqrt(12.0))
        self.noise = noise

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) float32 -> the same as the sensor records it (in place)."""
        clip *= self.gain
        clip *= self.flicker
        clip += self.noise
        return clip


def _caption(
    spec: ClassSpec,
    look: dict,
    rng: np.random.Generator,
    words: np.random.Generator,
    *,
    size: float,
    start: tuple[float, float],
) -> tuple[str, tuple[str, ...]]:
    """An instance-level sentence of what a luma-only sensor sees, and two paraphrases: the
    object's size, texture, shape and brightness against the background, where it starts,
    and the action (its speed and direction), e.g. "a small striped bright square in the
    upper left moves quickly to the right against a dark background". No colour: spikes
    carry none. ``size``: the object's radius as a fraction (0..1) of its class's range;
    ``start``: its first centre as fractions (x, y) of the frame. ``rng`` makes the two draws
    the renderer always made here (the camera's draws follow); ``words`` the rest."""
    verb = str(rng.choice(spec.phrases))
    with_background = bool(rng.random() < 0.5)
    size_word = ("small", "medium-sized", "large")[min(max(int(size * 3), 0), 2)]
    tone = "bright" if look["bright"] else "dark"
    texture = _TEXTURES[look["texture"]]
    shape = look["shape"]
    col = ("left", "centre", "right")[min(max(int(start[0] * 3), 0), 2)]
    row = ("upper", "middle", "lower")[min(max(int(start[1] * 3), 0), 2)]
    if (row, col) == ("middle", "centre"):
        where = "in the centre"
    elif col == "centre":
        where = f"in the {row} middle"
    else:
        where = f"in the {row} {col}"
    backdrop = (
        f"against a {'dark' if look['bright'] else 'light'} background"
        if look["bg_kind"] != "natural"
        else "in front of a cluttered scene"
    )
    caption = f"a {size_word} {texture} {tone} {shape} {where} {verb}"
    if with_background:
        caption += f" {backdrop}"
    others = [p for p in spec.phrases if p != verb] or [verb]
    v1, v2 = (str(x) for x in words.choice(others, size=2))
    paraphrases = (
        f"{where}, a {tone} {shape} with a {texture} texture {v1}",
        f"the {size_word} {shape}, {tone} {backdrop}, {v2}",
    )
    return caption, paraphrases
