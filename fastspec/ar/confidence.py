"""Confidence orders: ``order="confidence"`` (docs/ALGORITHMS.md, section 8).

The target is a different sequential sampler than a fixed or random order: at
each step it picks the free position whose marginal at the current context has
the highest maximum probability (its *confidence*), ties to the lowest index,
and draws that position's symbol from its marginal at temperature 1 (LLaDA's
low-confidence remasking with one token per step). Positions whose confidence
is within :data:`TIE` of the highest count as tied, so float noise far below
any real difference between two positions (an oracle's rounding differs from
one context to the next) never decides the order.

Speculation verifies (position, symbol) pairs. A block drafts ``k`` pairs
before the round: positions in decreasing confidence at the draft's context
(ties to the lowest index), symbols from their marginals there. The row of
context ``C_i`` (the round's context with the first ``i`` pairs pinned) gives the
target's step kernel ``K_i(pos, sym) = 1[pos = choice(C_i)] p_{C_i}(sym at pos)``,
which needs the marginals at every free position of ``C_i``: rows are dense (with
the positions protocol they list every free position). The draft's pair has
target probability 0 when its position is not the target's choice, and the
residual then draws from the target's kernel. The token and block rules of
:mod:`fastspec._rules` apply unchanged on the joint space.

``order=`` may also be a ``numba.njit`` policy choosing each step's position
instead of the confidence rule (:class:`ConfidenceSampler`).

Three serial kernels: :func:`draft_pairs`, :func:`verify_pair_rows`,
:func:`settle_pairs` (the rest is inlined into them); the block size follows
:mod:`fastspec._sizer`. Serial only: a round's work is ``O(rows n q)`` and a
parallel twin would compile each a second time.
"""

import math

import numpy as np

from .._driver import RoundLog, SamplerBase
from .._errors import OracleError
from .._jit import kernel
from .._planner import plan_round
from .._rules import (BLOCK, CAND_LOG_PI, CAND_LOG_SUM, DEAD, FULL_ROW, LOG_PI, LOG_SUM,
                      N_FSTATE, N_ISTATE, RULES, TINY, TOKEN, kept_length, reset_slot,
                      row_of, rows_of_slot, slots_of_rows, verify_draft_row,
                      verify_last_row)
from .._seeds import next_double
from .._sizer import COST, DEFAULT, BlockSizer, update as update_block_size
from .kernels import check_marginal, draw_categorical
from .sampler import _Round, check_given

#: Confidences within this of the highest are ties (the lowest index wins). An
#: oracle's float64 rounding moves a probability by about 1e-16; two positions a
#: real model ranks differently differ by far more than 1e-9.
TIE = 1e-9

#: Error code of a policy that returned a position it was not given.
POLICY = 9

#: Probe rows (a speculative method's first round asks ``q`` of them per sample to
#: seed the neighbour table) only for alphabets up to this size.
PROBE_MAX_Q = 256

#: The negative control of the tests: the block rule with the drafted positions
#: taken as the target's without checking (symbols are still verified there).
UNCHECKED_POSITIONS = -1

# The per-slot streaming state is fastspec._rules' (its LOG_SUM column: log p of the
# pairs read so far), plus two integer columns: the stop candidate's target position
# and whether the draft chose it there.
CAND_POS, CAND_MATCH = N_ISTATE, N_ISTATE + 1


#: The orders :func:`fastspec.sample` accepts by name.
ORDERS = ("confidence",)


def check_confidence_order(order, method, draft=None):
    """Validate a named ``order`` or a policy for ``method`` and ``draft``; returns the
    policy (None: confidence). ValueError or TypeError naming the fix."""
    if callable(order) and not hasattr(order, "py_func"):
        raise TypeError(f"a policy passed as order= runs inside fastspec's kernels, so it must "
                        f"be compiled with numba.njit; got {type(order).__name__}")
    if isinstance(order, str) and order not in ORDERS:
        raise ValueError(f"order must be None, an int array (a permutation of the positions), "
                         f"a numba.njit policy or one of {', '.join(map(repr, ORDERS))}; got "
                         f"{order!r}")
    if method == "srs":
        raise ValueError('method="srs" does not support order="confidence" (nor a policy): '
                         "its residual proposals redraw a block of fixed positions, while a "
                         "confidence "
                         'block\'s positions depend on its symbols; use method="block" or '
                         '"token" (or "auto")')
    if draft is not None:
        raise ValueError('order="confidence" drafts from the oracle itself (a neighbour table '
                         "learned from its rows); draft= models are not supported with it, "
                         "pass draft=None")
    return None if isinstance(order, str) else order


