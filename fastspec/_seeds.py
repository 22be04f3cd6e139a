"""Per-sample randomness: one numpy PCG64 stream per sample, advanced inside numba kernels.

Sample ``i`` of a call draws every random number it uses (its order, drafts,
accept/reject uniforms, residual draws, Gaussian noise) from its own stream, in
a fixed order within the sample, one sample per thread. The stream is numpy's
PCG64 bit generator (``numpy.random.PCG64``, the generator behind
``numpy.random.default_rng``) seeded with the words ``4 i .. 4 i + 3`` of the
root seed sequence's ``generate_state`` (a hash of the seed that does not depend
on how many words are asked), so sample ``i`` is a function of ``(seed, i)``
alone: the same for any ``n_samples``, any ``NUMBA_NUM_THREADS``, any ``max_rows``
chunking, and on any Dask worker. ``SampleStreams.generator(i)`` rebuilds
sample ``i``'s stream as a numpy Generator, and ``tests/test_seeds.py`` checks
that the kernels draw exactly what numpy's own PCG64 draws.

Why the kernels run PCG64 themselves instead of calling numpy's C function
through ``bit_generator.ctypes``: that needs one Python bit-generator object
per sample, measured at 60 us each (0.3 s for 5000 samples, as long as the
whole plain ancestral loop of the benchmarks takes), while a state array of
four 64-bit words per sample is seeded in one vectorised call (1 us per sample).
The step and output functions below are PCG64's (128-bit LCG with numpy's
multiplier, XSL-RR output, 53-bit doubles), written with 64-bit halves since
numba has no 128-bit integers. Normal deviates follow numpy's ziggurat
algorithm with numpy's tables (as numba ships them), so they are the numbers
``Generator.standard_normal`` would give on the same stream: 3.5x faster than
the polar method measured here, and checked against numpy in the tests.
"""

import math

import numpy as np

from ._checks import is_int
from ._jit import kernel

try:   # numpy's ziggurat tables for normal deviates, as numba ships them
    from numba.np.random._constants import (fi_double as _ZIG_F, ki_double as _ZIG_K,
                                            wi_double as _ZIG_W, ziggurat_nor_inv_r as _ZIG_INV_R,
                                            ziggurat_nor_r as _ZIG_R)
except ImportError as exc:
    # No silent fallback: another method for normals would change every diffusion sample of a
    # seed. tests/test_seeds.py checks these tables against numpy's construction.
    raise ImportError(
        "fastspec needs numpy's ziggurat tables for normal deviates, which it reads from "
        "numba.np.random._constants; this numba does not have them. Install a numba release "
        "fastspec supports (pyproject.toml) or report the numba version") from exc


def as_seed_sequence(seed):
    """Turn ``seed`` (None, int, SeedSequence or Generator) into the root SeedSequence.

    A SeedSequence is used as given (not advanced), as ``numpy.random.default_rng``
    does: the same SeedSequence gives the same samples; the samples' words come
    from its ``generate_state``, never from its spawned children. A Generator is consumed
    once (two 64-bit draws), so repeated calls with one Generator give different,
    reproducible results.

    Raises
    ------
    TypeError
        If ``seed`` is of another type.
    ValueError
        If ``seed`` is a negative int.
    """
    if seed is None or is_int(seed):
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


_U32 = np.uint64(0xFFFFFFFF)
_MULT_HI = np.uint64(2549297995355413924)     # PCG's default 128-bit multiplier, high word
_MULT_LO = np.uint64(4865540595714422341)     # and low word (numpy's PCG64)
_S32 = np.uint64(32)
_S58 = np.uint64(58)
_S63 = np.uint64(63)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TO_DOUBLE = 1.0 / 9007199254740992.0         # 2**-53


class SampleStreams:
    """PCG64 states of samples ``offset .. offset + n_samples - 1`` of ``seed``.

    Attributes
    ----------
    states : ndarray of uint64, shape (n_samples, 4)
        Per sample: the 128-bit LCG state (high, low word) and increment
        (high, low word), advanced in place by the kernels.
    """

    def __init__(self, seed, n_samples, offset=0):
        self.root = as_seed_sequence(seed)
        words = self.root.generate_state(4 * (offset + n_samples), np.uint64)
        self.seed_words = words[4 * offset:].reshape(n_samples, 4)
        self.states = np.empty((n_samples, 4), dtype=np.uint64)
        seed_states(self.seed_words, self.states)

    def __len__(self):
        return self.states.shape[0]

    def generator(self, i):
        """A ``numpy.random.Generator`` continuing sample ``i``'s stream where the kernels left it.

        The kernels do not see what it draws afterwards; it is for inspection and
        tests (its draws are the ones the kernels would make next).
        """
        bit_generator = np.random.PCG64(_Words(self.seed_words[i]))
        hi, lo, inc_hi, inc_lo = (int(v) for v in self.states[i])
        bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": (hi << 64) | lo, "inc": (inc_hi << 64) | inc_lo},
                               "has_uint32": 0, "uinteger": 0}
        return np.random.Generator(bit_generator)


