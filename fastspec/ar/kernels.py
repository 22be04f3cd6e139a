"""Numba kernels of the AR pipeline.

All randomness arrives as pre-drawn uniforms, and parallel loops write
disjoint rows, so a kernel's output depends only on its inputs and never on
``NUMBA_NUM_THREADS``.
"""

import numpy as np
from numba import njit, prange

# Verification rules understood by ``verify_block``.
TOKEN = 0
BLOCK = 1
UNVERIFIED = 2  # accepts every draft: a deliberately wrong sampler for tests

# Residual masses below this are treated as an event of probability ~0.
_TINY = 1e-300


@njit(cache=True)
def draw_categorical(weights, u):
    """Inverse-CDF draw from unnormalised non-negative ``weights`` with uniform ``u``.

    A zero-weight symbol is never returned while the total is positive.
    """
    total = 0.0
    for y in range(weights.shape[0]):
        total += weights[y]
    target = u * total
    acc = 0.0
    last = 0
    for y in range(weights.shape[0]):
        if weights[y] > 0.0:
            acc += weights[y]
            last = y
            if acc > target:
                return y
    return last


#: Below this many output elements a parallel region costs more than it saves
#: (and on a loaded machine a contended OpenMP barrier can cost milliseconds):
#: the serial driver runs instead. Both give identical results.
PARALLEL_MIN_ELEMENTS = 1 << 18


@njit(cache=True)
def _fill_context(contexts, r, base, block, draft, n_pinned):
    contexts[r, :] = base
    for i in range(n_pinned):
        contexts[r, block[i]] = draft[i]


@njit(cache=True)
def _contexts_serial(contexts, base, block, draft, offset):
    for r in range(contexts.shape[0]):
        _fill_context(contexts, r, base, block, draft, r + offset)


@njit(parallel=True, cache=True)
def _contexts_parallel(contexts, base, block, draft, offset):
    for r in prange(contexts.shape[0]):
        _fill_context(contexts, r, base, block, draft, r + offset)


@njit(cache=True)
def draw_draft(draft_probs, u):
    """W_i ~ q_i independently, by inverse CDF: ``draft_probs`` (k, q), ``u`` (k,)."""
    draft = np.empty(draft_probs.shape[0], dtype=np.int64)
    for i in range(draft_probs.shape[0]):
        draft[i] = draw_categorical(draft_probs[i], u[i])
    return draft


def draft_contexts(base, block, draft_probs, u, skip_first):
    """Draw the block's draft and build its verification contexts.

    Parameters
    ----------
    base : int64 (n,)
        The pinned context S (-1 = free).
    block : int64 (k,)
        Positions b_1..b_k to speculate, in order.
    draft_probs : float64 (k, q)
        Draft marginal q_i of each block position.
    u : float64 (k,)
        One uniform per draft position.
    skip_first : bool
        True when the marginals at S itself are already known (fresh draft):
        context C_1 = S is then not asked again.

    Returns
    -------
    draft : int64 (k,)
    contexts : int64 (k + 1 - skip_first, n)
        Row r is C_i = S with W_1..W_{i-1} pinned, i = r + 1 + skip_first;
        the last row (all k pinned) yields the next block's draft.
    """
    draft = draw_draft(draft_probs, u)
    offset = 1 if skip_first else 0
    contexts = np.empty((block.shape[0] + 1 - offset, base.shape[0]), dtype=np.int64)
    fill = _contexts_parallel if contexts.size >= PARALLEL_MIN_ELEMENTS else _contexts_serial
    fill(contexts, base, block, draft, offset)
    return draft, contexts


