"""Speculative rejection sampling for AR models (see :mod:`fastspec._srs`).

A sample's block ``B`` is drafted from its current marginals ``nu_B``; its
proposals are block-method samples of the positions of ``B`` given its context,
started from the marginals at that context (fresh) and returning
``log mu_B(X)``; ``log nu_B(X)`` is read off the sample's draft. The sampler
does all of this through its side of the door,
:class:`fastspec._srs.SrsHost` (``ARSampler.proposals`` and the methods after it).
"""

import numpy as np

from .._rules import SRS
from .._srs import SrsBase
from .sampler import ARSampler


class ARSrsSampler(SrsBase):
    """All samples of one AR srs call."""

    def __init__(self, model, streams, *, block_size, row_cost, order, given, parallel=None):
        super().__init__(ARSampler(model, streams, method="srs", block_size=block_size,
                                   row_cost=None, order=order, given=given, rule=SRS,
                                   parallel=parallel))

    @staticmethod
    def _slice_answer(answer, lo, hi):
        probs, tol = answer
        return probs[lo:hi], tol

    @staticmethod
    def _init_rows(init, p):
        return init[p:p + 1]

    @staticmethod
    def _stack_init(parts):
        width = max(part.shape[1] for part in parts)
        out = np.zeros((sum(part.shape[0] for part in parts), width, parts[0].shape[2]))
        row = 0
        for part in parts:
            out[row:row + part.shape[0], :part.shape[1]] = part
            row += part.shape[0]
        return out