@kernel(inline="always")
def most_confident(conf):
    """The lowest index whose confidence is within :data:`TIE` of the highest (-1 marks a
    position that is not free; returns -1 when none is free)."""
    top = -1.0
    for i in range(conf.shape[0]):
        top = max(top, conf[i])
    if top < 0.0:
        return -1
    for i in range(conf.shape[0]):
        if conf[i] >= 0.0 and conf[i] >= top - TIE:
            return i
    return -1


@kernel(inline="always")
def choose(policy, conf, m, totals, buf_m, buf_p):
    """The user's ``policy`` on the free positions (``conf >= 0``) with marginals
    ``m[p] / totals[p]``; -2 if it returns a position that is not one of them. (The
    kernels call it only when a policy is given: ``policy=None`` prunes the call at
    compile time, so the default kernels take no function argument and stay cached.)"""
    F = 0
    for p in range(conf.shape[0]):
        if conf[p] >= 0.0:
            for y in range(m.shape[1]):
                buf_m[F, y] = m[p, y] / totals[p]
            buf_p[F] = p
            F += 1
    b = policy(buf_m[:F], buf_p[:F])
    for j in range(F):
        if buf_p[j] == b:
            return b
    return -2


@kernel(inline="always")
def learn_neighbours(table, counts, s, probs, row, totals, conf, b, w):
    """Add the normalised marginals answer row ``row`` gives the free neighbours of its
    latest pin ``(b, w)`` to sample ``s``'s neighbour table (``conf[p] >= 0``: free)."""
    for side in range(2):
        p = b - 1 + 2 * side
        if 0 <= p < conf.shape[0] and conf[p] >= 0.0:
            counts[s, side, w] += 1.0
            for y in range(table.shape[3]):
                table[s, side, w, y] += probs[row, p, y] / totals[p]


@kernel(inline="always")
def learn_from_unused_row(table, counts, s, probs, row, tol, x, D, a, i, b, w):
    """A row the rules do not use (after a rejection, after a pair of target
    probability 0, or a probe row) still teaches the neighbour table what the oracle
    answered next to its latest pin ``(b, w)`` (its other pins: the first ``i`` drafted
    positions ``D[a, :i]``), where those answers are distributions: an oracle may
    answer anything in such a row, so nothing is raised."""
    for side in range(2):
        p = b - 1 + 2 * side
        if p < 0 or p >= x.shape[1] or x[s, p] >= 0:
            continue
        drafted = False
        for j in range(i):
            drafted = drafted or D[a, j] == p
        total, code = check_marginal(probs[row, p], tol)
        if drafted or code != 0:
            continue
        counts[s, side, w] += 1.0
        for y in range(table.shape[3]):
            table[s, side, w, y] += probs[row, p, y] / total


@kernel(inline="always")
def guess_neighbours(table, counts, s, dist, conf, b, w):
    """After drafting ``w`` at ``b``: the free, undrafted neighbours of ``b`` (``conf >= 0``)
    take the table's mean marginal next to ``w``, when it has one, and its confidence."""
    for side in range(2):
        p = b - 1 + 2 * side
        if 0 <= p < conf.shape[0] and conf[p] >= 0.0 and counts[s, side, w] > 0.0:
            m = 0.0
            for y in range(dist.shape[1]):
                dist[p, y] = table[s, side, w, y] / counts[s, side, w]
                m = max(m, dist[p, y])
            conf[p] = m


