"""Numba kernels. Private: each sits behind a validating public function in ``spikesim``.

Kernels import only numpy and numba; each has a plain NumPy reference in ``tests/``.
"""
