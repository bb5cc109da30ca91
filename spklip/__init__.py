"""spklip: SPKLIP, a CLIP-style spike-video / text model (arXiv 2505.12656)."""

from __future__ import annotations

__all__: list[str] = []