@kernel
def draft_pairs(rng, samples, t, k, fresh, x, draft, table, counts, last, D, W, q_at, q_draft,
                u_stop, fstate, istate, conf, dist, policy, buf_m, buf_p, ones, policy_err):
    """Each slot's ``k`` drafted pairs (docs/ALGORITHMS.md, section 8).

    ``draft[s]`` (n, q) holds normalised marginals at the draft's context (the
    current one when ``fresh[s]``, else the context before the residual pair
    ``last[s]``). Positions are drafted greedily by confidence (ties to the lowest
    index), as the target chooses them, each symbol ``W_i`` drawn from its draft
    marginal ``q_draft[a, i]``; after each drafted pair (and first the residual
    pair of a stale draft) the free neighbours of its position take the neighbour
    table's mean marginal next to its symbol (:func:`guess_neighbours`), the
    sample's own record of what the oracle answered there in earlier rounds. Then
    ``k + 1`` stop uniforms, all from the sample's stream; the slot's state is
    reset. With a fresh draft row 0 is not asked: the first pair is the target's
    own step (ratio 1), so the block's default stop is there with ``CAND_ROW = -1``.
    """
    n, q = draft.shape[1], draft.shape[2]
    for a in range(samples.shape[0]):
        s = samples[a]
        for i in range(n):
            conf[i] = -1.0
            if x[s, i] < 0:
                m = 0.0
                for y in range(q):
                    dist[i, y] = draft[s, i, y]
                    m = max(m, draft[s, i, y])
                conf[i] = m
        if not fresh[s] and last[s, 0] >= 0 and k[a] > 0:
            guess_neighbours(table, counts, s, dist, conf, last[s, 0], last[s, 1])
        for j in range(k[a]):
            if policy is None:
                b = most_confident(conf)
            else:
                b = choose(policy, conf, dist, ones, buf_m, buf_p)
            if b < 0:
                policy_err[a] = 1
                break
            conf[b] = -1.0
            D[a, j] = b
            w = draw_categorical(dist[b], next_double(rng, s))
            W[a, j] = w
            q_at[a, j] = dist[b, w]
            for y in range(q):
                q_draft[a, j, y] = dist[b, y]
            guess_neighbours(table, counts, s, dist, conf, b, w)
        for j in range(k[a] + 1):
            u_stop[a, j] = next_double(rng, s)
        reset_slot(fstate, istate, a)
        istate[a, CAND_POS] = D[a, 0] if k[a] > 0 else -1
        istate[a, CAND_MATCH] = 1
        if fresh[s] and k[a] > 0:
            fstate[a, LOG_SUM] = math.log(q_at[a, 0])


