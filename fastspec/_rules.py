"""Methods and verification rules shared by both pipelines (docs/ALGORITHMS.md, section 3).

A speculated block of ``k`` draft positions is verified row by row, in order, as
the oracle's answers arrive (possibly in several calls of at most ``max_rows``
rows). Both rules decide the number ``tau`` of draft positions kept from
per-position ratios ``rho_i = p_i(W_i) / q_i(W_i)`` and, for the block rule,
residual masses ``R_i``:

* ``TOKEN``: keep ``W_i`` with probability ``min(1, rho_i)``, in order; ``tau`` is
  the first rejection.
* ``BLOCK``: ``pi_0 = 1``, ``pi_{i+1} = min(1, pi_i rho_i)``; keep all with
  probability ``pi_k``, else stop at the largest ``i < k`` whose own uniform falls
  below ``h_i = R_i / (R_i + 1 - pi_i)``. Deciding "from the end" with one
  uniform per decision is the same as keeping, while reading rows forward, the
  latest ``i`` that passed its test: that is what lets the rule stream.
* ``SRS`` (speculative rejection sampling): keep the whole block with
  probability ``min(1, prod_i rho_i)``, else nothing; the caller then draws the
  block from the residual ``(mu_B - nu_B)_+`` by rejection (fastspec.ar.srs).
* ``UNVERIFIED`` keeps every draft: not exact, the tests' negative control.

Each decision is written once, here, and both pipelines' kernels call it:
:func:`verify_draft_row` (row ``i < k``), :func:`verify_last_row` (row ``k``: kept
whole?) and :func:`kept_length` (at settle: ``tau``).
What a pipeline computes for them (the ratio, the residual mass) and what it keeps
of a row (the next draft) stay in its own kernels.
"""

import math

import numpy as np

from ._jit import kernel

#: Public methods. "auto" resolves to :data:`AUTO_METHOD`.
METHODS = ("auto", "sequential", "token", "block", "srs")
#: The methods that run ("auto" is one of them), and those that speculate.
CONCRETE_METHODS = METHODS[1:]
SPECULATIVE_METHODS = CONCRETE_METHODS[1:]

#: What "auto" runs: "block" had the fewest rounds on every model measured
#: (docs/BENCHMARKS.md, scaling study).
AUTO_METHOD = "block"

UNVERIFIED = 0
TOKEN = 1
BLOCK = 2
SRS = 3

#: Verification rule of each speculative method.
RULES = {"token": TOKEN, "block": BLOCK}

#: A residual mass below this is an event of probability ~0: draw from the target instead.
TINY = 1e-300

# Per-slot streaming state both pipelines keep while a round's rows arrive, the tuple
# ``stream = (u_stop, fstate, istate)`` of the kernels:
#   u_stop: float64 (A, k_max + 1)  slot a's stop uniforms: u_stop[a, i] decides row i < k,
#                                   u_stop[a, k] whether the whole block is kept
#   fstate: float64 (A, N_FSTATE)   columns below
#   istate: int64 (A, N_ISTATE)     columns below
# Integer columns: the slot is dead (no later row is used), the stop candidate's draft index
# and round row (-1: none yet), whether row k kept the whole block (-1: not decided) and its
# round row (-1: not kept).
# The functions below take its arrays, not the tuple: numba 0.68 loses the writes of an
# inlined function (inline="always") through a tuple of arrays inside a prange loop, and a
# function compiled on its own costs a call (and a reference count per array) per row.
# Even inlined, a helper costs the serial twins reference counting per array per call, so
# the pipelines write a row's reading in their own loops and hand the rules only these
# three arrays (a helper taking a row's 18-24 arrays made the serial verify_rows 2x (AR,
# 3000 samples, n = 64) and 5x (diffusion, 5000 rows, d = 16) slower).
DEAD, CAND, CAND_ROW, ACCEPT, FULL_ROW = 0, 1, 2, 3, 4
N_ISTATE = 5
# Float columns: the running log pi (log prod rho for SRS) and its value at the stop
# candidate; a running log sum of the pipeline's own (AR: log p of the drafts read so far,
# diffusion: the srs proposals' log mu / nu) and its value at the stop candidate.
LOG_PI, CAND_LOG_PI, LOG_SUM, CAND_LOG_SUM = 0, 1, 2, 3
N_FSTATE = 4


