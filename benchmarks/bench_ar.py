"""asv benchmarks, AR pipeline: rounds, rows, time and memory by method x size."""
import numpy as np

import fastspec
from fastspec.bench import ar_models, engine_shares
from fastspec.models import CurieWeiss
from fastspec._rules import CONCRETE_METHODS

METHODS = CONCRETE_METHODS
# asv parameter -> the model of the same name in the scaling study
_STUDY_NAMES = {"curieweiss": "CurieWeiss(J=1)", "markov": "MarkovChain(e^2)",
                "mixture": "MixtureOfProducts(sqrt n)"}


def _model(name, n):
    return ar_models(n)[_STUDY_NAMES[name]]


class ARRounds:
    params = (["curieweiss", "markov"], METHODS, [64, 256])
    param_names = ["model", "method", "n"]
    timeout = 120

    def setup(self, name, method, n):
        self.model = _model(name, n)
        self.res = fastspec.sample(self.model, n_samples=4, method=method, seed=0)

    def track_rounds_per_sample(self, name, method, n):
        return float(np.mean(self.res.stats.rounds_per_sample))
    track_rounds_per_sample.unit = "rounds"

    def track_rows_per_sample(self, name, method, n):
        return float(np.mean(self.res.stats.rows_per_sample))
    track_rows_per_sample.unit = "rows"


class ARTime:
    params = (METHODS, [256])
    param_names = ["method", "n"]
    timeout = 120

    def setup(self, method, n):
        self.model = CurieWeiss(n=n, J=1.0)
        fastspec.sample(self.model, n_samples=2, method=method, seed=1)   # warm-up / compile

    def time_one_sample(self, method, n):
        fastspec.sample(self.model, n_samples=1, method=method, seed=0)

    def time_batch_16(self, method, n):
        fastspec.sample(self.model, n_samples=16, method=method, seed=0)

    def peakmem_batch_16(self, method, n):
        fastspec.sample(self.model, n_samples=16, method=method, seed=0)


class EngineShare:
    """Share of one sample's wall-clock spent outside the oracle (block, n = 1024)."""
    params = (["curieweiss", "markov", "mixture"],)
    param_names = ["model"]
    timeout = 120

    def setup(self, name):
        self.model = _model(name, 1024)
        fastspec.sample(self.model, n_samples=1, method="block", seed=1)

    def track_engine_share(self, name):
        return float(np.median(engine_shares(self.model, 5)))
    track_engine_share.unit = "fraction of wall-clock outside the oracle"