@kernel
def verify_pair_rows(rule, probs, tol, start, stop, samples, t, k, first_row, row_start, x,
                     table, counts, last, probe, D, W, q_at, q_draft, u_stop, fstate, istate,
                     draft, err, conf, totals, policy, buf_m, buf_p):
    """Read the answer rows ``start .. stop - 1`` (dense ``(K, n, q)``), in order.

    Row ``i`` of a slot has context ``C_i``: every free position's marginal is
    checked (all of them decide the target's choice), the target's position is
    the most confident one, and the drafted pair's target probability is its
    symbol's at that position, 0 if the draft chose another position. The rest
    is :mod:`fastspec.ar.kernels.verify_rows` on the joint space: the block rule's
    residual mass is ``sum_y (pi p(y) - q(y))_+`` at a matched position, ``pi``
    at another (disjoint supports). A stop candidate keeps its row's normalised
    marginals and the row ``k`` of a block kept whole its own, in place of the
    sample's draft marginals (``draft[s]``, read only when the round was drafted): the
    next draft, and the residual's target at a cut. Each row read also teaches the sample's
    neighbour table what the oracle answers next to the row's latest pin; the
    probe rows after row ``k`` (first round) only teach it.
    """
    n, q = x.shape[1], probs.shape[2]
    verified = BLOCK if rule == UNCHECKED_POSITIONS else rule   # (the negative control's rule)
    slot_lo, slot_hi = slots_of_rows(row_start, start, stop)
    for a in range(slot_lo, slot_hi):
        s = samples[a]
        r0, r1 = rows_of_slot(row_start, a, start, stop)
        for g in range(r0, r1):
            _, row, i = row_of(samples, row_start, first_row, start, a, g)
            if i > k[a]:                          # a probe row: symbol i - k - 1 at probe[a]
                if err[a, 0] == 0:
                    learn_from_unused_row(table, counts, s, probs, row, tol, x, D, a, 0,
                                          probe[a], i - k[a] - 1)
                continue
            if istate[a, DEAD]:
                if err[a, 0] == 0 and i > 0:
                    learn_from_unused_row(table, counts, s, probs, row, tol, x, D, a, i,
                                          D[a, i - 1], W[a, i - 1])
                continue
            for p in range(n):
                conf[p] = 0.0 if x[s, p] < 0 else -1.0
            for j in range(i):
                conf[D[a, j]] = -1.0
            for p in range(n):
                if conf[p] < 0.0:
                    continue
                total, code = check_marginal(probs[row, p], tol)
                if code != 0:
                    err[a, 0], err[a, 1], err[a, 2] = code, g, p
                    istate[a, DEAD] = 1
                    break
                m = 0.0
                for y in range(q):
                    m = max(m, probs[row, p, y])
                conf[p] = m / total
                totals[p] = total
            if istate[a, DEAD]:
                break
            if i > 0:
                learn_neighbours(table, counts, s, probs, row, totals, conf, D[a, i - 1],
                                 W[a, i - 1])
            elif last[s, 0] >= 0:
                learn_neighbours(table, counts, s, probs, row, totals, conf, last[s, 0],
                                 last[s, 1])
            if policy is None:
                best = most_confident(conf)
            else:
                best = choose(policy, conf, probs[row], totals, buf_m, buf_p)
            if best < 0:
                err[a, 0], err[a, 1], err[a, 2] = POLICY, g, -1
                istate[a, DEAD] = 1
                break
            if i < k[a]:
                b = D[a, i]
                if rule == UNCHECKED_POSITIONS:
                    best = b
                matched = best == b
                p_w = probs[row, b, W[a, i]] / totals[b] if matched else 0.0
                rho = p_w / q_at[a, i]
                residual = 0.0
                if verified == BLOCK:             # sum_y (pi p(y) - q(y))_+, pi elsewhere
                    pi = math.exp(fstate[a, LOG_PI])
                    residual = pi
                    if matched:
                        residual = 0.0
                        for y in range(q):
                            d = pi * (probs[row, b, y] / totals[b]) - q_draft[a, i, y]
                            if d > 0.0:
                                residual += d
                log_rho = math.log(rho) if rho > 0.0 else -math.inf
                if verify_draft_row(verified, u_stop, fstate, istate, a, i, g, rho, log_rho,
                                    residual):
                    istate[a, CAND_POS] = best
                    istate[a, CAND_MATCH] = 1 if matched else 0
                    keep_row(draft, s, probs, row, conf, totals)
                if p_w > 0.0:
                    fstate[a, LOG_SUM] += math.log(p_w)
            elif verify_last_row(verified, u_stop, fstate, istate, a, k[a], g):
                keep_row(draft, s, probs, row, conf, totals)


@kernel(inline="always")
def keep_row(draft, s, probs, row, conf, totals):
    """Sample ``s``'s draft marginals become the answer row's, normalised, at the positions
    the row read (``conf >= 0``): the next draft, and the residual's target at a cut."""
    for p in range(conf.shape[0]):
        if conf[p] >= 0.0:
            for y in range(probs.shape[2]):
                draft[s, p, y] = probs[row, p, y] / totals[p]


