"""Valence models: loading, inference, training and evaluation.

Nothing in this package reads environment variables or touches CUDA at import time.
"""
