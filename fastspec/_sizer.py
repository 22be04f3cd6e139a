"""Block length of each sample's next speculated block (docs/ALGORITHMS.md, section 4).

The length may depend on the sample's past (its accepted lengths so far), never
on the current draft, so every rule here keeps the samplers exact. It never
depends on other samples or on ``n_samples``, so sample ``i`` is the same in any
batch. The state of every sample lives in arrays; :func:`update` runs inside the
pipelines' numba kernels, one sample per thread.

Rules (``mode``); every length is capped by what remains, and the rules other
than ``FIXED`` by the sizer's ``limit`` when one is set (0: none):

* ``FIXED``: always ``block_size`` (the ``limit``).
* ``DEFAULT`` (fewest rounds): start at ``ceil(sqrt(steps))``; a block kept whole
  doubles the length; a block cut short sets it to ``GROW_AFTER_CUT`` times a
  running mean of the positions advanced per block.
* ``HALVING`` (srs, whose blocks are kept whole or redrawn from the residual at
  the cost of several rounds): ``SRS_GROW`` times the block after a block kept
  whole, ``SRS_SHRINK`` times after a rejected one.
* ``COST`` (``row_cost`` given): pick the ``k`` that maximises the expected
  advance per unit of oracle cost, ``E[min(A + 1, k)] / (1 + row_cost * k)``,
  with ``A`` the drafts accepted before the first rejection, estimated by
  Kaplan-Meier from past blocks (a block kept whole is censored), older blocks
  down-weighted by ``COST_MEMORY`` per block; ``k`` at most doubles per block.
"""

import math

import numpy as np

from ._checks import check_int, check_real
from ._jit import kernel

FIXED = 0
DEFAULT = 1
COST = 2
HALVING = 3

#: k after a cut, in units of the running mean advance. The stop time's law does
#: not depend on k, so k only trades wasted rows for fewer cut-offs. Measured (8
#: samples, seed 1, MarkovChain ~[[e^2, 1], [1, e^2]], n = 4096): 1.5 -> 41.0
#: rounds, 1.58 n rows; 2 -> 37.1, 1.80 n; 2.5 -> 34.4, 2.05 n; 3 -> 33.1, 2.39 n.
#: 2.5 keeps rows under the 2.5 n budget with a margin.
GROW_AFTER_CUT = 2.5

#: Weight of a past block in the cost-aware acceptance estimate, per newer block.
COST_MEMORY = 0.8

#: srs block length after a block kept whole / rejected, in units of that block.
#: Measured (12 seeds, one sample, rounds and rows per n; see docs/BENCHMARKS.md):
#: MarkovChain e^2 n=1024 / CurieWeiss n=1024 / MarkovChain n=256:
#: x1.5 / x0.5: 41.0, 3.76n / 12.8, 2.97n / 17.1, 2.82n;
#: x1.5 / x0.75: 38.0, 3.75n / 12.8, 1.81n / 16.7, 3.12n (with at most 4 proposals).
SRS_GROW, SRS_SHRINK = 1.5, 0.75


def check_block_size(block_size):
    """Validate the user's ``block_size``: "auto" or an int >= 1."""
    if isinstance(block_size, str):
        if block_size != "auto":
            raise ValueError(f'block_size must be "auto" or an int >= 1, got {block_size!r}')
        return block_size
    return check_int("block_size", block_size, 1, what=' or "auto"')


def check_row_cost(row_cost, method, block_size):
    """Validate ``row_cost`` (None, or a finite float > 0 for token/block with "auto")."""
    if row_cost is None:
        return None
    row_cost = check_real("row_cost", row_cost, "None or a positive float")
    if not (math.isfinite(row_cost) and row_cost > 0):
        raise ValueError(f"row_cost must be None or a finite float > 0, got {row_cost!r}")
    if method not in ("token", "block"):
        raise ValueError(f'row_cost sizes the blocks of method "token" or "block" ("auto"); '
                         f"method {method!r} does not use it")
    if block_size != "auto":
        raise ValueError(f'row_cost chooses the block size, so block_size must be "auto", '
                         f"got {block_size!r}")
    return row_cost


