"""The round's plan: which samples draft a block this round, and the rows each asks for.

One kernel walks every sample once per round (:func:`plan_blocks`), reading
each one's block length from its :class:`fastspec._sizer.BlockSizer` rule; the
samplers call it through :func:`plan_round`.
"""

import numpy as np

from ._jit import kernel
from ._sizer import block_after, max_next, next_block


def plan_round(sizer, progress, stop, waiting, order_len, has_draft, fresh, tail_len, log,
               cover_block=False):
    """:func:`plan_blocks` for the samples of ``sizer`` (a :class:`~fastspec._sizer.BlockSizer`);
    returns ``samples, t, k, first_row, row_start, win_len, k_max, w_max`` (arrays cut
    to the slots of this round)."""
    S = progress.shape[0]
    samples, t, k, first_row, win_len = (np.empty(S, dtype=np.int64) for _ in range(5))
    row_start = np.empty(S + 1, dtype=np.int64)
    A, k_max, w_max = plan_blocks(progress, stop, waiting, order_len, has_draft, fresh,
                                  tail_len, cover_block, sizer.mode, sizer.limit, sizer.k,
                                  sizer.mean, log.rounds, log.rows, samples, t, k, first_row,
                                  row_start, win_len)
    return (samples[:A], t[:A], k[:A], first_row[:A], row_start[:A + 1], win_len[:A],
            k_max, w_max)


@kernel
def plan_blocks(progress, stop, waiting, order_len, has_draft, fresh, tail_len, cover_block,
                mode, limit, k_state, mean, log_rounds, log_rows, samples, t, k, first_row,
                row_start, win_len):
    """This round's block of each unfinished sample, and the rows it asks for.

    Fills slot ``a = 0, 1, ..`` for each sample ``s`` with ``progress[s] <
    stop[s]`` and not ``waiting``: ``samples[a] = s``, its progress ``t[a]``, its
    block length ``k[a]`` (0 for a sample with no draft yet: its first round only
    asks for its starting point), whether row 0 is skipped (``first_row``: fresh
    draft), its rows ``row_start[a] .. row_start[a + 1] - 1`` (row ``k`` is
    skipped when nothing would remain after the block in the sample's order,
    ``order_len``), and how many positions after each row's block position the
    sampler keeps (``win_len``: the next block's draft; ``tail_len`` for a block
    that ends the stretch of a sample whose order goes on; at least the block
    itself when ``cover_block``). Adds the rows to the per-sample log.

    Returns
    -------
    n_slots, k_max, w_max : int
    """
    row_start[0] = 0
    n_slots = 0
    k_max = 1
    w_max = 1
    for s in range(progress.shape[0]):
        if progress[s] >= stop[s] or waiting[s]:
            continue
        a = n_slots
        samples[a] = s
        t[a] = progress[s]
        remaining = stop[s] - t[a]
        kk = next_block(mode, limit, k_state, s, remaining) if has_draft[s] else 0
        k[a] = kk
        first_row[a] = 1 if fresh[s] and kk > 0 else 0
        rows = kk + 1 - first_row[a] - (1 if t[a] + kk == order_len[s] else 0)
        row_start[a + 1] = row_start[a] + rows
        w = min(max_next(mode, limit, k_state, mean, s, kk), remaining)
        if t[a] + kk == stop[s]:
            w = max(w, tail_len[s])
        if cover_block:
            w = max(w, kk)
        win_len[a] = w
        k_max = max(k_max, kk)
        w_max = max(w_max, w)
        log_rows[s] += rows
        if rows > 0:
            log_rounds[s] += 1
        n_slots += 1
    return n_slots, k_max, w_max


