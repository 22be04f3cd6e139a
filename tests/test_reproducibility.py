"""Sample i is a function of (seed, i) alone, in both pipelines and every method.

Same samples for any n_samples, any max_rows chunking, serial or parallel
kernels, any NUMBA_NUM_THREADS, and whether the oracle returns fresh arrays or
overwrites one buffer and returns a view of it (answers are borrowed).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastspec
from fastspec import schedules
from fastspec.api import _sample
from fastspec._rules import CONCRETE_METHODS
from fastspec.models import MarkovChain, PointCloud

METHODS = CONCRETE_METHODS
CHAIN = MarkovChain([[3.0, 1.0, 0.5], [1.0, 3.0, 1.0], [0.5, 1.0, 3.0]], n=30)
CLOUD = PointCloud(np.random.default_rng(0).standard_normal((8, 4)) * 2.0)
SCHED = schedules.ve(60, 20.0, 0.02)


def _run(model, method, n_samples, **kw):
    extra = {} if isinstance(model, fastspec.ARModel) else {"schedule": SCHED}
    return _sample(model, method=method, n_samples=n_samples, seed=77, **extra, **kw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", [CHAIN, CLOUD], ids=["ar", "diffusion"])
def test_sample_i_does_not_depend_on_the_batch_or_the_chunking(model, method):
    ref = _run(model, method, 5).samples
    np.testing.assert_array_equal(_run(model, method, 1).samples[0], ref[0])
    np.testing.assert_array_equal(_run(model, method, 3, _sample_offset=2).samples, ref[2:])
    chunked = _run(model, method, 5, max_rows=3)
    np.testing.assert_array_equal(chunked.samples, ref)
    assert chunked.stats.oracle_calls > chunked.stats.rounds


@pytest.mark.parametrize("method", ["sequential", "token", "block"])
@pytest.mark.parametrize("model", [CHAIN, CLOUD], ids=["ar", "diffusion"])
def test_serial_and_parallel_kernels_agree(model, method):
    serial = _run(model, method, 7, _parallel=False)
    parallel = _run(model, method, 7, _parallel=True)
    np.testing.assert_array_equal(serial.samples, parallel.samples)
    assert serial.stats.rounds == parallel.stats.rounds


def test_row_cost_sizing_does_not_depend_on_the_batch():
    one = fastspec.sample(CHAIN, n_samples=1, seed=5, row_cost=0.3)
    many = fastspec.sample(CHAIN, n_samples=9, seed=5, row_cost=0.3)
    np.testing.assert_array_equal(one.samples[0], many.samples[0])


class _BufferOracle:
    """Writes every answer into one buffer and returns a view of it (GPU / ONNX style)."""

    def __init__(self, fn):
        self.fn = fn
        self.buffer = None

    def __call__(self, *args):
        out = self.fn(*args)
        if self.buffer is None or self.buffer.size < out.size:
            self.buffer = np.empty(out.size * 2)
        view = self.buffer[:out.size].reshape(out.shape)
        view[...] = out
        return view


@pytest.mark.parametrize("method", METHODS)
def test_borrowed_answers_give_the_same_samples(method):
    ar = fastspec.ARModel(_BufferOracle(CHAIN.marginals), n=CHAIN.n, q=CHAIN.q)
    np.testing.assert_array_equal(_run(ar, method, 6).samples, _run(CHAIN, method, 6).samples)
    dm = fastspec.DiffusionModel(_BufferOracle(CLOUD.denoise), dim=CLOUD.dim)
    np.testing.assert_array_equal(_run(dm, method, 6).samples, _run(CLOUD, method, 6).samples)


_THREAD_SCRIPT = """
import hashlib, numpy as np, fastspec, numba
from fastspec.api import _sample
from fastspec.models import CurieWeiss, PointCloud
from fastspec._rules import CONCRETE_METHODS
out = []
ar = CurieWeiss(n=300, J=1.0)
dm = PointCloud(np.random.default_rng(0).standard_normal((16, 64)))
sched = fastspec.schedules.ve(300, 80.0, 0.002)
for method in CONCRETE_METHODS:
    out.append(_sample(ar, n_samples=3, method=method, seed=123, _parallel=True).samples)
    out.append(_sample(dm, schedule=sched, n_samples=3, method=method, seed=5,
                       _parallel=True).samples)
print(numba.get_num_threads(), hashlib.sha256(b"".join(o.tobytes() for o in out)).hexdigest())
"""


def test_samples_do_not_depend_on_thread_count():
    digests = {}
    procs = {threads: subprocess.Popen([sys.executable, "-c", _THREAD_SCRIPT],   # side by side
                                       env=dict(os.environ, NUMBA_NUM_THREADS=threads),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for threads in ("1", "2")}
    for threads, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-2000:]
        out = stdout.split()
        assert out[0] == threads
        digests[threads] = out[1]
    assert digests["1"] == digests["2"]


@pytest.mark.parametrize("seed_kind", ["int", "seedsequence", "generator"])
def test_same_seed_same_samples(seed_kind):
    make = {"int": lambda: 5, "seedsequence": lambda: np.random.SeedSequence(5),
            "generator": lambda: np.random.default_rng(5)}[seed_kind]
    a = fastspec.sample(CHAIN, n_samples=3, method="token", seed=make())
    b = fastspec.sample(CHAIN, n_samples=3, method="token", seed=make())
    assert np.array_equal(a.samples, b.samples) and np.array_equal(a.orders, b.orders)
    c = fastspec.sample(CHAIN, n_samples=3, method="token", seed=6)
    assert not np.array_equal(a.samples, c.samples)
    ss = np.random.SeedSequence(9)       # used as given, not advanced
    assert np.array_equal(fastspec.sample(CHAIN, n_samples=2, seed=ss).samples,
                          fastspec.sample(CHAIN, n_samples=2, seed=ss).samples)
