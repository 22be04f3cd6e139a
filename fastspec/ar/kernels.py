"""Numba kernels of the batched AR sampler (docs/ALGORITHMS.md, sections 2-3).

Every kernel loops over *slots* (the unfinished samples of a round, ``samples[a]``
is the sample in slot ``a``) or over request rows with ``prange``; each iteration
writes only its own slot's or row's outputs and draws randomness only from its own
sample's stream (:mod:`fastspec._seeds`), so the serial and parallel twins agree
bit for bit, whatever ``NUMBA_NUM_THREADS``.

Conventions for one block of sample ``s`` at progress ``t`` (positions
``orders[s, :t]`` already drawn): block positions ``b_i = orders[s, t + i]``,
``i < k``; draft ``W_i ~ q_i = draft[s, b_i]``; context ``C_i`` = the current
context ``x[s]`` with ``W_0 .. W_{i-1}`` pinned (``C_0 = x[s]``), whose marginals
give the target ``p_i`` at ``b_i`` and, for the last row ``C_k``, the next
block's draft. The draft marginals are kept by order index, not position: sample
``s``'s draft for order index ``o`` is ``draft[s, o % C]`` (a ring of ``C`` rows,
at least the longest block or window in flight), so a sample holds ``O(C q)``,
not ``O(n q)``. Row ``i = 0`` is not asked when the draft is fresh (it would
return the draft itself), nor row ``k`` when the block ends the sequence.

State tuples passed to the kernels (``S`` samples, ``A`` slots of the round,
``n`` positions, ``q`` symbols, ``C`` ring rows, ``k_max`` the round's longest
block, ``w_max`` its longest window)::

    rnd = (samples, t, k, first_row, row_start)            the round (fastspec._sizer)
      samples: int64 (A,)        sample in each slot
      t: int64 (A,)              its progress: order indices drawn before the block
      k: int64 (A,)              its block's draft count
      first_row: int64 (A,)      first row asked (1 when the draft is fresh, else 0)
      row_start: int64 (A + 1,)  slot a owns the round's rows row_start[a] .. row_start[a+1]-1
    held = (x, orders, n_free, n_order, draft, fresh, log_prob, progress)   per sample
      x: int64 (S, n)            the sample (-1 at positions not drawn yet)
      orders: int64 (S, n)       its order of positions, -1 padded
      n_free: int64 (S,)         order indices it draws
      n_order: int64 (S,)        order indices it holds (srs proposals: > n_free)
      draft: float64 (S, C, q)   draft marginal of order index o at draft[s, o % C]
      fresh: bool (S,)           the draft at t is the exact marginal there
      log_prob: float64 (S,)     log probability of the values drawn
      progress: int64 (S,)       order indices drawn
    drafted = (W, q_at)                                    per slot
      W: int64 (A, k_max)        draft values W_i
      q_at: float64 (A, k_max)   their draft probabilities q_i(W_i)
    stream = (u_stop, fstate, istate)                      per slot (fastspec._rules)
    found = (cand_target, cand_win, row_win, spacing, ckpt_win, wstate)
                                           what the rows gave
      cand_target: float64 (A, q)          per slot: the stop candidate's target marginal
      cand_win: float (A, w_max, q)        per slot: the next draft: marginals after the
                                           stop candidate (read at its checkpoint's row),
                                           or after the block once row k keeps it whole
      row_win: int64 (rows,)               per round row: order indices its window holds
                                           (fastspec._planner.fill_row_windows)
      spacing: int64 (A,)                  per slot: its checkpoint rows' spacing
                                           (fastspec._planner.checkpoint_of)
      ckpt_win: float (A or 0, w_max, q)   per slot: the window of its latest checkpoint
                                           row of an earlier call (when a round spans calls)
      wstate: int64 (A, 2)                 per slot: the round row held in ckpt_win (-1:
                                           none), and 1 when the candidate's window is that
                                           one (still in ckpt_win, not yet in cand_win)
    sizer = BlockSizer.arrays() (fastspec._sizer)
"""

import math

import numpy as np
from numba import prange

from .._jit import kernel, twin
from .._planner import checkpoint_of
from .._rules import (ACCEPT, BLOCK, CAND, CAND_LOG_PI, CAND_LOG_SUM, CAND_ROW, DEAD, FULL_ROW,
                      LOG_PI, LOG_SUM, SRS, TINY, kept_length, reset_slot, row_of, rows_of_slot,
                      slots_of_rows, verify_draft_row, verify_last_row)