@njit(cache=True)
def verify_block(rule, target, draft_probs, draft, u_stop, u_residual):
    """Decide how much of a drafted block to keep, and draw the next position.

    Parameters
    ----------
    rule : int
        ``TOKEN`` (per-position min(1, rho) tests), ``BLOCK`` (prefix-optimal
        sequence-level rule of DESIGN.md section 4) or ``UNVERIFIED``.
    target : float64 (k, q)
        p_i: the target conditional of each block position given the prefix.
    draft_probs : float64 (k, q)
        q_i: the draft marginal each W_i was drawn from.
    draft : int64 (k,)
    u_stop : float64 (k + 1,)
        Independent uniforms, one per stop decision (u_stop[k]: accept all).
    u_residual : float64
        Uniform for the draw at the first position not kept.

    Returns
    -------
    tau : int
        Draft positions kept (0..k).
    y : int
        Symbol drawn at position tau + 1 from the residual, or -1 if tau == k.
    """
    k = draft.shape[0]
    q = draft_probs.shape[1]
    if rule == UNVERIFIED:
        return k, -1
    tau = k
    scale = 1.0
    if rule == TOKEN:
        for i in range(k):
            rho = target[i, draft[i]] / draft_probs[i, draft[i]]
            if u_stop[i] >= rho:  # reject with probability 1 - min(1, rho)
                tau = i
                break
    else:
        # pi[i]: probability of keeping at least i positions given W_<=i.
        pi = np.empty(k + 1)
        pi[0] = 1.0
        for i in range(k):
            rho = target[i, draft[i]] / draft_probs[i, draft[i]]
            pi[i + 1] = min(1.0, pi[i] * rho)
        if u_stop[k] >= pi[k]:
            tau = 0  # h_0 = 1 (pi[0] = 1), so the backward pass stops by i = 0
            for i in range(k - 1, -1, -1):
                residual = 0.0
                for y in range(q):
                    d = pi[i] * target[i, y] - draft_probs[i, y]
                    if d > 0.0:
                        residual += d
                denom = residual + 1.0 - pi[i]
                h = residual / denom if denom > 0.0 else 1.0
                if u_stop[i] < h:
                    tau = i
                    break
        if tau < k:
            scale = pi[tau]
    if tau == k:
        return k, -1
    weights = np.empty(q)
    total = 0.0
    for y in range(q):
        d = scale * target[tau, y] - draft_probs[tau, y]
        weights[y] = d if d > 0.0 else 0.0
        total += weights[y]
    if total <= _TINY:
        # The residual branch has ~zero probability: fall back to the target.
        for y in range(q):
            weights[y] = target[tau, y]
    return tau, draw_categorical(weights, u_residual)


@njit(cache=True)
def _check_row(contexts, probs, tol, r, position, code):
    n = contexts.shape[1]
    q = probs.shape[2]
    for i in range(n):
        if contexts[r, i] >= 0:
            continue
        s = 0.0
        bad = 0
        for y in range(q):
            v = probs[r, i, y]
            if not np.isfinite(v):
                bad = 1
                break
            if v < 0.0:
                bad = 2
                break
            s += v
        if bad == 0 and abs(s - 1.0) > tol:
            bad = 3
        if bad != 0:
            position[r] = i
            code[r] = bad
            return


@njit(cache=True)
def _check_serial(contexts, probs, tol, position, code):
    for r in range(contexts.shape[0]):
        _check_row(contexts, probs, tol, r, position, code)


@njit(parallel=True, cache=True)
def _check_parallel(contexts, probs, tol, position, code):
    for r in prange(contexts.shape[0]):
        _check_row(contexts, probs, tol, r, position, code)


def find_invalid_rows(contexts, probs, tol):
    """Per row, the first free position whose marginal is not a distribution.

    Returns ``(position, code)`` arrays of shape (K,): code 0 = valid row,
    1 = non-finite value, 2 = negative value, 3 = sum differs from 1 by > tol.
    Pinned positions are not checked (their values are never used).
    """
    K = contexts.shape[0]
    position = np.full(K, -1, dtype=np.int64)
    code = np.zeros(K, dtype=np.int64)
    check = _check_parallel if probs.size >= PARALLEL_MIN_ELEMENTS else _check_serial
    check(contexts, probs, tol, position, code)
    return position, code
