"""The version of the spikesim distribution: one place, read by pyproject and both packages."""

__version__ = "0.2.0"
