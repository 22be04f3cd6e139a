"""AR blocks drafted by a draft model (``fastspec.sample(model, draft=cheap)``).

The round is the one of :mod:`fastspec.ar.sampler`; only the draft changes.
Block ``B = (b_0 .. b_{k-1})`` of sample ``s`` at progress ``t`` is drafted step by
step: for ``i = 1 .. k-1`` one call of the draft model, batched over the round's
samples, asks for the marginal of ``b_i`` at the context ``C_i`` (the current
context with ``W_0 .. W_{i-1}`` pinned; only ``b_i`` with the positions
protocol), and ``W_i`` is drawn from it with the sample's own stream. That
marginal ``q_i`` goes where autospeculation keeps its draft marginal, the ring
``draft[s, (t + i) % C]``, so the existing verification kernels decide.

Position ``b_0`` keeps the target's marginal the sampler already holds (fresh
after a block kept whole: always accepted and row 0 not asked; stale after a
cut), so the draft model is called ``k - 1`` times per round. A sample's first
round has no target marginal yet: all ``k`` positions come from the draft model,
and row 0 is asked. The target rows read only their block position and the
next one (``win_len`` 1): the next draft needs the target at one position only.
"""

import numpy as np
from numba import prange

from .._errors import OracleError
from .._jit import twin
from .._seeds import next_double
from . import kernels
from .kernels import check_marginal, column, draw_categorical
from .sampler import ARSampler


@twin
def draw_drafts(rng, dense, probs, tol, i, slots, samples, t, orders, draft, W, q_at, err):
    """Install row ``r`` of a draft model's answer as the draft of step ``i`` of slot ``slots[r]``.

    The marginal of ``b_i = orders[s, t + i]`` (column ``b_i`` of a dense
    ``(K, n, q)`` answer, column 0 of a positions answer ``(K, 1, q)``) is checked,
    renormalised into the ring ``draft[s, (t + i) % C]``, and ``W_i`` drawn from
    it with the sample's stream (``q_at`` its probability). An invalid marginal
    sets ``err[slot] = (code, r, b_i)``.
    """
    for r in prange(slots.shape[0]):
        a = slots[r]
        s = samples[a]
        o = t[a] + i
        b = orders[s, o]
        c = column(dense, orders, s, o, o)
        total, code = check_marginal(probs[r, c], tol)
        if code != 0:
            err[a, 0], err[a, 1], err[a, 2] = code, r, b
            continue
        ring = draft[s, o % draft.shape[1]]
        for y in range(ring.shape[0]):
            ring[y] = probs[r, c, y] / total
        w = draw_categorical(ring, next_double(rng, s))
        W[a, i] = w
        q_at[a, i] = ring[w]


class _OneAhead:
    """The sampler's :class:`fastspec._sizer.BlockSizer`, with the target's windows cut to
    one position: the next block's first draft is all the target must supply."""

    def __init__(self, sizer):
        self._sizer = sizer

    def __getattr__(self, name):
        return getattr(self._sizer, name)

    def plan(self, *args, **kwargs):
        samples, t, k, first_row, row_start, win_len, k_max, _ = self._sizer.plan(*args, **kwargs)
        return samples, t, k, first_row, row_start, np.minimum(win_len, 1), k_max, 1


class DraftedARSampler(ARSampler):
    """:class:`fastspec.ar.sampler.ARSampler` whose blocks a draft model drafts.

    Parameters
    ----------
    drafter : fastspec._drafts.Drafter
        The draft model (same ``n`` and ``q``) and its call counts.
    **options
        As for :class:`ARSampler` (method "token" or "block").
    """

    def __init__(self, model, streams, *, drafter, **options):
        super().__init__(model, streams, **options)
        self.drafter = drafter
        self.sizer = _OneAhead(self.sizer)
        # The first round drafts from the draft model instead of asking the target alone.
        self.has_draft[:] = True
        self.target_first = np.zeros(len(streams), dtype=np.bool_)   # b_0's draft is the target's
        self._round_no = 0

    def plan(self):
        rows = super().plan()
        if self._r is not None:
            self._draft_from_model(self._r)
            self._round_no += rows > 0
        return rows

    def finish(self):
        r = self._r
        super().finish()
        if r is not None:
            self.target_first[r.samples] = True

    def _draft_from_model(self, r):
        """Redraw ``W_i`` (and the ring's ``q_i``) from the draft model for every step the
        target does not draft, in order of ``i``, one batched call (or ``max_rows`` chunks)
        per step."""
        model, n = self.drafter.model, self.model.n
        first = self.target_first[r.samples].astype(np.int64)
        row_bytes = 8 * (n + (1 if model.positions else n) * (self.model.q + 1))
        err = np.zeros((r.samples.size, 3), dtype=np.int64)
        step_row = np.empty(r.samples.size, dtype=np.int64)
        for i in range(int(r.k.max(initial=0))):
            active = (r.k > i) & (first <= i)
            slots = np.flatnonzero(active)
            row_start = np.concatenate([[0], np.cumsum(active)]).astype(np.int64)
            step_row[:] = i          # fill_contexts: each active slot's one row is its C_i
            for start, stop in self.drafter.chunks(slots.size, row_bytes):
                ctx = np.empty((stop - start, n), dtype=np.int64)
                kernels.fill_contexts(self.parallel, self.x, r.samples, r.t, self.orders, r.W,
                                      step_row, row_start, start, ctx)
                part = slots[start:stop]
                args = ctx
                if model.positions:
                    args = (ctx, self.orders[r.samples[part], r.t[part] + i][:, None])
                where = f"draft model, round {self._round_no}, step {i}"
                probs, tol = self.drafter.call(args, stop - start, where)
                draw_drafts(self.parallel, self.rng, not model.positions, probs, tol, i, part,
                            r.samples, r.t, self.orders, self.draft, r.W, r.q_at, err)
                if err[:, 0].any():
                    a = int(np.flatnonzero(err[:, 0])[0])
                    code, row, b = (int(v) for v in err[a])
                    values = probs[row, b if not model.positions else 0]
                    raise OracleError(model.invalid_answer_message(
                        where, row, int(r.samples[a]), ctx[row], b,
                        np.asarray(values), code, tol))
