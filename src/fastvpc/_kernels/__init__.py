"""Compiled data-plane kernels (Cython).  Private: use the public API in ``fastvpc``."""
