"""AR samplers as engine tasks: sequential, token, block and srs.

Each sample is one generator task (see :mod:`fastspec._engine`): it yields the
contexts it needs and receives their marginals, so all samples, and all
concurrent residual proposals of ``srs``, share every oracle round.
"""

import math
import time

import numpy as np

from .._blocksize import BlockSizer, check_block_size, check_row_cost
from .._engine import concurrently, first_accepted_in_order, run_rounds
from .._random import sample_generators
from .._result import SampleResult, build_stats
from . import kernels

#: "auto" resolves to this method: the fewest rounds in benchmarks/ (see README).
AUTO_METHOD = "block"


def _check_order(order, n):
    if order is None:
        return None
    arr = np.asarray(order)
    if arr.ndim != 1 or arr.shape[0] != n or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"order must be None or a 1-D int array of length n={n} holding a "
                         f"permutation of range({n}); got shape {arr.shape}, dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if not np.array_equal(np.sort(arr), np.arange(n)):
        raise ValueError(f"order must be a permutation of range({n}); got {arr.tolist()[:20]}"
                         f"{' ...' if n > 20 else ''}")
    return arr


def sample_ar(model, *, n_samples, method, seed, order, block_size, row_cost=None, _rule=None):
    """Draw ``n_samples`` exact samples of ``model`` (see :func:`fastspec.sample`).

    ``_rule`` (tests only) overrides the verification rule of the speculative
    task, e.g. ``kernels.UNVERIFIED`` for the negative control.
    """
    t0 = time.perf_counter()
    n = model.n
    order = _check_order(order, n)
    block_size = check_block_size(block_size)
    method = AUTO_METHOD if method == "auto" else method
    row_cost = check_row_cost(row_cost, method, block_size)
    rngs = sample_generators(seed, n_samples)
    orders = np.empty((n_samples, n), dtype=np.int64)
    tasks = []
    for s, rng in enumerate(rngs):
        orders[s] = rng.permutation(n) if order is None else order
        if method == "sequential":
            task = _sequential_task(n, orders[s], rng)
        elif method == "srs":
            task = _srs_task(n, orders[s], rng, BlockSizer(block_size, n, shrink_on_reject=True))
        else:
            rule = _rule if _rule is not None else (
                kernels.TOKEN if method == "token" else kernels.BLOCK)
            sizer = BlockSizer(block_size, n, row_cost=row_cost, share=1.0 / n_samples)
            task = _speculative_task(n, orders[s], rng, sizer, rule)
        tasks.append(task)
    results, counter = run_rounds(model, tasks)
    samples = np.stack([x for x, _ in results])
    stats = build_stats(method, counter, [log for _, log in results], n,
                        time.perf_counter() - t0)
    return SampleResult(samples=samples, stats=stats, orders=orders)


def _first_marginals(n):
    """Request the marginals of the empty context; returns them (n, q)."""
    (answer,) = yield [np.full((1, n), -1, dtype=np.int64)]
    return answer[0]


def _sequential_task(n, order, rng):
    """Ancestral sampling: one round per position."""
    x = np.full(n, -1, dtype=np.int64)
    u = rng.random(n)
    for t in range(n):
        (answer,) = yield [x[None, :].copy()]
        i = order[t]
        x[i] = kernels.draw_categorical(answer[0, i], u[t])
    return x, []


def _verification_rows(rows, block, draft_probs, fresh):
    """Target conditionals p_i (k, q) at the block positions, from the round's rows."""
    k = block.shape[0]
    target = np.empty_like(draft_probs)
    if fresh:  # C_1 = S was not asked: its marginals are the draft itself
        target[0] = draft_probs[0]
        target[1:] = rows[np.arange(k - 1), block[1:]]
    else:
        target[:] = rows[np.arange(k), block]
    return target


