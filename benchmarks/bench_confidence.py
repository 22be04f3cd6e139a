"""asv benchmarks, ``order="confidence"`` (issue 20 part 2): rounds and rows per sample."""

import fastspec
from fastspec.models import MarkovChain

from . import _PerSampleTracks


class ConfidenceRounds(_PerSampleTracks):
    """The character chain in confidence order, 16 samples: rounds (goal: n / 3 at n = 128)."""
    params = (["sequential", "token", "block"], [32, 128])
    param_names = ["method", "n"]
    timeout = 300

    def setup(self, method, n):
        chain = MarkovChain.characters(n)
        self.res = fastspec.sample(chain, n_samples=16, method=method, order="confidence",
                                   seed=0)


class ConfidenceTime:
    """Wall-clock of 16 samples of the chain at n = 128 in confidence order."""
    params = (["sequential", "block"],)
    param_names = ["method"]
    timeout = 300

    def setup(self, method):
        self.chain = MarkovChain.characters(128)
        fastspec.sample(self.chain, n_samples=2, method=method, order="confidence", seed=1)

    def time_batch_16(self, method):
        fastspec.sample(self.chain, n_samples=16, method=method, order="confidence", seed=0)
