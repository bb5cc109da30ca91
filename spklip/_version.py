"""The version of the spklip model library (its configs, checkpoints and tokenizer format)."""

__version__ = "0.2.0"
