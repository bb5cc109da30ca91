"""spklip: SPKLIP, a CLIP-style spike-video / text model (arXiv 2505.12656)."""

from __future__ import annotations

from ._version import __version__
from .errors import SpklipError
from .factory import create_model, get_model_config, list_models
from .loss import contrastive_loss
from .minilm import load_minilm, minilm_available
from .model import SPKLIP, SPKLIPConfig
from .tokenizer import SpikeTokenizer

__all__ = [
    "SPKLIP",
    "SPKLIPConfig",
    "SpikeTokenizer",
    "SpklipError",
    "__version__",
    "contrastive_loss",
    "create_model",
    "get_model_config",
    "list_models",
    "load_minilm",
    "minilm_available",
]
