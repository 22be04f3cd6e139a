"""Per-sample streams: numpy's PCG64, run inside the kernels, checked against numpy itself."""

import itertools

import numpy as np
import pytest
from numba import njit
from scipy import stats

import math

from fastspec import _seeds
from fastspec._seeds import SampleStreams, fill_normals, next_double, shuffle


@njit
def _uniforms(rng, s, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = next_double(rng, s)
    return out


@pytest.mark.parametrize("seed", [0, 12345, np.random.SeedSequence(7, spawn_key=(3,))])
def test_kernels_draw_what_numpy_pcg64_draws(seed):
    streams = SampleStreams(seed, 4, offset=3)
    for i in range(4):
        expect = streams.generator(i).random(1000)   # a copy of the stream, not advanced
        np.testing.assert_array_equal(_uniforms(streams.states, i, 1000), expect)
    # the generator continues where the kernels stopped
    again = SampleStreams(seed, 4, offset=3)
    _uniforms(again.states, 1, 10)
    np.testing.assert_array_equal(again.generator(1).random(5), expect_tail(seed, 1))


def expect_tail(seed, i):
    return SampleStreams(seed, 4, offset=3).generator(i).random(15)[10:]


def test_streams_are_a_function_of_seed_and_index():
    a = SampleStreams(99, 10)
    b = SampleStreams(99, 3, offset=7)
    np.testing.assert_array_equal(a.states[7:], b.states)
    assert len({tuple(row) for row in a.states}) == 10
    with pytest.raises(TypeError, match="seed must be"):
        SampleStreams(1.5, 2)
    with pytest.raises(ValueError, match="non-negative"):
        SampleStreams(-3, 2)


@njit
def _normals(rng, s, n):
    out = np.empty(n)
    fill_normals(rng, s, out)
    return out


def test_normals_are_numpys_and_shuffles_have_their_law():
    streams = SampleStreams(3, 2)
    # the very numbers numpy's Generator.standard_normal gives
    np.testing.assert_array_equal(_normals(streams.states, 1, 5000),
                                  SampleStreams(3, 2).generator(1).standard_normal(5000))
    z = _normals(streams.states, 0, 50_000)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    counts = {}
    values = np.arange(4)
    for _ in range(24_000):
        v = values.copy()
        shuffle(streams.states, 0, v, 4)
        counts[tuple(v)] = counts.get(tuple(v), 0) + 1
    assert set(counts) == set(itertools.permutations(range(4)))
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_ziggurat_tables_are_numpys():
    """numba's copy of numpy's tables equals numpy's construction (Marsaglia and Tsang's
    ziggurat with 256 strips of area v under exp(-x**2 / 2), r = 3.6541528853610088, as in
    numpy's ziggurat_constants.h), and a million normals are numpy's bit for bit.

    A wrong or missing entry would change diffusion samples for the same seed; a missing
    table makes ``import fastspec`` fail (fastspec._seeds), never a silent fallback.
    """
    r = 3.6541528853610088
    fr = math.exp(-r * r / 2)
    v = r * fr + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = np.zeros(256)
    x[255] = r
    for i in range(255, 1, -1):
        x[i - 1] = math.sqrt(-2 * math.log(v / x[i] + math.exp(-x[i] ** 2 / 2)))
    w = x / 2**52
    w[0] = v / fr / 2**52
    f = np.exp(-x**2 / 2)
    f[0] = 1.0
    k = np.zeros(256)
    k[0] = np.floor(2**52 * r * fr / v)
    k[1:] = np.floor(2**52 * np.r_[0.0, x[1:255]] / x[1:])
    assert _seeds._ZIG_R == r and _seeds._ZIG_INV_R == 1 / r
    np.testing.assert_allclose(_seeds._ZIG_W, w, rtol=1e-12, atol=0)
    np.testing.assert_allclose(_seeds._ZIG_F, f, rtol=1e-12, atol=0)
    assert np.asarray(_seeds._ZIG_K).dtype == np.uint64
    np.testing.assert_allclose(np.asarray(_seeds._ZIG_K, dtype=np.float64), k, rtol=1e-12, atol=0)
    # every strip, the base strip's tail and the wedges: the same numbers as numpy
    z = _normals(SampleStreams(11, 1).states, 0, 1_000_000)
    np.testing.assert_array_equal(z, SampleStreams(11, 1).generator(0).standard_normal(1_000_000))
    assert np.abs(z).max() > r                       # the tail was drawn


class _FourWords:
    def __init__(self, words):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        return self.words


np.random.bit_generator.ISeedSequence.register(_FourWords)


def test_sample_i_stream_is_the_documented_one():
    """help(fastspec.sample): sample i's PCG64 stream is seeded with the words 4i .. 4i + 3 of
    the root SeedSequence's generate_state, not by a SeedSequence.spawn child."""
    root = np.random.SeedSequence(2026)
    words = root.generate_state(4 * 6, np.uint64)
    streams = SampleStreams(2026, 6)
    for i in (0, 5):
        documented = np.random.Generator(np.random.PCG64(_FourWords(words[4 * i:4 * i + 4])))
        np.testing.assert_array_equal(_uniforms(streams.states, i, 20), documented.random(20))
    spawned = np.random.Generator(np.random.PCG64(root.spawn(6)[5])).random(20)
    assert not np.array_equal(_uniforms(SampleStreams(2026, 6).states, 5, 20), spawned)
