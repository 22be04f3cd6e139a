"""Draft models: a cheap model drafts each speculated block (docs/ALGORITHMS.md, section 7).

``fastspec.sample(model, draft=cheap)`` drafts every block step by step from
``cheap`` (an :class:`fastspec.ARModel` for an AR target, a
:class:`fastspec.DiffusionModel` for a diffusion target): one call of the draft
model per drafted step, batched over the round's samples, each step conditioned
on the ones drafted before it, and by default anchored on the target's own
values from its last round (:mod:`fastspec.ar.drafted`,
:mod:`fastspec.diffusion.drafted`). The target verifies the block in one round
with the usual rules, so the law is still the target's sequential chain. This
module holds what both pipelines share: the argument check and
:class:`Drafter`, which calls the draft model in chunks of at most ``max_rows``
rows and counts its calls, rows and seconds apart from the target's.
"""

from ._driver import CallCounter, rows_per_call
from ._errors import OracleError


def check_draft(draft, model, method):
    """Validate ``draft`` against the target ``model`` and the method that runs.

    Raises
    ------
    TypeError
        If ``draft`` is not a model of the target's family.
    ValueError
        If its sizes differ from the target's, or ``method`` cannot use a draft model.
    """
    from .ar.oracle import ARModel
    from .diffusion.oracle import DiffusionModel

    family = ARModel if isinstance(model, ARModel) else DiffusionModel
    if not isinstance(draft, family):
        raise TypeError(f"draft must be a fastspec.{family.__name__} for a target "
                        f"{type(model).__name__} (the same family), got {type(draft).__name__}")
    if family is ARModel and (draft.n, draft.q) != (model.n, model.q):
        raise ValueError(f"draft must have the target's n and q: the draft has n={draft.n}, "
                         f"q={draft.q}, the target n={model.n}, q={model.q}")
    if family is DiffusionModel and draft.dim != model.dim:
        raise ValueError(f"draft must have the target's dim: the draft has dim={draft.dim}, "
                         f"the target dim={model.dim}")
    if method == "sequential":
        raise ValueError('method="sequential" has no drafts (it asks the target for every '
                         'step); use draft= with method "block" (the default) or "token"')
    if method == "srs":
        raise ValueError('method="srs" cannot use a draft model: its residual proposals would '
                         "need the draft model's probability of every proposed block (k more "
                         'draft calls per proposal); use method "block" (the default) or '
                         '"token" with draft=')


class Drafter:
    """The draft model of one :func:`fastspec.sample` call, and what it cost.

    Parameters
    ----------
    model : ARModel or DiffusionModel
        The draft model (validated by :func:`check_draft`).
    max_rows : "auto", None or int
        As in :func:`fastspec.sample`: at most this many rows per draft call
        (``"auto"``: as many as keep one call under ``MEMORY_BUDGET``).
    anchored : bool, default True
        Anchor the draft on the target's values at the block's start (AR: the
        target's marginal times the draft model's ratio ``c_i / c_0``; diffusion:
        the target's denoiser value plus the cheap denoiser's change); False:
        the draft model alone (docs/ALGORITHMS.md, section 7, measures both).

    Attributes
    ----------
    counter : fastspec._driver.CallCounter
        Calls of the draft model and the seconds spent inside it.
    rows : int
        Rows (contexts or states) the draft model was asked for.
    """

    def __init__(self, model, max_rows, anchored=True):
        self.model = model
        self.max_rows = max_rows
        self.anchored = anchored
        self.counter = CallCounter()
        self.rows = 0

    def chunks(self, rows, row_bytes):
        """``(start, stop)`` of each call for ``rows`` rows of ``row_bytes`` bytes each."""
        step = rows_per_call(self.max_rows, row_bytes, rows)
        return [(start, min(rows, start + step)) for start in range(0, rows, max(1, step))]

    def call(self, args, rows, where):
        """One call of the draft model on ``args`` (``rows`` rows); its checked answer.

        The draft model's own exceptions pass through with a note naming the round
        and step; an answer of the wrong shape or type raises OracleError.
        """
        self.rows += rows
        try:
            return self.model.call_oracle(args, self.counter, where)
        except OracleError:
            raise
        except Exception as exc:
            exc.add_note(f"(raised by the draft model in {where} of fastspec.sample)")
            raise
