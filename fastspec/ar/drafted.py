"""AR blocks drafted by a draft model (``fastspec.sample(model, draft=cheap)``).

The round is the one of :mod:`fastspec.ar.sampler`; only the draft changes.
Block ``B = (b_0 .. b_{k-1})`` of sample ``s`` at progress ``t`` is drafted step by
step: for ``i = 1 .. k-1`` one call of the draft model, batched over the round's
samples, asks for the marginal ``c_i`` of ``b_i`` at the context ``C_i`` (the
current context with ``W_0 .. W_{i-1}`` pinned; only ``b_i`` with the positions
protocol), and ``W_i`` is drawn from the draft ``q_i`` with the sample's own
stream. ``q_i`` goes where autospeculation keeps its draft marginal, the ring
``draft[s, (t + i) % C]``, so the existing verification kernels decide:

* anchored (the default): ``q_i`` proportional to ``p_i c_i / c_0``, with ``p_i``
  the target's marginal of ``b_i`` the ring holds (from the row the last block
  ended on: autospeculation's draft) and ``c_0`` the draft model's marginal of
  ``b_i`` at the context ``p_i`` was read at (``C_0``, or after a cut ``C_0``
  without the residual symbol; one more call per round, reading
  ``b_1 .. b_{k-1}``): the draft model supplies only how the symbols drawn since
  change ``b_i``'s law;
* plain (``fastspec.api._sample(..., _plain_drafts=True)``): ``q_i = c_i``; the
  target rows then read only their block position and the next one (``win_len``
  1), since the next draft needs the target at one position only.

Position ``b_0`` keeps the target's marginal the sampler already holds (fresh
after a block kept whole: always accepted and row 0 not asked; stale after a
cut). A sample's first round has no target marginal yet: all ``k`` positions
come from the draft model alone, and row 0 is asked.
"""

import math

import numpy as np
from numba import prange

from .._errors import OracleError
from .._jit import twin
from .._seeds import next_double
from . import kernels
from .kernels import check_marginal, column, draw_categorical
from .sampler import ARSampler


