"""asv benchmarks, diffusion pipeline: rounds, rows, time and memory by method x steps."""
import numpy as np

import fastspec
from fastspec.models import PointCloud
from fastspec._rules import CONCRETE_METHODS

METHODS = CONCRETE_METHODS


def _model(d=16):
    return PointCloud(np.random.default_rng(0).normal(size=(16, d)))


class DiffusionRounds:
    params = (METHODS, [100, 1000])
    param_names = ["method", "n_steps"]
    timeout = 120

    def setup(self, method, n_steps):
        self.res = fastspec.sample(_model(), schedule=fastspec.schedules.ve(n_steps, 80.0, 0.002),
                                   n_samples=4, method=method, seed=0)

    def track_rounds_per_sample(self, method, n_steps):
        return float(np.mean(self.res.stats.rounds_per_sample))
    track_rounds_per_sample.unit = "rounds"

    def track_rows_per_sample(self, method, n_steps):
        return float(np.mean(self.res.stats.rows_per_sample))
    track_rows_per_sample.unit = "rows"


class DiffusionTime:
    params = (METHODS, [1000])
    param_names = ["method", "n_steps"]
    timeout = 120

    def setup(self, method, n_steps):
        self.model = _model()
        self.sched = fastspec.schedules.ve(n_steps, 80.0, 0.002)
        fastspec.sample(self.model, schedule=self.sched, n_samples=2, method=method, seed=1)

    def time_one_sample(self, method, n_steps):
        fastspec.sample(self.model, schedule=self.sched, n_samples=1, method=method, seed=0)

    def time_batch_16(self, method, n_steps):
        fastspec.sample(self.model, schedule=self.sched, n_samples=16, method=method, seed=0)

    def peakmem_batch_16(self, method, n_steps):
        fastspec.sample(self.model, schedule=self.sched, n_samples=16, method=method, seed=0)
