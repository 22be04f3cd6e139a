"""Diffusion blocks drafted by a cheap denoiser (``fastspec.sample(model, draft=cheap)``).

The round is the one of :mod:`fastspec.diffusion.sampler`; only the draft
changes. From ``W_0 = y_j`` the block runs ``k`` steps, each with a draft mean
``E_i`` computed at the state it leaves: ``W_{i+1} = a_i W_i + b_i E_i + c_i xi_i``,
one call of the cheap denoiser per step, batched over the round's samples:

* anchored (the default): ``E_i = D_0 + C(W_i) - C(A)``, with ``D_0`` the
  target's value the sampler holds, ``A`` the state (and step) it was read at
  (``W_0``, or after a cut the last kept state, one step back) and
  ``C(W) = D_cheap(W / s, sigma)`` at the step's noise level: the cheap denoiser
  supplies only the change since ``A`` (one more cheap call per round, at ``A``);
* plain (``fastspec.api._sample(..., _plain_drafts=True)``): ``E_i = C(W_i)``.

Under the target the same noise is
``N(Delta_i, I)`` with ``Delta_i = b_i (D(W_i) - E_i) / c_i``: the draft and the
target step are normals with one covariance ``c_i^2 I`` (De Bortoli et al.
2025), so the token (reflection coupling) and block rules of
:mod:`fastspec.diffusion.kernels` verify the block with ``E_i`` in place of the
frozen draft value.

Step 0 keeps the target's value the sampler holds (``D(y_j)`` after a block
kept whole: always accepted, row 0 not asked; ``D`` at the last kept state
after a cut), so the cheap denoiser is called ``k - 1`` times per round; a
sample's first round has none and calls it for step 0 too.

Memory: the draft states, noises and means of a block are stored until the
round is verified, ``3 (k + 1) d`` float64 per sample (autospeculation needs
``O(d)``); the target's rows are still built and sent in calls of at most
``max_rows`` rows.
"""

import numpy as np
from numba import prange

from .._errors import OracleError
from .._jit import twin
from .._rules import CAND, CAND_ROW
from .._seeds import fill_normals
from .sampler import DiffusionSampler


@twin
def take_draft_steps(rng, slots, i, means, samples, j, a, b, c, states, noises, draft_means):
    """Step ``i`` of the draft of each slot ``slots[r]``, with draft mean ``means[r]``.

    Draws the step's noise from the sample's stream and moves
    ``states[slot, i]`` to ``states[slot, i + 1]``; keeps the mean and the noise.
    """
    for r in prange(slots.shape[0]):
        slot = slots[r]
        s = samples[slot]
        step = j[slot] + i
        fill_normals(rng, s, noises[slot, i])
        for t in range(states.shape[2]):
            draft_means[slot, i, t] = means[r, t]
            states[slot, i + 1, t] = (a[step] * states[slot, i, t] + b[step] * means[r, t]
                                      + c[step] * noises[slot, i, t])