@kernel
def settle_pairs(rng, rule, samples, t, k, x, orders, n_free, draft, fresh, last, log_prob, D,
                 W, q_draft, u_stop, fstate, istate, mode, limit, row_cost, k_state,
                 mean, cuts, at_risk, progress, tau_out):
    """Decide each slot's kept length ``tau``, draw the residual pair, install the next draft.

    At a cut the residual is ``(pi p - q)_+`` over symbols when the draft chose the
    target's position, the target's marginal there otherwise. The next draft, the
    marginals of the row the block ended on (fresh after a block kept whole), is
    already in ``draft[s]`` (:func:`verify_pair_rows` put it there).
    When one free position remains and the draft is fresh, it is drawn at once.
    """
    n, q = draft.shape[1], draft.shape[2]
    weights = np.empty(q)
    for a in range(samples.shape[0]):
        s = samples[a]
        kk = k[a]
        tau = kept_length(BLOCK if rule == UNCHECKED_POSITIONS else rule, u_stop, fstate,
                          istate, a, kk)
        for i in range(tau):
            x[s, D[a, i]] = W[a, i]
            orders[s, t[a] + i] = D[a, i]
        if tau < kk:
            b = istate[a, CAND_POS]
            marginal = draft[s, b]        # the candidate row's (or the fresh draft's)
            scale = math.exp(fstate[a, CAND_LOG_PI]) if rule != TOKEN else 1.0
            total = 0.0
            for y in range(q):
                d = marginal[y]
                if istate[a, CAND_MATCH]:
                    d = scale * marginal[y] - q_draft[a, tau, y]
                weights[y] = d if d > 0.0 else 0.0
                total += weights[y]
            if total <= TINY:                     # that branch has ~0 probability
                for y in range(q):
                    weights[y] = marginal[y]
            y = draw_categorical(weights, next_double(rng, s))
            log_prob[s] += fstate[a, CAND_LOG_SUM] + math.log(marginal[y])
            x[s, b] = y
            orders[s, t[a] + tau] = b
            new_t = t[a] + tau + 1
            fresh[s] = False
            last[s, 0], last[s, 1] = b, y
        else:
            log_prob[s] += fstate[a, LOG_SUM]
            new_t = t[a] + kk
            fresh[s] = istate[a, FULL_ROW] >= 0
            last[s, 0] = -1
        tau_out[a] = tau
        progress[s] = new_t
        update_block_size(mode, limit, row_cost, k_state, mean, cuts, at_risk, s, kk, tau)
        if fresh[s] and n_free[s] - new_t == 1:   # the last position, from fresh marginals
            for b in range(n):
                if x[s, b] < 0:
                    y = draw_categorical(draft[s, b], next_double(rng, s))
                    x[s, b] = y
                    orders[s, new_t] = b
                    log_prob[s] += math.log(draft[s, b, y])
                    progress[s] = new_t + 1