class BlockSizer:
    """Block-length state of ``n_samples`` samples.

    Parameters
    ----------
    block_size : "auto" or int
    steps : ndarray of int64, shape (n_samples,)
        Sequential steps of each sample (free positions, or chain steps); the
        default rule starts at ``ceil(sqrt(steps))``.
    row_cost : float or None
        Cost of one oracle row in units of a round's fixed cost per sample.
    halving : bool
        The srs rule (``HALVING``) for ``"auto"``.
    limit : int
        The longest block the rules of ``"auto"`` may propose (0: no limit); a
        fixed ``block_size`` is kept as given.
    """

    def __init__(self, block_size, steps, row_cost=None, halving=False, limit=0):
        steps = np.asarray(steps, dtype=np.int64)
        n = steps.shape[0]
        if block_size != "auto":
            self.mode, self.limit = FIXED, int(block_size)
        elif halving:
            self.mode, self.limit = HALVING, int(limit)
        else:
            self.mode, self.limit = (COST if row_cost is not None else DEFAULT), int(limit)
        self.row_cost = 0.0 if row_cost is None else float(row_cost)
        self.k = np.empty(n, dtype=np.int64)
        self.start(np.ceil(np.sqrt(steps)))
        self.mean = np.full(n, np.nan)
        width = 0 if self.mode != COST else int(2 * self.k.max(initial=1) + 2)
        self.cuts = np.zeros((n, width))
        self.at_risk = np.zeros((n, width))

    def start(self, k):
        """Set the first block length of every sample to ``k`` (at least 1, at most the
        ``limit``)."""
        k = np.maximum(1, k)
        if self.mode != FIXED and self.limit > 0:
            k = np.minimum(k, self.limit)
        self.k[:] = k

    def propose(self, samples, remaining):
        """Length of the next block of ``samples`` (int64 array), at most ``remaining``."""
        out = np.empty(samples.shape[0], dtype=np.int64)
        for i in range(samples.shape[0]):
            out[i] = next_block(self.mode, self.limit, self.k, samples[i], remaining[i])
        return out

    def max_next(self, samples, k):
        """The largest block the rule can propose after blocks ``k`` of ``samples``."""
        return np.array([max_next(self.mode, self.limit, self.k, self.mean, s, kk)
                         for s, kk in zip(samples, k)], dtype=np.int64)

    def reserve(self, k):
        """Make room in the cost-aware estimate for blocks of length up to ``max(k)``."""
        if self.mode == COST:
            need = int(2 * k.max(initial=1) + 2)
            if need > self.cuts.shape[1]:
                grow = need - self.cuts.shape[1]
                self.cuts = np.pad(self.cuts, ((0, 0), (0, grow)))
                self.at_risk = np.pad(self.at_risk, ((0, 0), (0, grow)))

    def arrays(self):
        """State passed to the kernels that call :func:`update`."""
        return (self.mode, self.limit, self.row_cost, self.k, self.mean, self.cuts, self.at_risk)


@kernel
def next_block(mode, limit, k_state, s, remaining):
    """Length of sample ``s``'s next block, at most ``remaining`` (and at least 1)."""
    k = limit if mode == FIXED else k_state[s]
    return max(1, min(k, remaining))


@kernel
def max_next(mode, limit, k_state, mean, s, k):
    """The largest block the rule can propose for sample ``s`` after a block of ``k``."""
    if mode == FIXED:
        return limit
    if mode == COST:
        longest = max(2 * k, k_state[s])
    elif mode == HALVING:
        longest = max(k_state[s], k + 1, int(math.ceil(SRS_GROW * k)))
    else:
        cut_mean = k if math.isnan(mean[s]) else 0.5 * mean[s] + 0.5 * k
        longest = max(k_state[s], 2 * k, int(math.ceil(GROW_AFTER_CUT * cut_mean)))
    return _within(longest, limit)


@kernel(inline="always")
def _within(k, limit):
    """``k`` capped by the sizer's ``limit`` (0: none)."""
    return min(k, limit) if limit > 0 else k


@kernel
def _mean_after_cut(mean_s, accepted):
    """The running mean advance after a block cut with ``accepted`` drafts kept."""
    advance = accepted + 1.0
    return advance if math.isnan(mean_s) else 0.5 * mean_s + 0.5 * advance


@kernel
def block_after(mode, limit, k_state, mean, s, k, accepted):
    """Sample ``s``'s block length after ``accepted`` of its ``k`` drafts are kept.

    What :func:`update` will set, known before the round: the planner asks each
    row only for the window that length needs. -1 under ``COST``, whose choice
    reads the whole estimate.
    """
    if mode == FIXED:
        return limit
    if k < 1:
        return k_state[s]
    if mode == HALVING:
        return _within(max(k + 1, int(math.ceil(SRS_GROW * k))) if accepted >= k
                       else max(1, int(SRS_SHRINK * k)), limit)
    if mode == DEFAULT:
        if accepted >= k:
            return _within(max(k_state[s], 2 * k), limit)
        return _within(max(1, int(math.ceil(GROW_AFTER_CUT * _mean_after_cut(mean[s],
                                                                            accepted)))), limit)
    return -1


@kernel
def update(mode, limit, row_cost, k_state, mean, cuts, at_risk, s, k, accepted):
    """Record that ``accepted`` of the ``k`` drafts of sample ``s``'s block were kept."""
    if mode == FIXED or k < 1:
        return
    if mode == HALVING or mode == DEFAULT:
        k_next = block_after(mode, limit, k_state, mean, s, k, accepted)
        if mode == DEFAULT and accepted < k:
            mean[s] = _mean_after_cut(mean[s], accepted)
        k_state[s] = k_next
        return
    # COST: weighted Kaplan-Meier estimate of the law of A, then the best k <= 2k.
    width = cuts.shape[1]
    for j in range(width):
        cuts[s, j] *= COST_MEMORY
        at_risk[s, j] *= COST_MEMORY
    a = min(accepted, k)
    if a < k:                  # cut at a: at risk at 0..a, event at a
        for j in range(a + 1):
            at_risk[s, j] += 1.0
        cuts[s, a] += 1.0
    else:                      # whole block: survived 0..k-1 (censored)
        for j in range(k):
            at_risk[s, j] += 1.0
    k_max = 2 * k
    survival = 1.0             # P(A >= j)
    advance = 0.0              # E[min(A + 1, j)] = sum_{i < j} P(A >= i)
    best, best_value = 1, -1.0
    for j in range(1, k_max + 1):
        advance += survival
        value = advance / (1.0 + row_cost * j)
        if value > best_value:
            best, best_value = j, value
        i = j - 1
        if at_risk[s, i] > 0.0:
            survival *= 1.0 - cuts[s, i] / at_risk[s, i]
    k_state[s] = _within(best, limit)
