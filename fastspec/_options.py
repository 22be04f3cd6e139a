"""The keywords of :func:`fastspec.sample` that a pipeline reads, as one typed record.

:func:`fastspec.sample` checks the keywords every family shares (``block_size``,
``row_cost``) and hands the rest, unread, to the model's
:meth:`~fastspec._driver.Pipeline.batch_sampler` in a :class:`SampleOptions`;
each family validates its own fields and refuses the others'
(:meth:`SampleOptions.refuse`). A new keyword is one field here (with its
default) and one line where :func:`fastspec.api._sample` builds the record.
"""

from dataclasses import dataclass
from typing import Any, Optional, Union

__all__ = ["SampleOptions", "AR_ONLY", "DIFFUSION_ONLY"]

#: Fields only an AR model reads, and only a diffusion model reads.
AR_ONLY = ("order", "given")
DIFFUSION_ONLY = ("schedule",)


@dataclass(frozen=True)
class SampleOptions:
    """What a pipeline needs of one :func:`fastspec.sample` call besides the method and seed.

    Attributes
    ----------
    block_size : "auto" or int
        Checked by :func:`fastspec._sizer.check_block_size`.
    row_cost : None or float
        Checked by :func:`fastspec._sizer.check_row_cost`.
    order : None or array_like of int
        AR only (:func:`fastspec.ar.sampler.check_order` checks it).
    given : None or array_like of int
        AR only (:func:`fastspec.ar.sampler.check_given` checks it).
    schedule : None or fastspec.schedules.Schedule
        Diffusion only (None: the default chain).
    draft : None or fastspec._drafts.Drafter
        The draft model (checked by :func:`fastspec._drafts.check_draft`) and
        its counters; None: autospeculation.
    parallel : None or bool
        Tests: force the serial (False) or parallel (True) kernels.
    rule : None or int
        Tests: override the verification rule (``fastspec._rules.UNVERIFIED``).
    """

    block_size: Union[str, int] = "auto"
    row_cost: Optional[float] = None
    order: Any = None
    given: Any = None
    schedule: Any = None
    draft: Any = None
    parallel: Optional[bool] = None
    rule: Optional[int] = None

    def refuse(self, fields, family, hint):
        """ValueError if one of ``fields`` (another family's keywords) was given.

        ``family`` names the family the field is for, ``hint`` what this one takes.
        """
        for name in fields:
            if getattr(self, name) is not None:
                raise ValueError(f"{name} is for {family} only; {hint}")
