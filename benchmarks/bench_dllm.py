"""asv benchmarks, the character Markov chain of the diffusion-LM study (issue 19)."""
import numpy as np

import fastspec
from fastspec.bench import dllm
from fastspec.models import MarkovChain
from fastspec._rules import SPECULATIVE_METHODS

from . import _PerSampleTracks


class CharacterChainRounds(_PerSampleTracks):
    """Rounds, rows and transition KL rate above the exact floor, 64 samples."""
    params = (SPECULATIVE_METHODS, [128, 1024])
    param_names = ["method", "n"]
    timeout = 600

    def setup(self, method, n):
        self.chain = MarkovChain.characters(n)
        self.res = fastspec.sample(self.chain, n_samples=64, method=method, seed=0)


class CharacterChainOracle:
    """One oracle call on 64 half-pinned contexts: every position, or 32 per row."""
    params = ([128, 1024],)
    param_names = ["n"]

    def setup(self, n):
        self.chain = MarkovChain.characters(n)
        rng = np.random.default_rng(0)
        x = self.chain.simulate(64, seed=1)
        self.ctx = np.where(rng.random(x.shape) < 0.5, x, -1)
        self.positions = np.argsort(rng.random(x.shape), axis=1)[:, :32]
        self.chain.marginals_dense(self.ctx[:2])                       # compile / load
        self.chain.marginals_at(self.ctx[:2], self.positions[:2])

    def time_marginals_dense(self, n):
        self.chain.marginals_dense(self.ctx)

    def time_marginals_at_32(self, n):
        self.chain.marginals_at(self.ctx, self.positions)


class LowConfidenceUnmasking:
    """LLaDA's low-confidence rule, 64 samples, n = 128, S = 16 steps."""
    timeout = 120

    def setup(self):
        self.chain = MarkovChain.characters(128)
        dllm.unmask(self.chain, 2, 2, seed=0, remasking="low_confidence")

    def time_unmask_low_confidence(self):
        dllm.unmask(self.chain, 16, 64, seed=0, remasking="low_confidence")
