"""Evaluating SPKLIP: zero-shot and retrieval (``zeroshot``), the energy estimate (``energy``),
HSFE temporal dynamics (``dynamics``), the sim-to-real gap (``domain_gap``) and every figure
(``figures``). Imports the library, never ``spklip.training``."""
