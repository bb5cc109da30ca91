"""Sensor noise for the integrate-and-fire encoder: a frozen `NoiseModel` and named presets.

Intensities are in units of full white (1.0; one grey level is 1/255), per encoder step.
Two kinds of noise:

- per step, drawn afresh for every pixel and frame: additive Gaussian (`gaussian_std`) and
  photon shot noise (`photons_per_unit`: the intensity I becomes Poisson(I * s) / s);
- fixed pattern, drawn once per `Encoder` from its seed: a per-pixel dark current added every
  step (`dark_current`, log-normal across pixels with coefficient of variation
  `dark_current_spread`, so never negative) and a per-pixel threshold
  (threshold * (1 + `threshold_mismatch` * z), z ~ N(0, 1), floored at 0.1 * threshold).

Every value is 0 when that noise is off. How the draws are made so that they never depend on
chunking or threads is described in `spikesim.encode`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType

from .errors import SpikesimError

# Upper bounds that keep the model meaningful (and the threshold floor out of play).
_LIMITS = {
    "gaussian_std": 10.0,
    "photons_per_unit": 1e9,
    "dark_current": 1.0,
    "dark_current_spread": 3.0,
    "threshold_mismatch": 0.3,
}


@dataclass(frozen=True)
class NoiseModel:
    """Noise of a simulated spike-camera pixel array; all fields 0 means no noise.

    gaussian_std: std of an additive Gaussian per pixel per step, intensity units.
    photons_per_unit: mean photons per step at intensity 1.0; enables shot noise (0 = off).
        A spike then takes about threshold * photons_per_unit photons, so the relative
        jitter of inter-spike intervals is about 1 / sqrt(threshold * photons_per_unit).
    dark_current: mean per-step dark current over pixels, intensity units (1/255 = 1 grey level).
    dark_current_spread: pixel-to-pixel coefficient of variation of the dark current.
    threshold_mismatch: pixel-to-pixel relative std of the firing threshold.
    """

    gaussian_std: float = 0.0
    photons_per_unit: float = 0.0
    dark_current: float = 0.0
    dark_current_spread: float = 0.0
    threshold_mismatch: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpikesimError(f"noise {f.name} must be a number, got {value!r}")
            value = float(value)
            limit = _LIMITS[f.name]
            if not (math.isfinite(value) and 0.0 <= value <= limit):
                raise SpikesimError(f"noise {f.name} = {value} must be between 0 and {limit}")
            object.__setattr__(self, f.name, value)  # store ints as floats: same JSON either way

    @property
    def is_silent(self) -> bool:
        """True when no noise is switched on."""
        return not (self.has_step_noise or self.dark_current > 0.0 or self.threshold_mismatch > 0.0)

    @property
    def has_step_noise(self) -> bool:
        """True when something is drawn afresh every step (Gaussian or shot noise)."""
        return self.gaussian_std > 0.0 or self.photons_per_unit > 0.0

    def to_dict(self) -> dict[str, float]:
        """The fields as a JSON-able dict; ``NoiseModel(**d)`` rebuilds the model."""
        return asdict(self)


NOISE_PRESETS: Mapping[str, NoiseModel] = MappingProxyType(
    {
        "none": NoiseModel(),
        # Visible temporal noise: 0.05 is ~13 grey levels per step.
        "gaussian": NoiseModel(gaussian_std=0.05),
        # SCSim-like sensor: ~4.5 % threshold mismatch, dark current ~1 grey level with ~40 %
        # pixel-to-pixel spread; shot noise at 200 photons per step at full white (our choice:
        # ~3 % inter-spike-interval jitter at the default threshold).
        "sensor": NoiseModel(
            photons_per_unit=200.0,
            dark_current=1.0 / 255.0,
            dark_current_spread=0.4,
            threshold_mismatch=0.045,
        ),
    }
)


def resolve_noise(noise: str | NoiseModel | Mapping[str, float] | None) -> NoiseModel | None:
    """A preset name, a model, or a dict of its fields -> the model, or None for no noise.

    None, ``"none"`` and a model with every field 0 all give None.
    """
    if noise is None:
        return None
    if isinstance(noise, str):
        key = noise.strip().lower()
        if key not in NOISE_PRESETS:
            names = ", ".join(NOISE_PRESETS)
            raise SpikesimError(f"unknown noise preset {noise!r}; choose one of: {names}")
        model = NOISE_PRESETS[key]
    elif isinstance(noise, NoiseModel):
        model = noise
    elif isinstance(noise, Mapping):
        known = {f.name for f in fields(NoiseModel)}
        unknown = sorted(set(noise) - known)
        if unknown:
            raise SpikesimError(
                f"unknown noise field(s) {', '.join(map(str, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        model = NoiseModel(**noise)
    else:
        raise SpikesimError(
            f"noise must be None, a preset name or a NoiseModel, got {type(noise).__name__}"
        )
    return None if model.is_silent else model
