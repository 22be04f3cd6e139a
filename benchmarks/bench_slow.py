"""Slow asv suite: sizes large enough to show scaling.

Skipped unless ``FASTSPEC_SLOW_BENCH=1``:
``FASTSPEC_SLOW_BENCH=1 asv run --python=same --quick -b bench_slow``.
"""
import os

import numpy as np

import fastspec
from fastspec.models import CurieWeiss, PointCloud
from fastspec._rules import SPECULATIVE_METHODS

SLOW = os.environ.get("FASTSPEC_SLOW_BENCH") == "1"


class SlowARRounds:
    params = (SPECULATIVE_METHODS, [1024, 4096])
    param_names = ["method", "n"]
    timeout = 1800

    def setup(self, method, n):
        if not SLOW:
            raise NotImplementedError("set FASTSPEC_SLOW_BENCH=1")
        self.res = fastspec.sample(CurieWeiss(n=n, J=1.0), n_samples=4, method=method, seed=0)

    def track_rounds_per_sample(self, method, n):
        return float(np.mean(self.res.stats.rounds_per_sample))
    track_rounds_per_sample.unit = "rounds"

    def track_rows_per_sample(self, method, n):
        return float(np.mean(self.res.stats.rows_per_sample))
    track_rows_per_sample.unit = "rows"


class SlowDiffusionRounds:
    params = (SPECULATIVE_METHODS, [10000])
    param_names = ["method", "n_steps"]
    timeout = 1800

    def setup(self, method, n_steps):
        if not SLOW:
            raise NotImplementedError("set FASTSPEC_SLOW_BENCH=1")
        m = PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
        self.res = fastspec.sample(m, schedule=fastspec.schedules.ve(n_steps, 80.0, 0.002),
                                   n_samples=4, method=method, seed=0)

    def track_rounds_per_sample(self, method, n_steps):
        return float(np.mean(self.res.stats.rounds_per_sample))
    track_rounds_per_sample.unit = "rounds"


class SlowNeuralWallClock:
    """Wall-clock with the neural oracles: NeuralAR n = 1024, NeuralDenoiser N = 1000.

    The same cases as ``python -m fastspec.bench wallclock``, which also records the
    oracle's cost per row alone and in a batch. "block-row-cost" is block with
    ``row_cost=0.2`` per sample sharing a call (0.2 for one sample, 3.2 for 16),
    about what that script fits for both oracles on the project machine.
    """
    params = (["ar", "diffusion"], ["sequential", "token", "block", "block-row-cost"])
    param_names = ["pipeline", "method"]
    timeout = 1800

    def setup(self, pipeline, method):
        if not SLOW:
            raise NotImplementedError("set FASTSPEC_SLOW_BENCH=1")
        from fastspec.models import NeuralAR, NeuralDenoiser
        if pipeline == "ar":
            self.model, self.kw = NeuralAR(1024, q=2, seed=0), {}
        else:
            self.model = NeuralDenoiser(16, seed=0)
            self.kw = {"schedule": fastspec.schedules.ve(1000, 80.0, 0.002)}
        if method == "block-row-cost":
            self.kw.update(method="block", row_cost=0.2)
        else:
            self.kw["method"] = method
        fastspec.sample(self.model, n_samples=16, seed=1, **self._kw(16))       # warm up

    def _kw(self, n_samples):
        kw = dict(self.kw)
        if "row_cost" in kw:                 # the call's fixed cost is shared n_samples ways
            kw["row_cost"] *= n_samples
        return kw

    def time_one_sample(self, pipeline, method):
        fastspec.sample(self.model, n_samples=1, seed=0, **self._kw(1))

    def time_batch_16(self, pipeline, method):
        fastspec.sample(self.model, n_samples=16, seed=0, **self._kw(16))


class SlowEngineShare10000:
    """Block's engine share at 10,000 samples per call on the numba reference models.

    The AR case sends at most 32,768 rows per oracle call (``max_rows``): without
    it one round's answer would hold 10,000 x ~33 rows x 1024 x 2 floats (5.4 GB).
    """
    params = (["ar CurieWeiss n=1024", "diffusion PointCloud ve(1000)"],)
    param_names = ["model"]
    timeout = 1800

    def setup(self, model):
        if not SLOW:
            raise NotImplementedError("set FASTSPEC_SLOW_BENCH=1")
        if model.startswith("ar"):
            self.model, self.kw = CurieWeiss(n=1024, J=1.0), {"max_rows": 32768}
        else:
            self.model = PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
            self.kw = {"schedule": fastspec.schedules.ve(1000, 80.0, 0.002)}
        fastspec.sample(self.model, n_samples=10_000, seed=99, **self.kw)   # compile

    def track_engine_share(self, model):
        return float(fastspec.sample(self.model, n_samples=10_000, seed=0,
                                     **self.kw).stats.engine_share)
    track_engine_share.unit = "fraction of wall-clock outside the oracle"