class DraftedDiffusionSampler(DiffusionSampler):
    """:class:`fastspec.diffusion.sampler.DiffusionSampler` whose blocks a cheap denoiser drafts.

    Parameters
    ----------
    drafter : fastspec._drafts.Drafter
        The cheap denoiser (same ``dim``) and its call counts.
    **options
        As for :class:`DiffusionSampler` (method "token" or "block").
    """

    #: Bytes per dimension of one cheap-denoiser row: its state, its answer and the mean.
    _CHEAP_ROW_BYTES = 32

    def __init__(self, model, streams, *, drafter, **options):
        super().__init__(model, streams, **options)
        self.drafter = drafter
        self.target_first = np.zeros(len(streams), dtype=np.bool_)   # step 0 from the target
        self._no_draft = np.zeros_like(self.d_draft)
        self.anchor_y = np.zeros_like(self.d_draft)
        self.anchor_step = np.zeros(len(streams), dtype=np.int64)
        self._round_no = 0

    def plan(self):
        rows = super().plan()
        r = self._r
        if r is None:
            return rows
        A, d, k = r.samples.size, self.model.dim, r.k
        k_max = int(k.max(initial=0))
        r.states = np.empty((A, k_max + 1, d))
        r.noises = np.empty((A, max(1, k_max), d))
        r.means = np.zeros((A, k_max + 1, d))      # row k has no draft: its mean stays 0
        r.states[:, 0] = self.y[r.samples]
        # A fresh draft: draft_blocks already took step 0 with the target's D(y_j).
        done = (r.first_row > 0) & (k > 0)
        r.states[done, 1] = r.W_cur[done]
        r.noises[done, 0] = r.xi_cand[done]
        r.means[done, 0] = self.d_draft[r.samples[done]]
        # Anchored: E_i = D_0 + C(W_i) - C(anchor), the offset of each slot; D_0 was read at
        # the anchor state and step (y_j itself when fresh, the last kept state when stale).
        r.offset = np.zeros((A, d))
        anchored = np.flatnonzero(self.target_first[r.samples] & (k > 1) & self.drafter.anchored)
        r.offset[anchored] = self.d_draft[r.samples[anchored]]
        for start, stop in self.drafter.chunks(anchored.size, self._CHEAP_ROW_BYTES * d):
            samples = r.samples[anchored[start:stop]]
            r.offset[anchored[start:stop]] -= self._cheap_means(
                self.anchor_y[samples], self.anchor_step[samples], samples, 0)
        for i in range(k_max):
            need = k > i
            own = np.zeros(A, dtype=np.bool_)
            if i == 0:
                need = need & ~done
                own = need & self.target_first[r.samples]   # stale: the target's value, no call
            if own.any():
                slots = np.flatnonzero(own)
                take_draft_steps(self.parallel, self.rng, slots, i,
                                 self.d_draft[r.samples[slots]], r.samples, r.j, self.a, self.b,
                                 self.c, r.states, r.noises, r.means)
            self._cheap_steps(r, i, np.flatnonzero(need & ~own))
        r.W_cur[:] = r.states[np.arange(A), k]
        r.n_drawn[:] = k
        r.row_slot = np.repeat(np.arange(A), np.diff(r.row_start))
        r.row_i = np.arange(rows) - r.row_start[r.row_slot] + r.first_row[r.row_slot]
        self._round_no += rows > 0
        return rows

    def _cheap_steps(self, r, i, slots):
        """Step ``i`` of ``slots`` with the cheap denoiser's mean at ``W_i`` (plus the slot's
        offset), chunked calls."""
        for start, stop in self.drafter.chunks(slots.size, self._CHEAP_ROW_BYTES * self.model.dim):
            part = slots[start:stop]
            means = self._cheap_means(r.states[part, i], r.j[part] + i, r.samples[part], i)
            means += r.offset[part]
            take_draft_steps(self.parallel, self.rng, part, i, means, r.samples, r.j, self.a,
                             self.b, self.c, r.states, r.noises, r.means)

    def _cheap_means(self, states, steps, samples, i):
        """The cheap denoiser at ``states`` (K, d) of chain ``steps`` (one call), checked;
        ``samples`` and the draft step ``i`` name an invalid answer."""
        sigma = self.sigma[steps]
        where = f"draft model, round {self._round_no}, step {i}"
        den = np.array(self.drafter.call((states / self.s[steps][:, None], sigma),
                                         len(steps), where), dtype=np.float64)
        finite = np.isfinite(den).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise OracleError(self.drafter.model.non_finite_message(
                where, row, int(samples[row]), int(steps[row]), sigma[row], den[row]))
        return den

    def request(self, start, stop):
        """The states of rows ``start .. stop - 1``, read from the stored draft."""
        r = self._r
        slot, i = r.row_slot[start:stop], r.row_i[start:stop]
        steps = r.j[slot] + i
        W_rows = r.states[slot, i]
        xi_rows = r.noises[slot, np.minimum(i, r.noises.shape[1] - 1)]   # (row k: not read)
        r.chunks[start] = (W_rows, xi_rows, r.means[slot, i])
        return W_rows / self.s[steps][:, None], self.sigma[steps]

    def consume(self, answer, start, stop, where):
        """Verify with each row's own draft mean: the kernels see ``D(W_i) - E_i`` against a
        draft of 0, which gives them ``Delta_i`` exactly as they compute it."""
        r = self._r
        W_rows, xi_rows, means = r.chunks[start]
        r.chunks[start] = (W_rows, xi_rows)
        saved, self.d_draft = self.d_draft, self._no_draft
        try:
            super().consume(answer - means, start, stop, where)
        finally:
            self.d_draft = saved

    def finish(self, where):
        r = self._r
        if r is not None:
            # Settle reads the stop candidate's denoiser value and its draft mean as
            # cand_D and d_draft: undo the shift of consume() and install E_tau.
            A = np.arange(r.samples.size)
            cand = r.istate[:, CAND]
            seen = r.istate[:, CAND_ROW] >= 0
            r.cand_D[seen] += r.means[A[seen], cand[seen]]
            self.d_draft[r.samples] = r.means[A, cand]
        super().finish(where)
        if r is not None:
            self.target_first[r.samples] = True
            # Where the target's value now in d_draft was read: the new state (fresh) or,
            # after a cut, the stop candidate's state one step back.
            fresh = self.fresh[r.samples]
            self.anchor_y[r.samples] = np.where(fresh[:, None], self.y[r.samples], r.W_cand)
            self.anchor_step[r.samples] = self.progress_j[r.samples] - (~fresh).astype(np.int64)

    def row_bytes(self):
        """A row's state, answer, draft state, noise and mean (and the shifted answer)."""
        return 48 * self.model.dim + 16