from .._seeds import next_double, shuffle
from .._sizer import FIXED, update as update_block_size

# The running log sum of the streaming state (fastspec._rules) is log p of the drafts read.
LOGP, CAND_LOGP = LOG_SUM, CAND_LOG_SUM

# Error codes of an invalid marginal row.
NON_FINITE, NEGATIVE, BAD_SUM = 1, 2, 3


@kernel
def draw_categorical(weights, u):
    """Inverse-CDF draw from non-negative ``weights`` (unnormalised) with uniform ``u``.

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


@kernel
def check_marginal(row, tol):
    """``(sum, code)`` of one marginal (1-D, any float dtype): code 0 if it is a distribution."""
    total = 0.0
    for y in range(row.shape[0]):
        v = row[y]
        if not math.isfinite(v):
            return total, NON_FINITE
        if v < 0.0:
            return total, NEGATIVE
        total += v
    if abs(total - 1.0) > tol or total <= 0.0:
        return total, BAD_SUM
    return total, 0


@twin
def random_orders(rng, given, orders, n_free):
    """Free positions of each sample in a uniformly random order, then -1 padding.

    ``given`` is (1, n) (shared) or (S, n); an entry >= 0 is pinned.
    """
    n = orders.shape[1]
    for s in prange(orders.shape[0]):
        g = 0 if given.shape[0] == 1 else np.int64(s)  # (a parallel loop index is unsigned)
        c = 0
        for i in range(n):
            if given[g, i] < 0:
                orders[s, c] = i
                c += 1
        n_free[s] = c
        for i in range(c, n):
            orders[s, i] = -1
        shuffle(rng, s, orders[s], c)


@twin
def draft_blocks(
    rng,          # uint64 (S, 4): PCG64 state of each sample's stream (fastspec._seeds)
    rnd,          # the round (module doc)
    held,         # per-sample state (module doc)
    drafted,      # (W, q_at), written
    stream,       # (u_stop, fstate, istate), written (fastspec._rules)
    cand_target,  # float64 (A, q): row 0's target when the draft is fresh, written
):
    """Draw each slot's drafts ``W_i ~ draft[s, b_i]`` and its ``k + 1`` stop uniforms.

    Also resets the slot's streaming state. With a fresh draft, row 0 is not
    asked: its target is the draft itself (ratio 1, residual 0), so it is
    accounted for here.
    """
    samples, t, k, _, _ = rnd
    draft, fresh = held[4], held[5]
    W, q_at = drafted
    u_stop, fstate, istate = stream
    for a in prange(samples.shape[0]):
        s = samples[a]
        for i in range(k[a]):
            o = (t[a] + i) % draft.shape[1]
            w = draw_categorical(draft[s, o], next_double(rng, s))
            W[a, i] = w
            q_at[a, i] = draft[s, o, w]
        for i in range(k[a] + 1):
            u_stop[a, i] = next_double(rng, s)
        reset_slot(fstate, istate, a)
        if fresh[s] and k[a] > 0:
            cand_target[a, :] = draft[s, t[a] % draft.shape[1], :]
            fstate[a, LOGP] = math.log(q_at[a, 0])


@twin
def fill_contexts(
    rnd,     # the round (module doc)
    held,    # per-sample state (module doc): x, orders are read
    W,       # int64 (A, k_max): draft values
    start,   # int: first round row wanted
    out,     # int64 (K, n): contexts of rows start .. start + K - 1, written
):
    """Rows ``start .. start + len(out) - 1`` of the round's request: contexts ``C_i``."""
    samples, t, _, first_row, row_start = rnd
    x, orders = held[0], held[1]
    for r in prange(out.shape[0]):
        g = start + np.int64(r)  # (a parallel loop index is unsigned: keep integer arithmetic)
        a = np.searchsorted(row_start, g, side="right") - 1
        s = samples[a]
        i = g - row_start[a] + first_row[a]
        out[r, :] = x[s, :]
        for j in range(i):
            out[r, orders[s, t[a] + j]] = W[a, j]


@kernel(inline="always")
def column(dense, orders, s, o, base):
    """Where order index ``o`` of sample ``s`` sits in an answer row whose positions start at
    order index ``base``: the position itself (dense ``(K, n, q)`` answers) or ``o - base``
    (answers to the positions protocol, ``(K, W, q)``)."""
    return orders[s, o] if dense else o - base