def row_windows(sizer, rnd, win_len, stop, spacing, budget, cover_block=False):
    """:func:`fill_row_windows` for the round ``rnd = (samples, t, k, first_row, row_start)``
    planned by :func:`plan_round`; returns ``(row_win, w_max)``: int64 ``(rows,)`` and the
    longest window. ``spacing`` (int64 ``(A,)``, 0: chosen within ``budget``) is filled."""
    out = np.empty(int(rnd[4][-1]), dtype=np.int64)
    w_max = fill_row_windows(sizer.mode, sizer.limit, sizer.k, sizer.mean, *rnd, win_len, stop,
                             spacing, budget, cover_block, out)
    return out, w_max


@kernel(inline="always")
def checkpoint_of(i, first_row, spacing):
    """The draft index of the checkpoint row that holds the next draft should a block stop
    at draft index ``i`` (rows ``first_row, first_row + spacing, ..`` are checkpoints)."""
    return first_row + ((i - first_row) // spacing) * spacing


@kernel
def _reach(out, g0, first_row, k, c, spacing):
    """The window checkpoint ``c`` needs for every stop it covers, from the windows ``out``
    each draft row would need as its own checkpoint (slot rows from round row ``g0``)."""
    reach = 0
    for j in range(c, min(c + spacing, k)):
        reach = max(reach, j - c + out[g0 + j - first_row])
    return reach


@kernel
def fill_row_windows(mode, limit, k_state, mean, samples, t, k, first_row, row_start, win_len,
                     stop, spacing, budget, cover_block, out):
    """Per row of the round, the positions after its block position it asks for; returns the
    longest.

    Should the block of slot ``a`` stop at draft index ``i < k`` (its draft ``i``
    rejected), the next draft is read from the row of the checkpoint ``c <= i``
    (:func:`checkpoint_of`): its context holds the drafts before ``c``, all
    kept, so its marginals are a valid draft (docs/ALGORITHMS.md, section 4),
    blind only to the ``i - c`` drafts kept since and the residual symbol. A
    checkpoint row's window reaches as far as the block the sizer then proposes
    (:func:`fastspec._sizer.block_after`, capped by what remains and the slot's
    ``win_len``) for every stop it covers; other draft rows read their block
    position only (0 here). Row ``k`` (the block kept whole) reads the block the
    sizer then proposes. ``win_len`` stays where the length is not known in
    advance (the cost-aware sizer, a sample's last block, the windows srs reads;
    ``cover_block``: srs, whose stop is row 0 only).

    ``spacing[a]`` > 0 is kept; 0 is replaced by the smallest of 1, 2, 4, .. (or
    ``k``) whose checkpoint windows hold at most ``budget`` positions: 1 (every
    draft row a checkpoint, each stop reading its own row) unless the windows
    would hold more. It reads only the sizer's state, never the drafts.
    """
    w_max = 1
    for a in range(samples.shape[0]):
        s = samples[a]
        g0 = row_start[a]
        total = 0
        for g in range(g0, row_start[a + 1]):          # each row as its own checkpoint
            i = g - g0 + first_row[a]
            kept = min(i, k[a])
            remaining = stop[s] - (t[a] + kept + (1 if i < k[a] else 0))
            after = block_after(mode, limit, k_state, mean, s, k[a], kept)
            if cover_block or after < 0 or remaining <= 0:
                out[g] = win_len[a]
            else:
                out[g] = max(1, min(after, remaining, win_len[a]))
            if i < k[a]:
                total += out[g]
        m = spacing[a]
        if cover_block:
            m = k[a] + 1
        elif m <= 0:
            m = 1
            while total > budget and m < k[a]:
                m = min(2 * m, k[a])
                total = 0
                for c in range(first_row[a], k[a], m):
                    total += _reach(out, g0, first_row[a], k[a], c, m)
        spacing[a] = m
        for g in range(g0, row_start[a + 1]):
            i = g - g0 + first_row[a]
            if i < k[a]:
                if (i - first_row[a]) % m != 0:
                    out[g] = 0
                elif not cover_block and m > 1:
                    out[g] = _reach(out, g0, first_row[a], k[a], i, m)
            w_max = max(w_max, out[g])
    return w_max
