"""asv: fastspec against the plain numpy loop a user would write (issue 8), same oracles.

``time_*`` of the plain loop, "sequential" and "block" in one run (compare them
as ratios), and ``track_engine_share``: the share of fastspec's wall-clock spent
outside the user's oracle (timed around the user's callable).
``python -m fastspec.bench plain`` prints the same comparison with medians and
ratios.
"""
import numpy as np

import fastspec
from fastspec.bench.plain import cases

CASES = ["diffusion ve(100) x5000", "diffusion ve(1000) x16", "ar mixture n=64 x3000",
         "ar mixture n=256 x16"]


class PlainLoop:
    params = (CASES, ["plain", "sequential", "block"])
    param_names = ["case", "sampler"]
    timeout = 300

    def setup(self, case, sampler):
        self.plain, self.model, self.kw = cases()[case]
        self.sampler = sampler
        self.run(0)                                     # compile and warm up

    def run(self, seed):
        if self.sampler == "plain":
            return self.plain(seed)
        return fastspec.sample(self.model, method=self.sampler, seed=seed, **self.kw)

    def time_draw(self, case, sampler):
        self.run(1)

    def track_engine_share(self, case, sampler):
        if sampler == "plain":
            return float("nan")
        return float(np.median([self.run(s).stats.engine_share for s in range(3)]))
    track_engine_share.unit = "fraction of wall-clock outside the oracle"


class EngineShareAtScale:
    """Block's engine share on the numba reference models, 1 to 1000 samples per call.

    (10,000 samples are in bench_slow.)
    """
    params = (["ar CurieWeiss n=1024", "diffusion PointCloud ve(1000)"], [1, 16, 1000])
    param_names = ["model", "n_samples"]
    timeout = 600

    def setup(self, model, n_samples):
        if model.startswith("ar"):
            self.model, self.kw = fastspec.models.CurieWeiss(n=1024, J=1.0), {}
        else:
            self.model = fastspec.models.PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
            self.kw = {"schedule": fastspec.schedules.ve(1000, 80.0, 0.002)}
        fastspec.sample(self.model, n_samples=n_samples, seed=99, **self.kw)   # compile

    def track_engine_share(self, model, n_samples):
        return float(np.median([fastspec.sample(self.model, n_samples=n_samples, seed=s,
                                                **self.kw).stats.engine_share
                                for s in range(3)]))
    track_engine_share.unit = "fraction of wall-clock outside the oracle"


class Memory:
    """Peak memory against the largest oracle answer, n = 512, q = 1000, one sample, block.

    Each value comes from a fresh interpreter (fastspec.bench.memory): asv's
    ``peakmem_`` would include the compilation of this benchmark's own setup.
    """
    params = ([0, 64, 16],)
    param_names = ["max_rows (0: none)"]
    timeout = 600

    def setup(self, max_rows):
        from fastspec.bench.memory import measure
        self.row = measure(max_rows or None)

    def track_peak_mib(self, max_rows):
        return self.row["peak_mib"]
    track_peak_mib.unit = "MiB"

    def track_peak_over_largest_answer(self, max_rows):
        return self.row["peak_over_largest_answer"]
    track_peak_over_largest_answer.unit = "x the largest answer"


class RoundMemory:
    """Peak RSS above the interpreter, diffusion with ``ve(1000)`` at default settings (issue 18).

    2000 samples at d = 64, each method in a fresh interpreter (fastspec.bench.memory).
    """
    params = (["block", "sequential"],)
    param_names = ["method"]
    timeout = 900

    def setup(self, method):
        from fastspec.bench.memory import measure_case
        self.row = measure_case(dict(kind="diffusion", d=64, steps=1000, n_samples=2000,
                                     method=method))

    def track_peak_above_interpreter_mib(self, method):
        return self.row["peak_above_mib"]
    track_peak_above_interpreter_mib.unit = "MiB"