@kernel
def _copy_window(probs, row, orders, s, first, length, out, dense, base):
    for j in range(length):
        c = column(dense, orders, s, first + j, base)
        for y in range(out.shape[1]):
            out[j, y] = probs[row, c, y]


@kernel(inline="always")
def _block_residual(probs, row, cb, total, draft, s, o, log_pi):
    """``R_i = sum_y (pi p_i(y) - q_i(y))_+`` of the block rule at draft index ``o``."""
    pi = math.exp(log_pi)
    residual = 0.0
    for y in range(draft.shape[2]):
        d = pi * (probs[row, cb, y] / total) - draft[s, o, y]
        if d > 0.0:
            residual += d
    return residual


@kernel(inline="always")
def _hold_checkpoint(probs, start, r0, r1, t, first_row, row_start, orders, n_order, s, a,
                     istate, cand_win, row_win, spacing, ckpt_win, wstate, dense):
    """Keep the window of slot ``a``'s latest checkpoint row among ``r0 .. r1 - 1`` in
    ``ckpt_win`` (its later rows come in a later call and may stop the block in its reach),
    first moving the candidate's window out of ``ckpt_win`` when it is still there.

    (Arrays, not the ``found`` tuple: see the comment in fastspec._rules on writes through
    a tuple inside an inlined function in a prange loop.)"""
    c = checkpoint_of(r1 - 1 - row_start[a] + first_row[a], first_row[a], spacing[a])
    gc = row_start[a] + c - first_row[a]
    if gc < r0 or gc == wstate[a, 0]:
        return
    if wstate[a, 1] == 1:
        i = istate[a, CAND]
        held = wstate[a, 0] - row_start[a] + first_row[a]
        length = min(row_win[wstate[a, 0]] - (i - held), n_order[s] - (t[a] + i + 1))
        for j in range(length):
            for y in range(cand_win.shape[2]):
                cand_win[a, j, y] = ckpt_win[a, i - held + j, y]
        wstate[a, 1] = 0
    first = t[a] + c + 1
    _copy_window(probs, gc - start, orders, s, first, min(row_win[gc], n_order[s] - first),
                 ckpt_win[a], dense, t[a] + c)
    wstate[a, 0] = gc


