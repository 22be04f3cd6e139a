"""Speculative rejection sampling for diffusion chains (see :mod:`fastspec._srs`).

A sample's block is ``k`` steps drafted with the denoiser frozen (``nu_B``); its
proposals are block-method runs of the same ``k`` steps from the sample's state,
started from the denoiser there (fresh), each summing ``log mu_B(X) - log nu_B(X)``
of its path against the sample's frozen draft as it goes
(:func:`fastspec.diffusion.kernels.reference_term`).
"""

import numpy as np

from .._jit import kernel, use_parallel
from .._rules import SRS
from .._seeds import fill_normals
from .._srs import SrsSampler as _Srs
from .sampler import DiffusionSampler


@kernel
def _last_step(rng, s, y, d_draft, a, b, c):
    """``y <- a y + b D + c xi`` for sample ``s`` (its final step, from a fresh D)."""
    noise = np.empty(y.shape[1])
    fill_normals(rng, s, noise)
    for t in range(y.shape[1]):
        y[s, t] = a * y[s, t] + b * d_draft[s, t] + c * noise[t]


class SrsSampler(_Srs):
    """All samples of one diffusion srs call."""

    def __init__(self, model, streams, *, schedule, block_size, row_cost, parallel=None):
        super().__init__(DiffusionSampler(model, streams, method="srs", schedule=schedule,
                                          block_size=block_size, row_cost=None, rule=SRS,
                                          parallel=parallel))

    @staticmethod
    def _slice_answer(answer, lo, hi):
        return answer[lo:hi]

    def _init(self, parents, r, slot):
        """The denoiser at each rejected sample's state: its row 0, or its fresh draft."""
        return r.cand_D[slot].copy()

    @staticmethod
    def _init_rows(init, p):
        return init[p:p + 1]

    @staticmethod
    def _stack_init(parts):
        return np.concatenate(parts)

    def _jobs(self, parents, par, k, init, rng):
        outer = self.outer
        start = np.repeat(outer.progress_j[parents], par)
        return DiffusionSampler.for_jobs(
            outer.model, rng, outer.schedule, y=np.repeat(outer.y[parents], par, axis=0),
            start=start, stop=start + np.repeat(k, par), d_draft=np.repeat(init, par, axis=0),
            ref_D=np.repeat(outer.d_draft[parents], par, axis=0),
            parallel=use_parallel(int(k.sum() * par.mean()) * outer.model.dim))

    def _log_ratio(self, wave, jobs_idx):
        return wave.jobs.log_ref[jobs_idx]

    def _accept(self, wave, p, j):
        outer, jobs = self.outer, wave.jobs
        s = wave.parents[p]
        outer.y[s] = jobs.y[j]
        outer.d_draft[s] = jobs.d_draft[j]
        outer.fresh[s] = jobs.fresh[j]
        outer.progress_j[s] = jobs.stop[j]
        step = outer.progress_j[s]
        if outer.fresh[s] and outer.stop[s] - step == 1:   # the last step needs no round
            _last_step(outer.rng, s, outer.y, outer.d_draft, outer.a[step], outer.b[step],
                       outer.c[step])
            outer.progress_j[s] = outer.stop[s]