def _speculative_task(n, order, rng, sizer, rule):
    """Token / block verification: one round per block, drafts from known marginals."""
    x = np.full(n, -1, dtype=np.int64)
    marg = yield from _first_marginals(n)
    fresh = True  # marg are the marginals at exactly the current context x
    log = []
    t = 0
    while t < n:
        k = sizer.propose(n - t)
        block = order[t:t + k]
        draft_probs = np.ascontiguousarray(marg[block])
        u_draft = rng.random(k)
        u_stop = rng.random(k + 1)
        u_residual = rng.random()
        draft, contexts = kernels.draft_contexts(x, block, draft_probs, u_draft, fresh)
        (rows,) = yield [contexts]
        target = _verification_rows(rows, block, draft_probs, fresh)
        tau, y = kernels.verify_block(rule, target, draft_probs, draft, u_stop, u_residual)
        x[block[:tau]] = draft[:tau]
        if tau == k:
            marg, fresh = rows[-1], True
            t += k
        else:
            x[block[tau]] = y
            # Marginals at S + W_<=tau (row of C_{tau+1}) are a valid, slightly
            # stale draft for what follows; they miss only the residual draw y.
            row = tau - 1 if fresh else tau
            if row >= 0:
                marg = rows[row]
            fresh = False
            t += tau + 1
        log.append((k, tau))
        sizer.update(k, tau)
    return x, log


# -- speculative rejection sampling ---------------------------------------------------

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


def _srs_task(n, order, rng, sizer):
    x = np.full(n, -1, dtype=np.int64)
    marg = yield from _first_marginals(n)
    fresh = True
    rate = _ProposalRate()
    log = []
    t = 0
    while t < n:
        k = sizer.propose(n - t)
        block = order[t:t + k]
        values, _, end_marg, whole = yield from _srs_block(x, block, marg, fresh, rng, rate)
        x[block] = values
        if end_marg is not None:
            marg, fresh = end_marg, True
        else:
            fresh = False
        log.append((k, k if whole else 0))
        sizer.update(k, k if whole else 0)
        t += k
    return x, log


def _srs_block(x, block, marg, fresh, rng, rate):
    """Exact draw of ``block`` given context ``x`` by speculative rejection sampling.

    Returns ``(values, log_mu, end_marginals or None, accepted_whole)``, with
    ``log_mu`` the target log-probability of ``values`` (needed by the caller's
    residual test) and the marginals at ``x`` plus the block when known.
    """
    k = block.shape[0]
    draft_probs = np.ascontiguousarray(marg[block])
    if fresh and k == 1:  # the draft is the target itself: nothing to verify
        y = kernels.draw_categorical(draft_probs[0], rng.random())
        return np.array([y], dtype=np.int64), math.log(draft_probs[0, y]), None, True
    draft, contexts = kernels.draft_contexts(x, block, draft_probs, rng.random(k), fresh)
    (rows,) = yield [contexts]
    target = _verification_rows(rows, block, draft_probs, fresh)
    idx = np.arange(k)
    with np.errstate(divide="ignore"):
        log_mu = float(np.sum(np.log(target[idx, draft])))
        log_nu = float(np.sum(np.log(draft_probs[idx, draft])))
    if rng.random() < math.exp(min(0.0, log_mu - log_nu)):
        return draft, log_mu, rows[-1], True
    # Residual (mu - nu)_+ : rejection from proposals X ~ mu, accepted w.p. (1 - nu/mu)_+.
    if k == 1:  # p is known in full: draw (p - q)_+ directly
        y = _draw_residual(target[0], draft_probs[0], rng.random())
        return np.array([y], dtype=np.int64), math.log(target[0, y]), None, False
    marg_here = marg if fresh else rows[0]  # marginals at exactly x are now known
    while True:
        par = rate.parallelism(k)
        proposals = [_srs_proposal(x, block, marg_here, draft_probs, child, rate)
                     for child in rng.spawn(par)]
        results, done = yield from concurrently(proposals, first_accepted_in_order)
        for j in range(par):
            if not done[j]:
                break
            accepted, values, log_mu_x, end_marg = results[j]
            rate.record(k, accepted)
            if accepted:
                return values, log_mu_x, end_marg, False


def _draw_residual(target, draft_probs, u):
    """Draw from (p - q)_+ normalised (p itself if that mass underflows to ~0)."""
    weights = np.maximum(target - draft_probs, 0.0)
    if weights.sum() <= 1e-300:
        weights = target
    return kernels.draw_categorical(weights, u)


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
