"""Errors in spklip that a user can fix: a bad model name, override, input size or tokenizer.

Like every ``SpikesimError``, the message is one line that says what is wrong and what to do;
the CLI prints it on stderr and exits non-zero.
"""

from __future__ import annotations

from spikesim import SpikesimError

__all__ = ["SpklipError"]


class SpklipError(SpikesimError):
    """A user-facing error of the spklip model library (config, input, tokenizer, checkpoint)."""
