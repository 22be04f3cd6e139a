"""Speculative rejection sampling for AR models (see :mod:`fastspec._srs`).

A sample's block ``B`` is drafted from its current marginals ``nu_B``; its
proposals are block-method samples of the positions of ``B`` given its context,
started from the marginals at that context (fresh) and returning
``log mu_B(X)``; ``log nu_B(X)`` is read off the sample's draft.
"""

import math

import numpy as np

from .._errors import OracleError
from .._jit import use_parallel
from .._rules import SRS
from .._srs import SrsSampler as _Srs, draw_uniforms
from .kernels import draw_categorical
from .sampler import ARSampler


class SrsSampler(_Srs):
    """All samples of one AR srs call."""

    def __init__(self, model, streams, *, block_size, row_cost, order, given, parallel=None):
        super().__init__(ARSampler(model, streams, method="srs", block_size=block_size,
                                   row_cost=None, order=order, given=given, rule=SRS,
                                   parallel=parallel))

    @staticmethod
    def _slice_answer(answer, lo, hi):
        probs, tol = answer
        return probs[lo:hi], tol

    def _init(self, parents, r, slot):
        """Marginals at each rejected sample's context, on its block (k_max, q) each."""
        outer = self.outer
        k = r.k[slot]
        init = np.zeros((parents.size, int(k.max()), outer.model.q))
        for p, (a, s) in enumerate(zip(slot, parents)):
            if r.first_row[a]:                       # fresh: the draft is exactly that
                init[p, :k[p]] = outer.draft[s, (r.t[a] + np.arange(k[p])) % outer.draft.shape[1]]
            else:                                    # else row 0's window, checked here
                init[p, :k[p]] = self._checked(r.cand_win[a, :k[p]], s)
        return init

    @staticmethod
    def _init_rows(init, p):
        return init[p:p + 1]

    @staticmethod
    def _stack_init(parts):
        width = max(part.shape[1] for part in parts)
        out = np.zeros((sum(part.shape[0] for part in parts), width, parts[0].shape[2]))
        row = 0
        for part in parts:
            out[row:row + part.shape[0], :part.shape[1]] = part
            row += part.shape[0]
        return out

    def _checked(self, window, s):
        sums = window.sum(axis=1)
        bad = (~np.isfinite(window).all(axis=1) | (window < 0).any(axis=1)
               | (np.abs(sums - 1.0) > self.outer._tol))
        if bad.any():
            raise OracleError(f"{self.outer._where}: marginals returned at the context of sample "
                              f"{s} are not a distribution at a position of its block (sums "
                              f"{sums[bad][:3].tolist()}); the context has positive probability "
                              "under the target, so they must be")
        return window / sums[:, None]

    def _jobs(self, parents, par, k, init, rng):
        outer = self.outer
        n, q = outer.model.n, outer.model.q
        t = outer.progress_t[parents]
        remaining = outer.n_free[parents] - t
        # Each job's order: the rest of its sample's order, the block first.
        idx = t[:, None] + np.arange(n)
        rest = np.where(idx < outer.n_free[parents][:, None],
                        np.take_along_axis(outer.orders[parents], np.minimum(idx, n - 1), 1), -1)
        job_k = np.repeat(k, par)
        rows = np.repeat(np.arange(parents.size), par)
        draft = np.zeros((job_k.size, int(k.max()), q))  # a ring by order index (ar.kernels)
        for i in range(int(k.max())):                # the block's marginals, all jobs at once
            on = np.flatnonzero(i < job_k)
            draft[on, i] = init[rows[on], i]
        tail = np.minimum(outer.sizer.k[parents], remaining - k)
        return ARSampler.for_jobs(
            outer.model, rng, x=outer.x[np.repeat(parents, par)], orders=rest[rows],
            n_free=job_k, n_order=np.repeat(remaining, par), tail_len=np.repeat(tail, par),
            draft=draft, block_size="auto", first_block=job_k,
            parallel=use_parallel(int(job_k.sum()) * n))

    def _log_ratio(self, wave, jobs_idx):
        """``log mu_B(X) - log nu_B(X)`` of finished proposals ``jobs_idx``."""
        jobs, outer = wave.jobs, self.outer
        parents = wave.job_parent[jobs_idx]
        k = jobs.n_free[jobs_idx]
        log_nu = np.zeros(jobs_idx.size)
        ring = (outer.progress_t[parents][:, None] + np.arange(int(k.max()))) % outer.draft.shape[1]
        # A proposal the draft gives probability 0 (the target does not) has ratio +inf and is
        # accepted surely: log 0 = -inf is the right value, not a fault to warn about.
        with np.errstate(divide="ignore"):
            for i in range(int(k.max())):
                on = i < k
                b = jobs.orders[jobs_idx[on], i]
                log_nu[on] += np.log(outer.draft[parents[on], ring[on, i], jobs.x[jobs_idx[on], b]])
        return jobs.log_prob[jobs_idx] - log_nu

    def _accept(self, wave, p, j):
        outer, jobs = self.outer, wave.jobs
        s = wave.parents[p]
        t, k = outer.progress_t[s], wave.k[p]
        block = outer.orders[s, t:t + k]
        outer.x[s, block] = jobs.x[j, block]
        outer.log_prob[s] += jobs.log_prob[j]
        outer.progress_t[s] = t + k
        tail = min(int(outer.sizer.k[s]), int(outer.n_free[s] - t - k))
        if tail > 0:        # the job's last window: the marginals after the block
            outer.ensure_ring(tail)
            after = t + k + np.arange(tail)       # outer order indices; the job's are from t on
            outer.draft[s, after % outer.draft.shape[1]] = jobs.draft[j, (after - t)
                                                                      % jobs.draft.shape[1]]
        outer.fresh[s] = bool(jobs.fresh[j]) and tail > 0
        if outer.fresh[s] and outer.progress_t[s] == outer.n_free[s] - 1:
            # the last free position, drawn from fresh marginals (no round needed)
            b = outer.orders[s, outer.n_free[s] - 1]
            o = (outer.n_free[s] - 1) % outer.draft.shape[1]
            u = np.empty(1)
            draw_uniforms(outer.rng, np.array([s]), u)
            y = draw_categorical(outer.draft[s, o], u[0])
            outer.x[s, b] = y
            outer.log_prob[s] += math.log(outer.draft[s, o, y])
            outer.progress_t[s] = outer.n_free[s]