def check_method(method):
    """Validate ``method`` and resolve "auto"; returns the method that runs."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    return AUTO_METHOD if method == "auto" else method


@kernel(inline="always")
def stop_probability(residual, log_pi):
    """``h = R / (R + 1 - pi)`` of the block rule (1 when the denominator is 0)."""
    den = residual - math.expm1(log_pi)
    return 1.0 if den <= 0.0 else residual / den


@kernel(inline="always")
def keeps_whole(rule, log_pi, u):
    """Whether a block with running ``log_pi`` and its last uniform ``u`` is kept whole.

    Block and SRS keep it with probability ``min(1, pi)``; token and unverified
    keep every block that reached its end without a rejection.
    """
    return rule != BLOCK and rule != SRS or u < math.exp(min(0.0, log_pi))


@kernel(inline="always")
def reset_slot(fstate, istate, a):
    """Clear slot ``a``'s streaming state before its block's rows arrive."""
    fstate[a, :] = 0.0
    istate[a, DEAD] = 0
    istate[a, CAND] = 0
    istate[a, CAND_ROW] = -1
    istate[a, ACCEPT] = -1
    istate[a, FULL_ROW] = -1


@kernel(inline="always")
def verify_draft_row(rule, u_stop, fstate, istate, a, i, g, rho, log_rho, residual):
    """The rule's decision at draft row ``i < k`` of slot ``a`` (round row ``g``).

    Parameters (what each rule reads of them)
    ----------
    rule : int
        ``TOKEN``, ``BLOCK``, ``SRS`` or ``UNVERIFIED``.
    u_stop, fstate, istate : ndarray
        The streaming state (module comment).
    a, i, g : int
        Slot, draft index and round row.
    rho : float
        ``TOKEN``: the ratio ``p_i(W_i) / q_i(W_i)``, kept with probability ``min(1, rho)``.
    log_rho : float
        ``BLOCK`` and ``SRS``: ``log rho`` (``-inf`` when ``rho = 0``: no later row is used).
    residual : float
        ``BLOCK``: the residual mass ``R_i`` at the running ``pi`` (before this row).

    Returns
    -------
    bool
        Whether row ``i`` is the slot's new stop candidate (``CAND``, ``CAND_ROW``,
        ``CAND_LOG_PI`` and ``CAND_LOG_SUM`` are then set); the caller keeps what it needs
        of the row (the next draft if the block is cut there). Its running log sum is
        updated by the caller after this call.
    """
    log_pi = fstate[a, LOG_PI]
    candidate = False
    if rule == BLOCK:
        candidate = u_stop[a, i] < stop_probability(residual, log_pi)
        if candidate:
            fstate[a, CAND_LOG_PI] = log_pi
    elif rule == TOKEN:
        candidate = not u_stop[a, i] < rho
    elif rule == SRS:
        candidate = i == 0
    if candidate:
        istate[a, CAND] = i
        istate[a, CAND_ROW] = g
        fstate[a, CAND_LOG_SUM] = fstate[a, LOG_SUM]
        if rule == TOKEN:
            istate[a, DEAD] = 1                   # rows after the first rejection are unused
    if rule == BLOCK or rule == SRS:
        if log_rho == -math.inf:
            istate[a, DEAD] = 1                   # pi = 0: no later row can be used
        elif rule == BLOCK:
            fstate[a, LOG_PI] = min(0.0, log_pi + log_rho)
        else:
            fstate[a, LOG_PI] = log_pi + log_rho
    return candidate


@kernel(inline="always")
def verify_last_row(rule, u_stop, fstate, istate, a, k, g):
    """Row ``k`` of slot ``a`` (round row ``g``): whether the whole block is kept.

    Sets ``ACCEPT`` (and ``FULL_ROW = g`` when kept); the caller then keeps the
    row's answer (the next block's draft).
    """
    keep = keeps_whole(rule, fstate[a, LOG_PI], u_stop[a, k])
    istate[a, ACCEPT] = 1 if keep else 0
    if keep:
        istate[a, FULL_ROW] = g
    return keep


@kernel(inline="always")
def kept_length(rule, u_stop, fstate, istate, a, k):
    """Slot ``a``'s kept length ``tau`` (block of ``k`` drafts) at settle.

    Row ``k`` decided it if it was read; else (not asked, or the slot died
    before it) the block is kept whole with :func:`keeps_whole` unless the slot
    is dead. ``SRS`` keeps all or nothing: a rejected block returns -1 (the caller
    redraws it from the residual; the block-size update counts it as 0 kept).
    """
    accept = istate[a, ACCEPT]
    if accept < 0:                                # row k was not asked (or never reached)
        if istate[a, DEAD]:
            accept = 0
        else:
            accept = 1 if keeps_whole(rule, fstate[a, LOG_PI], u_stop[a, k]) else 0
    if rule == SRS and accept == 0:
        return -1
    return k if accept == 1 else istate[a, CAND]


@kernel(inline="always")
def slots_of_rows(row_start, start, stop):
    """``(lo, hi)``: slots ``lo .. hi - 1`` own the round's rows ``start .. stop - 1``.

    ``row_start`` is int64 ``(n_slots + 1,)``: slot ``a`` owns rows
    ``row_start[a] .. row_start[a + 1] - 1`` of the round (one call sees a run of them).
    """
    return (np.searchsorted(row_start, start, side="right") - 1,
            np.searchsorted(row_start, stop, side="left"))


@kernel(inline="always")
def rows_of_slot(row_start, a, start, stop):
    """``(r0, r1)``: the rows of slot ``a`` inside ``start .. stop - 1``."""
    return max(start, row_start[a]), min(stop, row_start[a + 1])


@kernel(inline="always")
def row_of(samples, row_start, first_row, start, a, g):
    """``(s, row, i)`` of round row ``g`` (slot ``a``): its sample, its index in the answer
    of the call starting at round row ``start``, and its draft index."""
    return samples[a], g - start, g - row_start[a] + first_row[a]
