"""Per-sample randomness: one numpy PCG64 stream per sample, drawn inside numba kernels.

Sample ``i`` of a call draws every random number it uses (its order, drafts,
accept/reject uniforms, residual draws, Gaussian noise) from its own
``numpy.random.PCG64`` bit generator, seeded with the ``i``-th child of the
call's root ``SeedSequence`` (``spawn_key + (i,)``, exactly the child that
``root.spawn`` creates first). Kernels read these streams through numpy's
documented ctypes interface of bit generators (``bit_generator.ctypes``: a C
function ``next_double(state)`` and the address of each state), one sample per
thread, in a fixed order within the sample. So sample ``i`` is a function of
``(seed, i)`` alone: the same for any ``n_samples``, any ``NUMBA_NUM_THREADS``,
any ``max_rows`` chunking, and whether it runs in a batch of 1 or 10,000 or on a
Dask worker.

The ``next_double`` function is passed to kernels as an argument (a numba
first-class function), not read as a global, so the kernels stay cacheable.
Normal deviates use Marsaglia's polar method on those uniforms, as numpy's own
example of numba with bit generators does.
"""

import math
import numbers

import numpy as np

from ._jit import kernel


def as_seed_sequence(seed):
    """Turn ``seed`` (None, int, SeedSequence or Generator) into the root SeedSequence.

    A SeedSequence is used as given (not advanced), as ``numpy.random.default_rng``
    does: the same SeedSequence gives the same samples. A Generator is consumed
    once (two 64-bit draws), so repeated calls with one Generator give different,
    reproducible results.

    Raises
    ------
    TypeError
        If ``seed`` is of another type.
    ValueError
        If ``seed`` is a negative int.
    """
    if seed is None or isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=2, dtype=np.uint64).tolist())
    raise TypeError(
        "seed must be None, a non-negative int, a numpy.random.SeedSequence or a "
        f"numpy.random.Generator, got {type(seed).__name__}")


def child_seed(root, i):
    """The ``i``-th child of ``root``, as ``root.spawn`` would create it first."""
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (int(i),),
                                  pool_size=root.pool_size)


class SampleStreams:
    """The random streams of samples ``offset .. offset + n_samples - 1`` of ``seed``.

    Attributes
    ----------
    next_double : ctypes function
        ``next_double(state_address) -> float`` of numpy's PCG64, passed to kernels.
    addresses : ndarray of uint64, shape (n_samples,)
        Address of each sample's PCG64 state (kept alive by this object).
    """

    def __init__(self, seed, n_samples, offset=0):
        root = as_seed_sequence(seed)
        self.root = root
        self.bit_generators = [np.random.PCG64(child_seed(root, offset + i))
                               for i in range(n_samples)]
        self.addresses = np.array([bg.ctypes.state_address for bg in self.bit_generators],
                                  dtype=np.uint64)
        self.next_double = self.bit_generators[0].ctypes.next_double

    def __len__(self):
        return len(self.bit_generators)

    def generator(self, i):
        """A ``numpy.random.Generator`` on sample ``i``'s stream (same state, shared)."""
        return np.random.Generator(self.bit_generators[i])


@kernel(inline="always")
def uniform(next_double, state):
    """A uniform on [0, 1) from the stream at ``state``."""
    return next_double(state)


@kernel
def fill_normals(next_double, state, out):
    """Fill the 1-D array ``out`` with standard normals (Marsaglia's polar method)."""
    n = out.shape[0]
    i = 0
    while i < n:
        x1 = 2.0 * next_double(state) - 1.0
        x2 = 2.0 * next_double(state) - 1.0
        r2 = x1 * x1 + x2 * x2
        if r2 >= 1.0 or r2 == 0.0:
            continue
        f = math.sqrt(-2.0 * math.log(r2) / r2)
        out[i] = f * x1
        if i + 1 < n:
            out[i + 1] = f * x2
        i += 2


@kernel
def shuffle(next_double, state, values, n):
    """Shuffle ``values[:n]`` in place (Fisher-Yates, one uniform per swap)."""
    for i in range(n - 1, 0, -1):
        j = int(next_double(state) * (i + 1))
        if j > i:  # guards u * (i + 1) rounding up to i + 1
            j = i
        tmp = values[i]
        values[i] = values[j]
        values[j] = tmp