class ConfidenceSampler(SamplerBase):
    """All samples of one ``order="confidence"`` call (see the module docstring).

    Parameters
    ----------
    model, streams, method, block_size, row_cost, given
        As for :class:`fastspec.ar.sampler.ARSampler`.
    rule : int, optional
        Verification rule overriding the method's (tests: ``UNVERIFIED``, and
        :data:`UNCHECKED_POSITIONS`, which takes drafted positions unchecked).
    policy : numba.njit function, optional
        Chooses the position of each step instead of the confidence rule:
        ``policy(marginals, positions) -> position``, one context's normalised
        marginals at its free positions (float64 ``(F, q)``, ascending positions,
        int64 ``(F,)``), returning one of them and depending on nothing else.
    """

    def __init__(self, model, streams, *, method, block_size, row_cost, given, rule=None,
                 policy=None):
        n, q, S = model.n, model.q, len(streams)
        given = check_given(given, n, q, S)
        self.model, self.rng, self.method = model, streams.states, method
        self.rule = rule if rule is not None else RULES.get(method, BLOCK)
        self.x = np.broadcast_to(given, (S, n)).copy()
        self.n_free = (self.x < 0).sum(axis=1).astype(np.int64)
        self.n_steps = int(self.n_free.max(initial=0))
        self.stop = self.n_free                   # (SamplerBase: where each sample stops)
        self.sizer = BlockSizer(1 if method == "sequential" else block_size, self.n_free,
                                row_cost)
        self.orders = np.full((S, n), -1, dtype=np.int64)
        # Blocks never shorter than their first (ceil(sqrt(free positions))): a round's
        # rows after a cut still teach the neighbour table. Measured on the character
        # chain, n = 128, 2 x 16 samples, rounds per sample block / token and rows:
        # no floor 35.6 / 38.0, 2.9 n; this floor 36.0 / 35.5, 3.9 n; twice it
        # 36.6 / 36.4, 6.6 n (before the probe rows: 42.8, 41.4, 39.6 for block).
        self.k_floor = self.sizer.k.copy()
        self.draft = np.zeros((S, n, q))
        # The neighbour table: per sample, side (left, right) and symbol w, the sum of
        # the marginals the oracle gave next to a pinned w, and how many (section 8).
        self.table = np.zeros((S, 2, q, q))
        self.counts = np.zeros((S, 2, q))
        self.last = np.full((S, 2), -1, dtype=np.int64)   # a stale draft's residual pair
        self.fresh = np.zeros(S, dtype=np.bool_)
        self.has_draft = np.zeros(S, dtype=np.bool_)
        self.waiting = np.zeros(S, dtype=np.bool_)
        self.steps = np.zeros(S, dtype=np.int64)  # (SamplerBase: each sample's progress)
        self.log_prob = np.zeros(S)
        self.log = RoundLog.empty(S)
        self._conf = np.empty(n)
        self.policy = policy
        self._buf_m, self._buf_p = np.empty((n, q)), np.empty(n, dtype=np.int64)
        self._ones = np.ones(n)
        self._dist = np.empty((n, q))
        self._totals = np.empty(n)
        self._tol = 0.0
        self._where = "round 0"
        self._r = None

    # -- the round protocol (fastspec._driver.BatchSampler) -------------------------------
    def plan(self):
        r = _Round()
        zeros = np.zeros_like(self.steps)
        (r.samples, r.t, r.k, r.first_row, r.row_start, _, k_max,
         _) = plan_round(self.sizer, self.steps, self.n_free, self.waiting, self.n_free,
                         self.has_draft, self.fresh, zeros, self.log)
        A, q = r.samples.size, self.model.q
        if A == 0:
            return 0
        r.D = np.zeros((A, k_max), dtype=np.int64)
        r.W = np.zeros((A, k_max), dtype=np.int64)
        r.q_at = np.empty((A, k_max))
        r.q_draft = np.empty((A, k_max, q))
        r.u_stop = np.empty((A, k_max + 1))
        r.fstate = np.empty((A, N_FSTATE))
        r.istate = np.empty((A, N_ISTATE + 2), dtype=np.int64)
        r.err = np.zeros((A, 3), dtype=np.int64)
        if self.sizer.mode == COST:
            self.sizer.reserve(r.k)
        self._add_probes(r)
        policy_err = np.zeros(A, dtype=np.int64)
        draft_pairs(self.rng, r.samples, r.t, r.k, self.fresh, self.x, self.draft, self.table,
                    self.counts, self.last, r.D, r.W, r.q_at, r.q_draft, r.u_stop, r.fstate,
                    r.istate, self._conf, self._dist, self.policy, self._buf_m,
                    self._buf_p, self._ones, policy_err)
        if policy_err.any():
            s = int(r.samples[np.flatnonzero(policy_err)[0]])
            raise ValueError(f"order=: the policy returned a position that is not one of the "
                             f"free positions it was given, drafting sample {s} (round "
                             f"{int(self.log.rounds.max(initial=0))}); return one of positions")
        rows = int(r.row_start[-1])
        r.row_slot = np.repeat(np.arange(A), np.diff(r.row_start))
        r.row_i = np.arange(rows) - r.row_start[r.row_slot] + r.first_row[r.row_slot]
        if self.model.positions:     # every free position of each row's context
            k = r.k[r.row_slot]
            free = (self.n_free[r.samples[r.row_slot]] - r.t[r.row_slot]
                    - np.minimum(r.row_i, k) - (r.row_i > k))
            self.log.positions[r.samples] += np.bincount(
                r.row_slot, weights=free, minlength=A).astype(np.int64)
        self._r = r
        return rows

    def _add_probes(self, r):
        """First round of a speculative method: after each sample's row 0, ``q`` probe
        rows pin each symbol in turn at its middle free position, so that the
        neighbour table knows every symbol's neighbours before the first draft
        (measured on the character chain: docs/ALGORITHMS.md, section 8). Rows only,
        never a round."""
        r.probe = np.full(r.samples.size, -1, dtype=np.int64)
        q = self.model.q
        if self.method == "sequential" or q > PROBE_MAX_Q:
            return
        first = (r.k == 0) & (self.n_free[r.samples] >= 2)
        if not first.any():
            return
        for a in np.flatnonzero(first):
            free = np.flatnonzero(self.x[r.samples[a]] < 0)
            r.probe[a] = free[free.size // 2]
        extra = np.where(first, q, 0)
        r.row_start = r.row_start + np.concatenate([[0], np.cumsum(extra)])
        self.log.rows[r.samples] += extra

    @property
    def dense_positions(self):
        """Positions a row costs when the oracle answers all of them (None: counted)."""
        return None if self.model.positions else self.model.n

    def contexts(self, start, stop):
        """Contexts of rows ``start .. stop - 1``: the sample's context with its row's
        first ``i`` drafted pairs pinned, int64 ``(stop - start, n)``."""
        r = self._r
        slot, i = r.row_slot[start:stop], r.row_i[start:stop]
        out = self.x[r.samples[slot]]
        k = r.k[slot]
        rows, cols = np.nonzero(np.arange(r.D.shape[1]) < np.minimum(i, k)[:, None])
        out[rows, r.D[slot[rows], cols]] = r.W[slot[rows], cols]
        probe = np.flatnonzero(i > k)                  # probe rows: one symbol at the probe
        out[probe, r.probe[slot[probe]]] = i[probe] - k[probe] - 1
        return out

    def request(self, start, stop):
        ctx = self.contexts(start, stop)
        if not self.model.positions:
            return ctx
        free = ctx < 0
        width = max(1, int(free.sum(axis=1).max(initial=0)))
        rank = np.argsort(~free, axis=1, kind="stable")[:, :width]
        positions = np.where(np.take_along_axis(free, rank, axis=1), rank, -1)
        return ctx, positions.astype(np.int64)

    def consume(self, answer, start, stop, where):
        probs, tol = answer
        r = self._r
        if self.model.positions:     # lay the listed positions out densely
            positions = self.request(start, stop)[1]
            dense = np.zeros((stop - start, self.model.n, self.model.q), dtype=probs.dtype)
            rows, j = np.nonzero(positions >= 0)
            dense[rows, positions[rows, j]] = probs[rows, j]
            probs = dense
        self._tol = max(self._tol, tol)
        self._where = where.split(",")[0]
        verify_pair_rows(self.rule, probs, tol, start, stop, r.samples, r.t, r.k, r.first_row,
                         r.row_start, self.x, self.table, self.counts, self.last, r.probe, r.D,
                         r.W, r.q_at,
                         r.q_draft, r.u_stop, r.fstate, r.istate, self.draft, r.err,
                         self._conf, self._totals, self.policy, self._buf_m,
                         self._buf_p)
        if r.err[:, 0].any():
            a = int(np.flatnonzero(r.err[:, 0])[0])
            code, g, b = (int(v) for v in r.err[a])
            s = int(r.samples[a])
            if code == POLICY:
                raise ValueError(f"{where}: the order= policy returned a position that is not "
                                 f"one of the free positions it was given (row {g - start}, "
                                 f"sample {s}); return one of positions")
            raise OracleError(self.model.invalid_answer_message(
                where, g - start, s, self.contexts(g, g + 1)[0], b, probs[g - start, b],
                code, tol))

    def finish(self, where="round"):
        r = self._r
        if r is None:
            return
        tau = np.empty(r.samples.size, dtype=np.int64)
        settle_pairs(self.rng, self.rule, r.samples, r.t, r.k, self.x, self.orders, self.n_free,
                     self.draft, self.fresh, self.last, self.log_prob, r.D, r.W, r.q_draft,
                     r.u_stop, r.fstate,
                     r.istate, *self.sizer.arrays(), self.steps, tau)
        if self.sizer.mode == DEFAULT:
            self.sizer.k[:] = np.maximum(self.sizer.k, self.k_floor)
        self._settled(r, tau, where)

    def row_bytes(self):
        """A row's context and its dense answer (float64)."""
        n, q = self.model.n, self.model.q
        return 8 * (n + n * q)

    def result(self, stats):
        from .._result import SampleResult
        return SampleResult(samples=self.x, stats=stats, orders=self.orders,
                            log_prob=self.log_prob)
