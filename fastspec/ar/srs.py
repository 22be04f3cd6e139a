"""Speculative rejection sampling (srs) for AR models, one generator task per sample.

Block rule of the seed paper (docs/ALGORITHMS.md, "srs"): draft a block from the
current marginals, keep it whole with probability ``min(1, mu_B / nu_B)``, else
draw the residual ``(mu_B - nu_B)_+`` by rejection from proposals ``X ~ mu_B``
(recursively: srs on the two halves), each kept with probability
``(1 - nu_B(X) / mu_B(X))_+``; several proposals run concurrently and share
rounds (:func:`fastspec._tasks.concurrently`).
"""

import dataclasses
import math

import numpy as np

from .._errors import OracleError
from .._seeds import spawn_generators
from .._sizer import check_block_size
from .._tasks import TaskSampler, concurrently, first_accepted_in_order
from . import kernels
from .sampler import _explicit_orders, check_given, check_order


class SrsSampler(TaskSampler):
    """All samples of one srs call (see the module docstring)."""

    def __init__(self, model, streams, *, block_size, row_cost, order, given, parallel=None):
        n, q, S = model.n, model.q, len(streams)
        self.model = model
        block_size = check_block_size(block_size)
        given = check_given(given, n, q, S)
        order = check_order(order, n)
        if order is None:
            orders = np.empty((S, n), dtype=np.int64)
            n_free = np.empty(S, dtype=np.int64)
            kernels.random_orders(False, streams.states, given, orders,
                                  n_free)
        else:
            orders = _explicit_orders(order, given, S)
            n_free = (orders >= 0).sum(axis=1)
        self.orders = orders
        x0 = np.broadcast_to(given, (S, n))
        tasks = [_srs_task(x0[s].copy(), orders[s, :n_free[s]], streams.generator(s),
                           _BlockSize(block_size, int(n_free[s])))
                 for s in range(S)]
        super().__init__(tasks, n)

    # -- how AR requests stack ----------------------------------------------------------------
    def _rows(self, request):
        return request.shape[0]

    def _stack(self, requests):
        return requests[0] if len(requests) == 1 else np.concatenate(requests)

    def _slice(self, stacked, start, stop):
        return stacked[start:stop]

    def _store(self, buffer, answer, start, stop, where):
        probs, tol = answer
        contexts = self._stacked[start:stop]
        position = np.full(contexts.shape[0], -1, dtype=np.int64)
        code = np.zeros(contexts.shape[0], dtype=np.int64)
        kernels.find_invalid_rows(False, contexts, probs, tol, position, code)
        bad = np.flatnonzero(code)
        if bad.size:
            r = int(bad[0])
            raise OracleError(self.model.invalid_answer_message(
                where, r, None, contexts[r], int(position[r]), probs[r, position[r]],
                int(code[r]), tol))
        if buffer is None:
            buffer = np.empty((self._stacked.shape[0], self.model.n, self.model.q))
        chunk = buffer[start:stop]
        chunk[...] = probs                    # copied: the oracle's answer is only borrowed
        free = contexts < 0
        chunk[free] /= chunk[free].sum(axis=-1, keepdims=True)
        return buffer

    def _split(self, buffer, sizes):
        bounds = np.cumsum([0] + sizes)
        return [buffer[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def result(self, stats):
        from .._result import SampleResult
        samples = np.stack([x for x, _, _ in self.results])
        log_prob = np.array([lp for _, _, lp in self.results])
        block_sizes = np.array([k for _, log, _ in self.results for k, _ in log], dtype=np.int64)
        accepted = np.array([a for _, log, _ in self.results for _, a in log], dtype=np.int64)
        stats = dataclasses.replace(stats, block_sizes=block_sizes, accepted=accepted)
        return SampleResult(samples=samples, stats=stats, orders=self.orders, log_prob=log_prob)


class _BlockSize:
    """srs keeps a block whole or redraws it from the residual, which costs several
    rounds: x1.5 on acceptance and x0.5 on rejection balance at a whole-block
    acceptance rate of about 0.63. Measured on CurieWeiss(1024), 16 samples, mean
    rounds / rows per n: x1.25 32.8 / 10.9, x1.5 19.5 / 7.8, x2 34.6 / 30.1."""

    def __init__(self, block_size, steps):
        self.fixed = None if block_size == "auto" else int(block_size)
        self.k = max(1, math.ceil(math.sqrt(steps)))

    def propose(self, remaining):
        return int(max(1, min(self.fixed or self.k, remaining)))

    def update(self, k, whole):
        self.k = max(k + 1, math.ceil(1.5 * k)) if whole else max(1, k // 2)


def _draw(probs, u):
    """Inverse-CDF draws, one per row of ``probs`` (k, q) with uniforms ``u`` (k,)."""
    return np.array([kernels.draw_categorical(p, v) for p, v in zip(probs, u)], dtype=np.int64)


def _contexts(x, block, draft, skip_first):
    """Contexts C_i = x with draft[:i] pinned at block[:i], i = skip_first .. k."""
    k = block.shape[0]
    rows = np.repeat(x[None, :], k + 1 - skip_first, axis=0)
    for r in range(rows.shape[0]):
        i = r + skip_first
        rows[r, block[:i]] = draft[:i]
    return rows


def _first_marginals(x):
    (answer,) = yield [x[None, :].copy()]
    return answer[0]


def _srs_task(x, order, rng, sizer):
    marg = yield from _first_marginals(x)
    fresh = True
    rate = _ProposalRate()
    log = []
    log_prob = 0.0
    t = 0
    n = order.shape[0]
    while t < n:
        k = sizer.propose(n - t)
        block = order[t:t + k]
        values, log_mu, end_marg, whole = yield from _srs_block(x, block, marg, fresh, rng, rate)
        x[block] = values
        log_prob += log_mu
        if end_marg is not None:
            marg, fresh = end_marg, True
        else:
            fresh = False
        log.append((k, k if whole else 0))
        sizer.update(k, whole)
        t += k
    return x, log, log_prob


class _ProposalRate:
    """Running acceptance rates of residual proposals, per block-length octave.

    A proposal is accepted with probability TV(mu_B, nu_B), which shrinks with
    the block length, so nested (shorter) blocks keep their own estimate.
    ``parallelism`` runs about 2 / TV proposals at once, clamped to [2, 64].
    """

    def __init__(self):
        self.tried = {}
        self.accepted = {}

    def parallelism(self, k):
        key = int(k).bit_length()
        tv = (self.accepted.get(key, 0) + 1) / (self.tried.get(key, 0) + 2)
        return int(min(64, max(2, math.ceil(2.0 / tv))))

    def record(self, k, accepted):
        key = int(k).bit_length()
        self.tried[key] = self.tried.get(key, 0) + 1
        self.accepted[key] = self.accepted.get(key, 0) + int(accepted)


def _srs_block(x, block, marg, fresh, rng, rate):
    """Exact draw of ``block`` given context ``x`` by speculative rejection sampling.

    Returns ``(values, log_mu, end_marginals or None, accepted_whole)``, with
    ``log_mu`` the target log-probability of ``values`` and the marginals at
    ``x`` plus the block when known.
    """
    k = block.shape[0]
    draft_probs = np.ascontiguousarray(marg[block])
    if fresh and k == 1:  # the draft is the target itself: nothing to verify
        y = kernels.draw_categorical(draft_probs[0], rng.random())
        return np.array([y], dtype=np.int64), math.log(draft_probs[0, y]), None, True
    draft = _draw(draft_probs, rng.random(k))
    (rows,) = yield [_contexts(x, block, draft, int(fresh))]
    target = np.empty_like(draft_probs)
    if fresh:
        target[0] = draft_probs[0]
        target[1:] = rows[np.arange(k - 1), block[1:]]
    else:
        target[:] = rows[np.arange(k), block]
    idx = np.arange(k)
    with np.errstate(divide="ignore"):
        log_mu = float(np.sum(np.log(target[idx, draft])))
        log_nu = float(np.sum(np.log(draft_probs[idx, draft])))
    if rng.random() < math.exp(min(0.0, log_mu - log_nu)):
        return draft, log_mu, rows[-1].copy(), True
    if k == 1:  # p is known in full: draw (p - q)_+ directly
        weights = np.maximum(target[0] - draft_probs[0], 0.0)
        if weights.sum() <= 1e-300:
            weights = target[0]
        y = kernels.draw_categorical(weights, rng.random())
        return np.array([y], dtype=np.int64), math.log(target[0, y]), None, False
    marg_here = marg if fresh else rows[0].copy()  # marginals at exactly x are now known
    while True:
        par = rate.parallelism(k)
        proposals = [_srs_proposal(x, block, marg_here, draft_probs, child, rate)
                     for child in spawn_generators(rng, par)]
        results, done = yield from concurrently(proposals, first_accepted_in_order)
        for j in range(par):
            if not done[j]:
                break
            accepted, values, log_mu_x, end_marg = results[j]
            rate.record(k, accepted)
            if accepted:
                return values, log_mu_x, end_marg, False


def _srs_proposal(x, block, marg_here, outer_draft, rng, rate):
    """One residual proposal: X ~ mu_B by srs on the two halves, then its accept test."""
    h = block.shape[0] // 2
    first, second = block[:h], block[h:]
    values1, log_mu1, marg1, _ = yield from _srs_block(x, first, marg_here, True, rng, rate)
    x1 = x.copy()
    x1[first] = values1
    # Without the marginals at x1, the (stale) marginals at x are the second half's draft.
    fresh = marg1 is not None
    values2, log_mu2, marg2, _ = yield from _srs_block(
        x1, second, marg1 if fresh else marg_here, fresh, rng, rate)
    values = np.concatenate([values1, values2])
    log_mu = log_mu1 + log_mu2
    with np.errstate(divide="ignore"):
        log_nu = float(np.sum(np.log(outer_draft[np.arange(block.shape[0]), values])))
    # Accept with probability (1 - nu/mu)_+, so accepted X follow (mu - nu)_+.
    accepted = rng.random() < 1.0 - math.exp(min(0.0, log_nu - log_mu))
    return accepted, values, log_mu, marg2