class _Words:
    """A seed sequence that hands PCG64 the four words it is given."""

    def __init__(self, words):
        self.words = np.array(words, dtype=np.uint64)

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError("PCG64 asks for 4 uint64 words")
        return self.words.copy()

    def spawn(self, n_children):
        raise NotImplementedError("a sample's stream does not spawn children")


np.random.bit_generator.ISeedSequence.register(_Words)


@kernel(inline="always")
def _mulhi(a, b):
    """High 64 bits of the 128-bit product of two uint64."""
    a_lo, a_hi = a & _U32, a >> _S32
    b_lo, b_hi = b & _U32, b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    carry = ((p0 >> _S32) + (p1 & _U32) + (p2 & _U32)) >> _S32
    return a_hi * b_hi + (p1 >> _S32) + (p2 >> _S32) + carry


@kernel(inline="always")
def _step(rng, s):
    """state = state * MULT + inc (mod 2**128), in place."""
    hi, lo = rng[s, 0], rng[s, 1]
    prod_hi = _mulhi(lo, _MULT_LO) + hi * _MULT_LO + lo * _MULT_HI
    prod_lo = lo * _MULT_LO
    new_lo = prod_lo + rng[s, 3]
    carry = _ONE if new_lo < prod_lo else np.uint64(0)
    rng[s, 0] = prod_hi + rng[s, 2] + carry
    rng[s, 1] = new_lo


@kernel(inline="always")
def next_uint64(rng, s):
    """Step sample ``s``'s PCG64 state and return its XSL-RR output."""
    _step(rng, s)
    hi, lo = rng[s, 0], rng[s, 1]
    x = hi ^ lo
    r = hi >> _S58
    return (x >> r) | (x << ((np.uint64(64) - r) & _S63))


@kernel(inline="always")
def next_double(rng, s):
    """A uniform on [0, 1) from sample ``s``'s stream (numpy's ``Generator.random``)."""
    return np.float64(next_uint64(rng, s) >> _S11) * _TO_DOUBLE


@kernel
def seed_states(words, rng):
    """PCG64 seeding (numpy's ``pcg64_set_seed``): state and increment from 4 words each."""
    for s in range(words.shape[0]):
        seq_hi, seq_lo = words[s, 2], words[s, 3]
        rng[s, 0] = np.uint64(0)
        rng[s, 1] = np.uint64(0)
        rng[s, 2] = (seq_hi << _ONE) | (seq_lo >> _S63)
        rng[s, 3] = (seq_lo << _ONE) | _ONE
        _step(rng, s)
        lo = rng[s, 1] + words[s, 1]
        carry = _ONE if lo < rng[s, 1] else np.uint64(0)
        rng[s, 0] = rng[s, 0] + words[s, 0] + carry
        rng[s, 1] = lo
        _step(rng, s)


_U8 = np.uint64(0xFF)
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_S8 = np.uint64(8)


@kernel(inline="always")
def next_normal(rng, s):
    """A standard normal from sample ``s``'s stream: numpy's ziggurat (``Generator.standard_normal``)."""
    while True:
        r = next_uint64(rng, s)
        idx = r & _U8
        r = r >> _S8
        rabs = (r >> _ONE) & _MANTISSA
        x = np.float64(rabs) * _ZIG_W[idx]
        if r & _ONE:
            x = -x
        if rabs < _ZIG_K[idx]:
            return x
        if idx == 0:
            while True:
                xx = -_ZIG_INV_R * math.log1p(-next_double(rng, s))
                yy = -math.log1p(-next_double(rng, s))
                if yy + yy > xx * xx:
                    if (rabs >> _S8) & _ONE:
                        return -(_ZIG_R + xx)
                    return _ZIG_R + xx
        elif ((_ZIG_F[idx - 1] - _ZIG_F[idx]) * next_double(rng, s) + _ZIG_F[idx]
              < math.exp(-0.5 * x * x)):
            return x


@kernel
def fill_normals(rng, s, out):
    """Fill the 1-D array ``out`` with standard normals from sample ``s``'s stream.

    numpy's ziggurat: the same numbers as ``Generator.standard_normal``.
    """
    for i in range(out.shape[0]):
        out[i] = next_normal(rng, s)


@kernel
def shuffle(rng, s, values, n):
    """Shuffle ``values[:n]`` in place (Fisher-Yates, one uniform per swap)."""
    for i in range(n - 1, 0, -1):
        j = int(next_double(rng, s) * (i + 1))
        if j > i:  # guards u * (i + 1) rounding up to i + 1
            j = i
        tmp = values[i]
        values[i] = values[j]
        values[j] = tmp
