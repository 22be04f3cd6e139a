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

# Per-slot streaming state both pipelines keep while a round's rows arrive: integer
# columns of ``istate``; column 0 of ``fstate`` is the running log pi (log prod rho
# for SRS), the pipelines add their own float columns after it.
DEAD, CAND, CAND_ROW, ACCEPT, FULL_ROW = 0, 1, 2, 3, 4
N_ISTATE = 5
LOG_PI = 0


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
