"""Speculative rejection sampling for diffusion chains (see :mod:`fastspec._srs`).

A sample's block is ``k`` steps drafted with the denoiser frozen (``nu_B``); its
proposals are block-method runs of the same ``k`` steps from the sample's state,
started from the denoiser there (fresh), each summing ``log mu_B(X) - log nu_B(X)``
of its path against the sample's frozen draft as it goes
(:func:`fastspec.diffusion.kernels.reference_term`). The sampler does all of
this through its side of the door, :class:`fastspec._srs.SrsHost`
(``DiffusionSampler.proposals`` and the methods after it).
"""

import numpy as np

from .._rules import SRS
from .._srs import SrsBase
from .sampler import DiffusionSampler


class DiffusionSrsSampler(SrsBase):
    """All samples of one diffusion srs call."""

    def __init__(self, model, streams, *, schedule, block_size, row_cost, parallel=None):
        super().__init__(DiffusionSampler(model, streams, method="srs", schedule=schedule,
                                          block_size=block_size, row_cost=None, rule=SRS,
                                          parallel=parallel))

    @staticmethod
    def _slice_answer(answer, lo, hi):
        return answer[lo:hi]

    @staticmethod
    def _init_rows(init, p):
        return init[p:p + 1]

    @staticmethod
    def _stack_init(parts):
        return np.concatenate(parts)