@twin
def verify_rows(
    rule,     # int: TOKEN, BLOCK, SRS or UNVERIFIED (fastspec._rules)
    answer,   # (dense, probs, tol): bool, float (K, n, q) if dense else (K, W, q), float
    start,    # int: round row of answer row 0
    stop,     # int: one past the round row of the last answer row
    rnd,      # the round (module doc)
    held,     # per-sample state (module doc): orders, n_order, draft are read
    drafted,  # (W, q_at) (module doc)
    stream,   # (u_stop, fstate, istate), updated (fastspec._rules)
    found,    # (cand_target, cand_win, row_win, spacing, ckpt_win, wstate), written
    err,      # int64 (A, 3): (code, round row, position) of an invalid row used, written
):
    """Read the answer rows ``start .. stop - 1`` (of whichever slots they belong to), in order.

    Keeps, per slot, the running log pi (block rule), the log-probability of the
    drafts so far, the latest stop candidate (its target marginal and, at the end
    of the chunk, the marginals of the positions after it from its checkpoint's
    row: the next draft if the block is cut there; fastspec._planner.checkpoint_of)
    and whether the whole block is kept (then row k's window is the next draft).
    When the slot's rows go on in a later call, the window of its latest checkpoint
    is kept in ``ckpt_win`` until they come. Rows after a draft of
    target probability 0 (block) or after the first rejection (token) are never
    used, so they are neither read nor checked. An invalid row that is used sets
    ``err[a] = (code, row, position)`` and stops the slot.

    With the ``SRS`` rule the running sum is ``log prod rho`` (uncapped) and the
    candidate is row 0: its window, the marginals at the context itself from
    the block's first position on, seeds the residual proposals.

    ``dense``: ``probs`` is ``(K, n, q)``; else ``(K, W, q)`` and row ``i`` of a
    block answers order indices ``t + i, t + i + 1, ..`` (the positions protocol,
    :meth:`fastspec.ar.sampler.ARSampler.request`).
    """
    dense, probs, tol = answer
    samples, t, k, first_row, row_start = rnd
    orders, n_order, draft = held[1], held[3], held[4]
    W, q_at = drafted
    u_stop, fstate, istate = stream
    cand_target, cand_win, row_win, spacing, ckpt_win, wstate = found
    slot_lo, slot_hi = slots_of_rows(row_start, start, stop)
    for a in prange(slot_lo, slot_hi):
        r0, r1 = rows_of_slot(row_start, a, start, stop)
        for g in range(r0, r1):           # (read inline, not by a helper: see fastspec._rules)
            if istate[a, DEAD]:
                break
            s, row, i = row_of(samples, row_start, first_row, start, a, g)
            if i == k[a]:                                 # row k: kept whole?
                verify_last_row(rule, u_stop, fstate, istate, a, k[a], g)
                continue
            b = orders[s, t[a] + i]
            cb = b if dense else 0
            total, code = check_marginal(probs[row, cb], tol)
            if code != 0:
                err[a, 0], err[a, 1], err[a, 2] = code, g, b
                istate[a, DEAD] = 1
                break
            p_w = probs[row, cb, W[a, i]] / total
            rho = p_w / q_at[a, i]
            log_rho = 0.0
            residual = 0.0
            if rule == BLOCK or rule == SRS:
                log_rho = math.log(rho) if rho > 0.0 else -math.inf
            if rule == BLOCK:
                residual = _block_residual(probs, row, cb, total, draft, s,
                                           (t[a] + i) % draft.shape[1], fstate[a, LOG_PI])
            if verify_draft_row(rule, u_stop, fstate, istate, a, i, g, rho, log_rho, residual):
                for y in range(draft.shape[2]):
                    cand_target[a, y] = probs[row, cb, y] / total
            if p_w > 0.0:
                fstate[a, LOGP] += math.log(p_w)
        s = samples[a]
        g = istate[a, CAND_ROW]
        if istate[a, ACCEPT] == 1:        # kept whole: the next draft is row k's window
            g = istate[a, FULL_ROW]
            first = t[a] + k[a]
            _copy_window(probs, g - start, orders, s, first,
                         min(row_win[g], n_order[s] - first), cand_win[a], dense, first)
            wstate[a, 1] = 0
        elif r0 <= g < r1:                # a new candidate: its window, from its checkpoint
            i = istate[a, CAND]
            c = checkpoint_of(i, first_row[a], spacing[a])
            gc = row_start[a] + c - first_row[a]
            if gc >= start:
                first = t[a] + i + (0 if rule == SRS else 1)
                _copy_window(probs, gc - start, orders, s, first,
                             min(row_win[gc] - (i - c), n_order[s] - first), cand_win[a],
                             dense, t[a] + c)
                wstate[a, 1] = 0
            else:                         # read in an earlier call: it is in ckpt_win
                wstate[a, 1] = 1
        if r1 < row_start[a + 1] and spacing[a] > 1 and rule != SRS and not istate[a, DEAD]:
            _hold_checkpoint(probs, start, r0, r1, t, first_row, row_start, orders, n_order, s,
                             a, istate, cand_win, row_win, spacing, ckpt_win, wstate, dense)


@kernel(inline="always")
def _draw_residual(rng, s, weights, scale, target, draft_row):
    """A draw from ``(scale target - draft_row)_+`` (from ``target`` when that mass is ~0)."""
    total = 0.0
    for y in range(weights.shape[0]):
        d = scale * target[y] - draft_row[y]
        weights[y] = d if d > 0.0 else 0.0
        total += weights[y]
    if total <= TINY:                             # that branch has ~0 probability
        for y in range(weights.shape[0]):
            weights[y] = target[y]
    return draw_categorical(weights, next_double(rng, s))


@kernel(inline="always")
def _install_draft(orders, draft, a, s, new_t, k_next, window, window_row, tol, err):
    """Copy ``window[:k_next]`` (checked, normalised) into sample ``s``'s draft ring."""
    for j in range(k_next):
        total, code = check_marginal(window[j], tol)
        if code != 0:
            err[a, 0], err[a, 1], err[a, 2] = code, window_row, orders[s, new_t + j]
            return
        o = (new_t + j) % draft.shape[1]
        for y in range(draft.shape[2]):
            draft[s, o, y] = window[j, y] / total


