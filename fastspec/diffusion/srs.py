"""Speculative rejection sampling (srs) for diffusion chains, one generator task per sample.

Block rule of the seed paper (docs/ALGORITHMS.md, "srs"): draft ``k`` steps with
the denoiser frozen, keep the whole path with probability ``min(1, mu_B / nu_B)``,
else draw the residual ``(mu_B - nu_B)_+`` by rejection from proposals
``X ~ mu_B`` (recursively: srs on the two halves), each kept with probability
``(1 - nu_B(X) / mu_B(X))_+``; concurrent proposals share rounds.
"""

import dataclasses
import math

import numpy as np

from .._errors import OracleError
from .._seeds import spawn_generators
from .._sizer import check_block_size
from .._tasks import TaskSampler, concurrently, first_accepted_in_order
from ..ar.srs import _BlockSize
from . import kernels


class _Chain:
    """Schedule arrays plus helpers to build denoiser requests."""

    def __init__(self, schedule, dim):
        self.a = np.ascontiguousarray(schedule.a)
        self.b = np.ascontiguousarray(schedule.b)
        self.c = np.ascontiguousarray(schedule.c)
        self.s = schedule.s
        self.sigma = schedule.sigma
        self.init_scale = schedule.init_scale
        self.n = schedule.n_steps
        self.dim = dim

    def request(self, states, first_step):
        """Request ``(z, sigma, steps)`` for ``states`` at consecutive steps from ``first_step``."""
        steps = np.arange(first_step, first_step + states.shape[0])
        return (states / self.s[steps, None], self.sigma[steps], steps)

    def coefs(self, j, k):
        return self.a[j:j + k], self.b[j:j + k], self.c[j:j + k]


def draft_states(y0, d_draft, a, b, c, xi):
    """``W_0 = y0``, ``W_{i+1} = a_i W_i + b_i d_draft + c_i xi_i``; returns (k + 1, d)."""
    w = np.empty((xi.shape[0] + 1, y0.shape[0]))
    w[0] = y0
    for i in range(xi.shape[0]):
        w[i + 1] = a[i] * w[i] + b[i] * d_draft + c[i] * xi[i]
    return w


def log_ratios(w, d_vals, d_draft, a, b, c):
    """Per-step ``log p_i / q_i`` of path ``w`` (k + 1, d) given denoiser values (k, d)."""
    zeta = (w[1:] - a[:, None] * w[:-1] - b[:, None] * d_draft) / c[:, None]
    delta = b[:, None] * (d_vals - d_draft) / c[:, None]
    return np.sum(zeta * delta, axis=1) - 0.5 * np.sum(delta * delta, axis=1)


