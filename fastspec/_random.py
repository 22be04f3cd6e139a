"""Seeds: one independent generator per sample, so batching never changes a draw."""

import numbers

import numpy as np


def as_seed_sequence(seed):
    """Turn ``seed`` (None, int, SeedSequence or Generator) into a SeedSequence.

    A Generator is consumed once (one 128-bit draw) so that repeated calls with
    the same Generator give different, but reproducible, results.
    """
    if seed is None or isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return np.random.SeedSequence(seed)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=2, dtype=np.uint64).tolist())
    raise ValueError(
        "seed must be None, a non-negative int, a numpy.random.SeedSequence or a "
        f"numpy.random.Generator, got {type(seed).__name__}"
    )


def sample_generators(seed, n_samples):
    """One ``numpy.random.Generator`` per sample, spawned from ``seed``.

    Each sample draws all its randomness from its own stream, so sample ``i``
    is the same whatever the batch it is drawn in is scheduled like, and
    whatever ``NUMBA_NUM_THREADS`` is (kernels receive pre-drawn uniforms).
    """
    children = as_seed_sequence(seed).spawn(n_samples)
    return [np.random.Generator(np.random.PCG64(c)) for c in children]
