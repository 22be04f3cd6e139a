"""asv: srs against block, rounds and rows per sample (issue 12)."""
import numpy as np

import fastspec
from fastspec.bench import ar_models

_NAMES = {"curieweiss": "CurieWeiss(J=1)", "markov": "MarkovChain(e^2)"}


class SrsAgainstBlock:
    params = (["curieweiss", "markov"], [1024, 4096], [1, 4], ["block", "srs"])
    param_names = ["model", "n", "samples_per_call", "method"]
    timeout = 600

    def setup(self, name, n, per_call, method):
        model = ar_models(n)[_NAMES[name]]
        self.stats = [fastspec.sample(model, n_samples=per_call, method=method, seed=s).stats
                      for s in range(3)]

    def track_rounds(self, name, n, per_call, method):
        return float(np.mean([st.rounds for st in self.stats]))
    track_rounds.unit = "rounds per call"

    def track_rows_per_n(self, name, n, per_call, method):
        return float(np.mean([np.mean(st.rows_per_sample) / n for st in self.stats]))
    track_rows_per_n.unit = "oracle rows per sample / n"


class SrsDiffusion:
    params = (["block", "srs"],)
    param_names = ["method"]
    timeout = 600

    def setup(self, method):
        model = fastspec.models.PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
        sched = fastspec.schedules.ve(1000, 80.0, 0.002)
        self.stats = [fastspec.sample(model, schedule=sched, n_samples=4, method=method,
                                      seed=s).stats for s in range(3)]

    def track_rounds(self, method):
        return float(np.mean([st.rounds for st in self.stats]))
    track_rounds.unit = "rounds per call"