@twin
def draw_drafts(rng, dense, probs, tol, i, slots, samples, t, orders, draft, anchor, base, W,
                q_at, err):
    """Install row ``r`` of a draft model's answer as the draft of step ``i`` of slot ``slots[r]``.

    The marginal ``c_i`` of ``b_i = orders[s, t + i]`` (column ``b_i`` of a dense
    ``(K, n, q)`` answer, column 0 of a positions answer ``(K, 1, q)``) is
    checked and becomes the draft ``q_i`` in the ring ``draft[s, (t + i) % C]``:
    ``c_i`` itself, or for an ``anchor`` slot the target's marginal the ring holds
    times ``c_i / base[slot, i]`` (``base``: the draft model at the block's start),
    normalised (``c_i`` if that has no mass). ``W_i`` is drawn from it with the
    sample's stream (``q_at`` its probability). An invalid marginal sets
    ``err[slot] = (code, r, b_i)``.
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
        mass = 0.0
        if anchor[a]:
            for y in range(ring.shape[0]):
                ring[y] = ring[y] * probs[r, c, y] / base[a, i, y] if base[a, i, y] > 0 else 0.0
                mass += ring[y]
        if mass > 0.0 and math.isfinite(mass):
            for y in range(ring.shape[0]):
                ring[y] /= mass
        else:
            for y in range(ring.shape[0]):
                ring[y] = probs[r, c, y] / total
        w = draw_categorical(ring, next_double(rng, s))
        W[a, i] = w
        q_at[a, i] = ring[w]


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
        if not drafter.anchored:          # the next draft needs the target at one position
            self.window_cap = 1
        # An anchored draft divides by the draft model at the context its target marginals
        # were read at: every stop reads its own row (no checkpoints).
        self.checkpoints = False
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

    def finish(self, where):
        r = self._r
        super().finish(where)
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
        anchor = (first > 0) & (r.k > 1) & self.drafter.anchored
        base = self._base(r, anchor)
        for i in range(int(r.k.max(initial=0))):
            active = (r.k > i) & (first <= i)
            slots = np.flatnonzero(active)
            row_start = np.concatenate([[0], np.cumsum(active)]).astype(np.int64)
            step_row[:] = i          # fill_contexts: each active slot's one row is its C_i
            for start, stop in self.drafter.chunks(slots.size, row_bytes):
                ctx = np.empty((stop - start, n), dtype=np.int64)
                kernels.fill_contexts(self.parallel, (r.samples, r.t, r.k, step_row, row_start),
                                      self._held(), r.W, start, ctx)
                part = slots[start:stop]
                args = ctx
                if model.positions:
                    args = (ctx, self.orders[r.samples[part], r.t[part] + i][:, None])
                where = f"draft model, round {self._round_no}, step {i}"
                probs, tol = self.drafter.call(args, stop - start, where)
                draw_drafts(self.parallel, self.rng, not model.positions, probs, tol, i, part,
                            r.samples, r.t, self.orders, self.draft, anchor, base, r.W, r.q_at,
                            err)
                if err[:, 0].any():
                    a = int(np.flatnonzero(err[:, 0])[0])
                    code, row, b = (int(v) for v in err[a])
                    values = probs[row, b if not model.positions else 0]
                    raise OracleError(model.invalid_answer_message(
                        where, row, int(r.samples[a]), ctx[row], b,
                        np.asarray(values), code, tol))

    def _base(self, r, anchor):
        """The draft model's marginals of ``b_1 .. b_{k-1}`` at ``C_0`` for the ``anchor``
        slots, ``(A, k_max, q)`` (one call, or ``max_rows`` chunks)."""
        model, n, q = self.drafter.model, self.model.n, self.model.q
        k_max = int(r.k.max(initial=1))
        base = np.ones((r.samples.size, k_max, q))
        slots = np.flatnonzero(anchor)
        row_start = np.concatenate([[0], np.cumsum(anchor)]).astype(np.int64)
        step_row = np.zeros(r.samples.size, dtype=np.int64)
        width = k_max - 1
        row_bytes = 8 * (n + (width if model.positions else n) * (q + 1))
        for start, stop in self.drafter.chunks(slots.size, row_bytes):
            part = slots[start:stop]
            ctx = np.empty((stop - start, n), dtype=np.int64)
            kernels.fill_contexts(self.parallel, (r.samples, r.t, r.k, step_row, row_start),
                                  self._held(), r.W, start, ctx)
            # A stale p_i was read at the context before the last residual symbol: ask c_0
            # there too, so that c_i / c_0 also carries that symbol's effect.
            stale = np.flatnonzero(~self.fresh[r.samples[part]])
            ctx[stale, self.orders[r.samples[part[stale]], r.t[part[stale]] - 1]] = -1
            width = int(r.k[part].max()) - 1           # the call's widest row
            o = r.t[part][:, None] + np.arange(1, width + 1)
            inside = o < (r.t[part] + r.k[part])[:, None]
            pos = np.take_along_axis(self.orders[r.samples[part]], np.minimum(o, n - 1), axis=1)
            where = f"draft model, round {self._round_no}, step 0"
            if model.positions:
                probs, tol = self.drafter.call((ctx, np.where(inside, pos, -1)), part.size, where)
                vals = probs
            else:
                probs, tol = self.drafter.call(ctx, part.size, where)
                vals = np.take_along_axis(probs, pos[:, :, None], axis=1)
            vals = np.where(inside[:, :, None], vals, 1.0 / q).astype(np.float64)   # (padding)
            sums = vals.sum(axis=-1)
            bad = ~np.isfinite(sums) | (vals < 0).any(axis=-1) | (np.abs(sums - 1.0) > tol)
            if bad.any():
                row, j = (int(v) for v in np.argwhere(bad)[0])
                code = (kernels.NON_FINITE if not np.isfinite(sums[row, j]) else
                        kernels.NEGATIVE if (vals[row, j] < 0).any() else kernels.BAD_SUM)
                raise OracleError(model.invalid_answer_message(
                    where, row, int(r.samples[part[row]]), ctx[row], int(pos[row, j]),
                    vals[row, j], code, tol))
            base[part, 1:width + 1] = vals / sums[:, :, None]
        return base
