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
                                  tail_len, cover_block, sizer.mode, sizer.fixed, sizer.k,
                                  sizer.mean, log.rounds, log.rows, samples, t, k, first_row,
                                  row_start, win_len)
    return (samples[:A], t[:A], k[:A], first_row[:A], row_start[:A + 1], win_len[:A],
            k_max, w_max)


@kernel
def plan_blocks(progress, stop, waiting, order_len, has_draft, fresh, tail_len, cover_block,
                mode, fixed, k_state, mean, log_rounds, log_rows, samples, t, k, first_row,
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
        kk = next_block(mode, fixed, k_state, s, remaining) if has_draft[s] else 0
        k[a] = kk
        first_row[a] = 1 if fresh[s] and kk > 0 else 0
        rows = kk + 1 - first_row[a] - (1 if t[a] + kk == order_len[s] else 0)
        row_start[a + 1] = row_start[a] + rows
        w = min(max_next(mode, fixed, k_state, mean, s, kk), remaining)
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


def row_windows(sizer, rnd, win_len, stop, cover_block=False):
    """:func:`fill_row_windows` for the round ``rnd = (samples, t, k, first_row, row_start)``
    planned by :func:`plan_round`; int64 ``(rows,)``."""
    out = np.empty(int(rnd[4][-1]), dtype=np.int64)
    fill_row_windows(sizer.mode, sizer.fixed, sizer.k, sizer.mean, *rnd, win_len, stop,
                     cover_block, out)
    return out


@kernel
def fill_row_windows(mode, fixed, k_state, mean, samples, t, k, first_row, row_start, win_len,
                     stop, cover_block, out):
    """Per row of the round, the positions after its block position the sampler keeps.

    Should the block of slot ``a`` stop at row ``i`` (its draft ``i`` rejected,
    or ``i = k``: kept whole), the next draft is that row's window, as long as
    the block the sizer then proposes (:func:`fastspec._sizer.block_after`,
    capped by what remains): often far less than the slot's ``win_len``, which
    bounds it over every row. The slot's ``win_len`` stays where the length is
    not known in advance (the cost-aware sizer, a sample's last block, the
    windows srs reads).
    """
    for a in range(samples.shape[0]):
        s = samples[a]
        for g in range(row_start[a], row_start[a + 1]):
            i = g - row_start[a] + first_row[a]
            kept = min(i, k[a])
            remaining = stop[s] - (t[a] + kept + (1 if i < k[a] else 0))
            after = block_after(mode, fixed, k_state, mean, s, k[a], kept)
            if cover_block or after < 0 or remaining <= 0:
                out[g] = win_len[a]
            else:
                out[g] = max(1, min(after, remaining, win_len[a]))
