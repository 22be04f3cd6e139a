"""Block length for the next speculated block (DESIGN.md section 5).

The length may depend on the past (accepted lengths so far), never on the
current draft, so any rule here keeps the sampler exact.
"""

import math
import numbers

import numpy as np


def check_block_size(block_size):
    """Validate the user's ``block_size`` ("auto" or a positive int)."""
    if isinstance(block_size, str):
        if block_size != "auto":
            raise ValueError(f'block_size must be "auto" or a positive int, got {block_size!r}')
        return block_size
    if isinstance(block_size, (numbers.Integral, np.integer)) and not isinstance(block_size, bool):
        if block_size < 1:
            raise ValueError(f'block_size must be "auto" or a positive int, got {block_size}')
        return int(block_size)
    raise ValueError(f'block_size must be "auto" or a positive int, got {block_size!r}')


def check_row_cost(row_cost, method, block_size):
    """Validate ``row_cost`` (None, or a finite float > 0 for token/block with "auto")."""
    if row_cost is None:
        return None
    if isinstance(row_cost, bool) or not isinstance(row_cost, (numbers.Real, np.floating)):
        raise ValueError(f"row_cost must be None or a positive float, got {row_cost!r}")
    row_cost = float(row_cost)
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
    """Adaptive (or fixed) block length.

    With ``"auto"`` it starts at ``ceil(sqrt(total))``; a block accepted whole
    doubles the length (the draft is better than assumed), a block cut short
    sets it to ``GROW_AFTER_CUT`` times a running mean of positions advanced per
    block. The position after the cut is drawn anyway, so a round always
    advances by at least one step. With ``shrink_on_reject`` (srs, whose blocks
    are kept whole or redrawn from the residual) a rejected block halves it
    and an accepted one grows it by half.

    With ``row_cost`` (token / block only) it instead picks the k that
    maximises the expected advance per unit of oracle cost,
    ``E[min(A + 1, k)] / (share + row_cost * k)``. Here A is the number of
    drafts accepted before the first rejection, ``row_cost`` is the cost of one
    oracle row in units of one round's fixed cost, and ``share`` is this
    sample's share of that fixed cost (1 / samples per call). The law of A is
    a Kaplan-Meier estimate from past blocks (a whole block is a censored
    observation), with older blocks down-weighted. Where there is no data the
    estimate is optimistic, and k may at most double per round, as in the
    default rule.
    """

    #: Weight of a past block in the acceptance estimate, per newer block.
    COST_MEMORY = 0.8

    #: k after a cut, in units of the running mean advance. The stop time's law
    #: does not depend on k, so k only trades wasted rows for fewer cut-offs.
    #: Measured (8 samples, seed 1, MarkovChain ~[[e^2, 1], [1, e^2]], n = 4096):
    #: 1.5 -> 41.0 rounds, 1.58 n rows; 2 -> 37.1, 1.80 n; 2.5 -> 34.4, 2.05 n;
    #: 3 -> 33.1, 2.39 n. 2.5 keeps rows under the 2.5 n budget with a margin.
    GROW_AFTER_CUT = 2.5

    def __init__(self, block_size, total, shrink_on_reject=False, row_cost=None, share=1.0):
        self.fixed = None if block_size == "auto" else int(block_size)
        self.shrink_on_reject = shrink_on_reject
        self.k = max(1, math.ceil(math.sqrt(total)))
        self.mean_advance = None
        self.row_cost = row_cost
        self.share = float(share)
        if row_cost is not None:
            # Weighted counts, index a: blocks cut exactly at a accepted drafts, and
            # blocks that could have been cut at a (at risk: accepted >= a and k > a).
            self._cuts = np.zeros(self.k + 1)
            self._at_risk = np.zeros(self.k + 1)

    def propose(self, remaining):
        """Length of the next block, at most ``remaining``."""
        k = self.fixed if self.fixed is not None else self.k
        return int(max(1, min(k, remaining)))

    def update(self, k, accepted):
        """Record that ``accepted`` of ``k`` drafted positions were kept."""
        if self.fixed is not None:
            return
        if self.row_cost is not None:
            self._update_cost_aware(k, accepted)
            return
        if self.shrink_on_reject:
            # srs keeps a block whole or redraws it from the residual, which costs
            # several rounds: x1.5 on acceptance and x0.5 on rejection balance at a
            # whole-block acceptance rate of about 0.63. Measured on CurieWeiss(1024),
            # 16 samples, mean rounds / rows per n: x1.25 32.8 / 10.9, x1.5 19.5 / 7.8,
            # x2 34.6 / 30.1 (srs has heavy tails: medians 18.5, 13.5, 17).
            self.k = max(k + 1, math.ceil(1.5 * k)) if accepted >= k else max(1, k // 2)
            return
        if accepted >= k:
            self.k = max(self.k, 2 * k)
            return
        advance = accepted + 1
        self.mean_advance = advance if self.mean_advance is None else (
            0.5 * self.mean_advance + 0.5 * advance)
        self.k = max(1, math.ceil(self.GROW_AFTER_CUT * self.mean_advance))

    def _update_cost_aware(self, k, accepted):
        k_max = 2 * k
        if self._cuts.size < k_max + 1:
            grow = k_max + 1 - self._cuts.size
            self._cuts = np.concatenate([self._cuts, np.zeros(grow)])
            self._at_risk = np.concatenate([self._at_risk, np.zeros(grow)])
        self._cuts *= self.COST_MEMORY
        self._at_risk *= self.COST_MEMORY
        a = min(accepted, k)
        if a < k:                               # cut at a: at risk at 0..a, event at a
            self._at_risk[:a + 1] += 1.0
            self._cuts[a] += 1.0
        else:                                   # whole block: survived 0..k-1
            self._at_risk[:k] += 1.0
        hazard = np.divide(self._cuts[:k_max], self._at_risk[:k_max],
                           out=np.zeros(k_max), where=self._at_risk[:k_max] > 0)
        # survival[a] = P(A >= a), a = 0..k_max-1; expected advance of a block of
        # length j is sum_{a < j} P(A >= a).
        survival = np.concatenate([[1.0], np.cumprod(1.0 - hazard)[:-1]])
        j = np.arange(1, k_max + 1)
        value = np.cumsum(survival) / (self.share + self.row_cost * j)
        self.k = int(j[np.argmax(value)])
