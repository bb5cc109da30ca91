"""Errors that a user can fix. Their message is one line that says what is wrong and what to do.

The CLI prints ``str(error)`` on stderr and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class SpikesimError(Exception):
    """Base class of every user-facing error raised by spikesim."""


class DatError(SpikesimError):
    """A ``.dat`` file or its sidecar is missing, truncated, or disagrees with what was asked."""


class VideoError(SpikesimError):
    """A video cannot be opened or decoded, or has no frames."""


class DatasetError(SpikesimError):
    """A dataset folder has no clips, a bad layout, or a path escaping its root."""


class AudioError(VideoError):
    """A file has no sound track, or its sound cannot be decoded or written."""


class EventsError(SpikesimError):
    """An event file or event array is missing, damaged, or not what was asked for."""