@twin
def settle_blocks(
    rng,      # uint64 (S, 4): PCG64 state of each sample's stream (fastspec._seeds)
    rule,     # int: TOKEN, BLOCK, SRS or UNVERIFIED (fastspec._rules)
    rnd,      # the round (module doc)
    held,     # per-sample state (module doc), updated
    W,        # int64 (A, k_max): draft values
    stream,   # (u_stop, fstate, istate) (fastspec._rules)
    found,    # (cand_target, cand_win, row_win, spacing, ckpt_win, wstate) (module doc)
    tol,      # float: tolerance on a marginal's sum (the oracle's)
    sizer,    # BlockSizer.arrays() (fastspec._sizer), updated
    tau_out,  # int64 (A,): kept length of each slot's block (-1: srs rejected), written
    err,      # int64 (A, 3): (code, round row, position) of an invalid window, written
):
    """Decide each slot's kept length ``tau``, draw the residual, install the next draft.

    Also updates the sample's block size, and draws the last free position
    directly when only one remains and the draft is fresh (no round needed;
    unless the order goes on, when the last round's marginals are wanted).
    With the ``SRS`` rule a rejected block sets ``tau_out = -1`` and leaves the
    sample as it was. When a sample reaches ``n_free`` with positions left in its
    order (``n_order``), the last row's window becomes its draft there (srs
    proposals hand it to their sample).
    """
    samples, t, k, first_row, row_start = rnd
    x, orders, n_free, n_order, draft, fresh, log_prob, progress = held
    u_stop, fstate, istate = stream
    cand_target, cand_win, row_win, spacing, ckpt_win, wstate = found
    mode, limit, row_cost, k_state, mean, cuts, at_risk = sizer
    for a in prange(samples.shape[0]):
        s = samples[a]
        kk = k[a]
        tau = kept_length(rule, u_stop, fstate, istate, a, kk)
        tau_out[a] = tau
        update_block_size(mode, limit, row_cost, k_state, mean, cuts, at_risk, s, kk, max(tau, 0))
        if tau < 0:                               # redrawn from the residual by the caller
            continue
        for i in range(tau):
            x[s, orders[s, t[a] + i]] = W[a, i]
        reach = 0
        if tau < kk:
            scale = math.exp(fstate[a, CAND_LOG_PI]) if rule == BLOCK else 1.0
            y = _draw_residual(rng, s, np.empty(draft.shape[2]), scale, cand_target[a],
                               draft[s, (t[a] + tau) % draft.shape[1]])
            x[s, orders[s, t[a] + tau]] = y
            log_prob[s] += fstate[a, CAND_LOGP] + math.log(cand_target[a, y])
            new_t = t[a] + tau + 1
            window_row = istate[a, CAND_ROW]
            fresh[s] = False
            # The next draft: the window of the checkpoint row at or before the stop.
            c = checkpoint_of(tau, first_row[a], spacing[a])
            if window_row >= 0:
                window_row = row_start[a] + c - first_row[a]
                reach = row_win[window_row] - (tau - c)
            window = ckpt_win[a, tau - c:] if wstate[a, 1] == 1 else cand_win[a]
        else:
            log_prob[s] += fstate[a, LOGP]
            new_t = t[a] + kk
            window_row = istate[a, FULL_ROW]
            fresh[s] = window_row >= 0
            if window_row >= 0:
                reach = row_win[window_row]
            window = cand_win[a]
        progress[s] = new_t
        remaining = n_free[s] - new_t
        if window_row < 0 or n_order[s] - new_t <= 0:
            continue
        # Install the next block's draft, as long as the sizer's choice and the window allow.
        if remaining > 0:
            k_next = limit if mode == FIXED else k_state[s]
            k_next = max(1, min(k_next, remaining, reach))
        else:
            k_next = min(reach, n_order[s] - new_t)
        _install_draft(orders, draft, a, s, new_t, k_next, window, window_row, tol, err)
        if fresh[s] and remaining == 1 and n_order[s] == n_free[s] and err[a, 0] == 0:
            o = new_t % draft.shape[1]
            y = draw_categorical(draft[s, o], next_double(rng, s))
            x[s, orders[s, new_t]] = y
            log_prob[s] += math.log(draft[s, o, y])
            progress[s] = new_t + 1


@twin
def find_invalid_rows(contexts, probs, tol, position, code):
    """Per row, the first free position whose marginal is not a distribution (code 0: valid)."""
    for r in prange(contexts.shape[0]):
        for i in range(contexts.shape[1]):
            if contexts[r, i] >= 0:
                continue
            _, c = check_marginal(probs[r, i], tol)
            if c != 0:
                position[r] = i
                code[r] = c
                break