class SrsSampler(TaskSampler):
    """All samples of one srs call (see the module docstring)."""

    def __init__(self, model, streams, *, schedule, block_size, row_cost, parallel=None):
        self.model = model
        block_size = check_block_size(block_size)
        chain = _Chain(schedule, model.dim)
        tasks = [_srs_task(chain, streams.generator(s), _BlockSize(block_size, chain.n))
                 for s in range(len(streams))]
        super().__init__(tasks, chain.n)

    # -- how diffusion requests stack -----------------------------------------------------------
    def _rows(self, request):
        return request[0].shape[0]

    def _stack(self, requests):
        return tuple(np.concatenate([r[i] for r in requests]) for i in range(3))

    def _slice(self, stacked, start, stop):
        return stacked[0][start:stop], stacked[1][start:stop]

    def _store(self, buffer, answer, start, stop, where):
        finite = np.isfinite(answer).all(axis=1)
        if not finite.all():
            r = int(np.flatnonzero(~finite)[0])
            step = int(self._stacked[2][start + r])
            raise OracleError(self.model.non_finite_message(
                where, r, None, step, self._stacked[1][start + r], answer[r]))
        if buffer is None:
            buffer = np.empty((self._stacked[0].shape[0], self.model.dim))
        buffer[start:stop] = answer           # copied: the oracle's answer is only borrowed
        return buffer

    def _split(self, buffer, sizes):
        bounds = np.cumsum([0] + sizes)
        return [buffer[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def result(self, stats):
        from .._result import SampleResult
        samples = np.stack([y for y, _ in self.results])
        block_sizes = np.array([k for _, log in self.results for k, _ in log], dtype=np.int64)
        accepted = np.array([a for _, log in self.results for _, a in log], dtype=np.int64)
        stats = dataclasses.replace(stats, block_sizes=block_sizes, accepted=accepted)
        return SampleResult(samples=samples, stats=stats)


class _ProposalRate:
    """Running acceptance rate of residual proposals (an estimate of the block TV)."""

    def __init__(self):
        self.tried = 0
        self.accepted = 0

    def parallelism(self):
        tv = (self.accepted + 1) / (self.tried + 2)
        return int(min(64, max(2, math.ceil(2.0 / tv))))


def _verify_round(chain, j, k, w, fresh):
    """Request for a drafted block: states ``W_lo .. W_{hi-1}`` (``W_0`` only when stale,
    ``W_k`` only when the chain goes on after it); returns ``(request or None, lo, hi)``."""
    lo = 1 if fresh else 0
    hi = k if j + k == chain.n else k + 1
    if hi <= lo:
        return None, lo, hi
    return chain.request(w[lo:hi], j + lo), lo, hi


def _srs_task(chain, rng, sizer):
    y = chain.init_scale * rng.standard_normal(chain.dim)
    d_draft = np.zeros(chain.dim)
    fresh = False
    rates = {}  # proposal acceptance rate per block length (the TV differs by length)
    log = []
    j = 0
    while j < chain.n:
        k = sizer.propose(chain.n - j)
        path, d_vals, end_known, whole = yield from _srs_block(
            chain, j, k, y, d_draft, fresh, rng, rates)
        y = path[k]
        d_draft, fresh = (d_vals[k], True) if end_known else (d_vals[k - 1], False)
        log.append((k, k if whole else 0))
        sizer.update(k, whole)
        j += k
    return y, log


def _srs_block(chain, j, k, y, d_draft, fresh, rng, rates):
    """Exact draw of steps ``j .. j+k-1`` from ``y`` by speculative rejection sampling.

    Returns ``(path (k+1, d), d_vals (k+1, d), end_known, accepted_whole)``:
    ``d_vals[i]`` is the denoiser at ``path[i]`` for ``i < k`` (always known:
    every step of an exact draw used it) and at ``path[k]`` if ``end_known``.
    """
    a, b, c = chain.coefs(j, k)
    xi = rng.standard_normal((k, chain.dim))
    w = draft_states(y, d_draft, a, b, c, xi)
    d_vals = np.empty((k + 1, chain.dim))
    if fresh and k == 1:  # the draft is the target itself: nothing to verify
        d_vals[0] = d_draft
        return w, d_vals, False, True
    req, lo, hi = _verify_round(chain, j, k, w, fresh)
    (answer,) = yield [req]
    if fresh:
        d_vals[0] = d_draft
    d_vals[lo:hi] = answer
    log_rho = log_ratios(w, d_vals[:k], d_draft, a, b, c)
    if rng.random() < math.exp(min(0.0, float(np.sum(log_rho)))):
        return w, d_vals, hi == k + 1, True
    if k == 1:  # residual (p - q)_+ of one step: the reflection of the rejected noise
        delta = b[0] * (d_vals[0] - d_draft) / c[0]
        noise = kernels.set_along(xi[0], delta, True, 0.0)
        path = w.copy()
        path[1] = a[0] * w[0] + b[0] * d_draft + c[0] * noise
        return path, d_vals, False, False
    # Residual (mu - nu)_+ by rejection: proposals X ~ mu, accepted w.p. (1 - nu/mu)_+.
    d_here = d_vals[0]  # the denoiser at y is known now
    rate = rates.setdefault(k, _ProposalRate())
    while True:
        par = rate.parallelism()
        proposals = [_srs_proposal(chain, j, k, y, d_here, d_draft, child, rates)
                     for child in spawn_generators(rng, par)]
        results, done = yield from concurrently(proposals, first_accepted_in_order)
        for i in range(par):
            if not done[i]:
                break
            rate.tried += 1
            accepted, path, p_vals, end_known = results[i]
            if accepted:
                rate.accepted += 1
                return path, p_vals, end_known, False


def _srs_proposal(chain, j, k, y, d_here, outer_draft, rng, rates):
    """One residual proposal: X ~ mu_B by srs on the two halves, then its accept test."""
    h = k // 2
    path1, vals1, end1, _ = yield from _srs_block(chain, j, h, y, d_here, True, rng, rates)
    # Without the denoiser at path1[h], the one at path1[h-1] is the second half's draft.
    draft2 = vals1[h] if end1 else vals1[h - 1]
    path2, vals2, end2, _ = yield from _srs_block(
        chain, j + h, k - h, path1[h], draft2, end1, rng, rates)
    path = np.concatenate([path1[:h], path2])
    vals = np.concatenate([vals1[:h], vals2])
    a, b, c = chain.coefs(j, k)
    log_r = float(np.sum(log_ratios(path, vals[:k], outer_draft, a, b, c)))  # log mu_B - log nu_B
    accepted = rng.random() < -math.expm1(min(0.0, -log_r))
    return accepted, path, vals, end2
