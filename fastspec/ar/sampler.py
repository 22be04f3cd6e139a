"""The batched AR sampler: sequential, token and block for all samples at once.

Every sample's state lives in arrays (its context, order, progress, draft
marginals, block size); each round one kernel drafts every block, the round's
contexts go to the oracle (in calls of at most ``max_rows`` rows), one kernel
verifies each call's rows as they arrive and one settles every block. See
:mod:`fastspec.ar.kernels` for the conventions and docs/ALGORITHMS.md for why
each rule is exact.

"sequential" is the same machinery with blocks of one position: its draft is
always fresh (the exact marginal at the current context), so every draft is
kept and each round asks for exactly the rows a plain ancestral loop asks for.
"""

import math

import numpy as np

from .._driver import RoundLog, SamplerBase
from .._errors import OracleError
from .._jit import use_parallel
from .._planner import checkpoint_of, plan_round, row_windows
from .._sizer import COST, BlockSizer
from .._srs import draw_uniforms
from . import kernels
from .._rules import BLOCK, CAND, FULL_ROW, N_FSTATE, N_ISTATE, RULES, SRS


def check_given(given, n, q, n_samples):
    """Validate ``given`` (None, int (n,) or (n_samples, n), -1 = free) -> int64 (1 or S, n)."""
    if given is None:
        return np.full((1, n), -1, dtype=np.int64)
    arr = np.asarray(given)
    if not (np.issubdtype(arr.dtype, np.integer) and arr.ndim in (1, 2)
            and arr.shape[-1] == n and (arr.ndim == 1 or arr.shape[0] == n_samples)):
        raise ValueError(
            f"given must be an int array of shape (n,) = ({n},) or (n_samples, n) = "
            f"({n_samples}, {n}) with -1 marking free positions; got shape {arr.shape}, "
            f"dtype {arr.dtype}")
    bad = np.argwhere((arr < -1) | (arr >= q))
    if bad.size:
        where = tuple(int(v) for v in bad[0])
        raise ValueError(f"given{list(where)} = {int(arr[where])} is not a symbol of range({q}) "
                         f"nor -1 (free)")
    return np.ascontiguousarray(arr.reshape(-1, n), dtype=np.int64)


def check_order(order, n):
    """Validate an explicit ``order`` (None, or a 1-D int array of distinct positions)."""
    if order is None:
        return None
    arr = np.asarray(order)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or arr.shape[0] > n:
        raise ValueError(f"order must be None or a 1-D int array holding a permutation of "
                         f"range(n={n}) (or of the free positions); got shape {arr.shape}, "
                         f"dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if (arr < 0).any() or (arr >= n).any() or np.unique(arr).size != arr.size:
        head = arr.tolist()[:20]
        raise ValueError(f"order must hold distinct positions of range({n}); got {head}"
                         f"{' ...' if arr.size > 20 else ''}")
    return arr


def _explicit_orders(order, given, n_samples):
    """Orders (S, n) from an explicit ``order``: each sample's free positions in that order."""
    n = given.shape[1]
    free = given < 0                                      # (1 or S, n)
    if order.size < n:                                    # a permutation of the free positions
        if given.shape[0] > 1 and not (free == free[0]).all():
            raise ValueError("an order shorter than n lists the free positions, so every sample "
                             "must have the same free positions; pass a permutation of range(n)")
        expected = np.flatnonzero(free[0])
        if not np.array_equal(np.sort(order), expected):
            raise ValueError(f"order must be a permutation of range({n}) or of the free "
                             f"positions {expected.tolist()[:20]}; got {order.tolist()[:20]}")
        order = np.concatenate([order, np.flatnonzero(~free[0])])
    keep = free[:, order]                                 # free positions, in order, first
    rank = np.argsort(~keep, axis=1, kind="stable")
    orders = np.where(np.take_along_axis(keep, rank, axis=1), order[rank], -1)
    return np.broadcast_to(orders, (n_samples, n)).copy()


#: A draft ring at least this large (bytes) is rebuilt each round with only what is still to
#: be read (:meth:`ARSampler.ensure_ring`); smaller rings are cheaper to keep as they are.
RING_REPACK_BYTES = 32 * 2**20
RING_COPY_BYTES = 8 * 2**20

#: The marginals (bytes, counted at float64) the draft rows of one sample's block may ask
#: for, in one round, beyond their own position. Within it every draft row asks for the
#: window a stop there needs; past it (large ``q``), only checkpoint rows 1, 2, 4, .. rows
#: apart do, and a block cut at draft ``i`` takes its next draft from the latest checkpoint
#: row at or before ``i`` (fastspec._planner.fill_row_windows).
WINDOW_BYTES = 256 * 2**20

#: The bytes of one sample's block of drafts (float64 marginals) the "auto" block sizes
#: stay within; its windows are as long as the block after it, so a sample holds about
#: three times this at most. Only large ``q`` reach it: 16 MiB is 65 positions at
#: q = 32,000, 2,097 at q = 1,000.
BLOCK_BYTES = 16 * 2**20


def block_limit(q):
    """The longest block the "auto" sizes propose for ``q`` symbols (:data:`BLOCK_BYTES`)."""
    return max(1, BLOCK_BYTES // (8 * q))


class _Round:
    """This round's per-slot arrays (slot a holds sample ``samples[a]``)."""


class ARSampler(SamplerBase):
    """All samples of one AR call (see the module docstring).

    Parameters
    ----------
    model : ARModel
    streams : fastspec._seeds.SampleStreams
    method : {"sequential", "token", "block"}
    block_size, row_cost, order, given
        As in :func:`fastspec.sample` (validated here).
    rule : int, optional
        Verification rule overriding the method's (tests: ``UNVERIFIED``).
    """

    def __init__(self, model, streams, *, method, block_size, row_cost, order, given, rule=None,
                 parallel=None):
        n, q, S = model.n, model.q, len(streams)
        given = check_given(given, n, q, S)
        order = check_order(order, n)
        sizer = BlockSizer(1 if method == "sequential" else block_size, np.full(S, n), row_cost,
                           halving=rule == SRS, limit=block_limit(q))
        if parallel is None:
            k0 = 1 if method == "sequential" else int(sizer.k[0] if sizer.mode else sizer.limit)
            parallel = use_parallel(S * (k0 + 1) * n)
        if order is None:
            orders = np.empty((S, n), dtype=np.int64)
            n_free = np.empty(S, dtype=np.int64)
            kernels.random_orders(parallel, streams.states, given, orders, n_free)
        else:
            orders = _explicit_orders(order, given, S)
            n_free = (orders >= 0).sum(axis=1).astype(np.int64)
        sizer.start(np.ceil(np.sqrt(n_free)))
        self._setup(model, streams.states, method, rule, sizer, parallel,
                    x=np.broadcast_to(given, (S, n)).copy(), orders=orders, n_free=n_free,
                    draft=np.zeros((S, 1, q)), fresh=np.zeros(S, dtype=np.bool_),
                    has_draft=np.zeros(S, dtype=np.bool_))

    @classmethod
    def for_jobs(cls, model, rng, *, x, orders, n_free, n_order, tail_len, draft, block_size,
                 first_block, parallel):
        """Block-method samplers of sub-problems (srs residual proposals).

        Job ``j`` draws positions ``orders[j, :n_free[j]]`` of the context
        ``x[j]``, starting from the fresh marginals ``draft[j, i]`` of order index
        ``i`` (the ring of :mod:`fastspec.ar.kernels`), with PCG64 states
        ``rng[j]``, its first block ``first_block[j]`` long (srs measured: the
        whole block, 39.7 rounds per sample on a MarkovChain e^2 n=1024 against
        67.0 starting at its square root, 3 seeds).
        If its order goes on (``n_order[j] > n_free[j]``), its last round also asks
        for the marginals at its final context, installed in ``draft[j]`` at the
        next ``tail_len[j]`` order indices of its ring.
        """
        self = cls.__new__(cls)
        J = x.shape[0]
        sizer = BlockSizer(block_size, n_free, None, limit=block_limit(model.q))
        sizer.k[:] = first_block                  # (a block its sample drafted: within it)
        self._setup(model, rng, "block", BLOCK, sizer, parallel, x=x, orders=orders,
                    n_free=n_free, draft=draft, fresh=np.ones(J, dtype=np.bool_),
                    has_draft=np.ones(J, dtype=np.bool_), n_order=n_order, tail_len=tail_len)
        return self

    def _setup(self, model, rng, method, rule, sizer, parallel, *, x, orders, n_free, draft,
               fresh, has_draft, n_order=None, tail_len=None):
        S = x.shape[0]
        self.model, self.rng, self.method = model, rng, method
        self.n_steps = int(n_free.max(initial=0))   # sequential steps: the free positions
        self.rule = rule if rule is not None else RULES.get(method, BLOCK)
        self.sizer, self.parallel = sizer, parallel
        self.window_cap = None                    # at most this many positions per window
        self.checkpoints = True                   # (False: every draft row is one)
        self.x, self.orders, self.n_free = x, orders, n_free
        self.stop = n_free                        # (SamplerBase: where each sample stops)
        self.n_order = n_free.copy() if n_order is None else n_order
        self.tail_len = np.zeros(S, dtype=np.int64) if tail_len is None else tail_len
        self.draft, self.fresh, self.has_draft = draft, fresh, has_draft
        self.waiting = np.zeros(S, dtype=np.bool_)
        self.progress_t = np.zeros(S, dtype=np.int64)
        self.steps = self.progress_t              # (SamplerBase: each sample's progress)
        self.log_prob = np.zeros(S)
        self.log = RoundLog.empty(S)
        self._tol = 0.0
        self._r = None

    # -- the round protocol (fastspec._driver.BatchSampler) -------------------------------
    def plan(self):
        r = _Round()
        # The first round only asks for the marginals at the starting context (k = 0).
        (r.samples, r.t, r.k, r.first_row, r.row_start, r.win_len, k_max,
         w_max) = plan_round(self.sizer, self.progress_t, self.n_free, self.waiting,
                             self.n_order, self.has_draft, self.fresh, self.tail_len, self.log,
                             cover_block=self.rule == SRS)
        A, q = r.samples.size, self.model.q
        if A == 0:
            return 0
        if self.window_cap is not None:
            np.minimum(r.win_len, self.window_cap, out=r.win_len)
            w_max = min(w_max, self.window_cap)
        big = self.draft.nbytes >= RING_REPACK_BYTES      # (else not worth a look per round)
        self.ensure_ring(max(k_max, w_max), self._ring_live(r) if big else None)
        r.W = np.empty((A, k_max), dtype=np.int64)
        r.q_at = np.empty((A, k_max))
        r.u_stop = np.empty((A, k_max + 1))
        r.fstate = np.empty((A, N_FSTATE))
        r.istate = np.empty((A, N_ISTATE), dtype=np.int64)
        r.cand_target = np.empty((A, q))
        r.cand_win = None                             # (_windows: in the answers' dtype)
        r.err = np.zeros((A, 3), dtype=np.int64)
        if self.sizer.mode == COST:
            self.sizer.reserve(r.k)
        r.rnd = (r.samples, r.t, r.k, r.first_row, r.row_start)
        r.stream = (r.u_stop, r.fstate, r.istate)
        r.spacing = np.full(A, 0 if self.checkpoints else 1, dtype=np.int64)
        r.row_win, r.w_max = row_windows(self.sizer, r.rnd, r.win_len, self.n_free, r.spacing,
                                         max(1, WINDOW_BYTES // (8 * q)),
                                         cover_block=self.rule == SRS)
        r.wstate = np.zeros((A, 2), dtype=np.int64)
        r.wstate[:, 0] = -1
        kernels.draft_blocks(self.parallel, self.rng, r.rnd, self._held(), (r.W, r.q_at),
                             r.stream, r.cand_target)
        if self.model.positions:
            self._plan_positions(r)
        self._r = r
        return int(r.row_start[-1])

    def _held(self):
        """The per-sample state tuple of the kernels (fastspec.ar.kernels)."""
        return (self.x, self.orders, self.n_free, self.n_order, self.draft, self.fresh,
                self.log_prob, self.progress_t)

    def ensure_ring(self, length, live=None):
        """Make the draft ring (``draft[s, o % C]``) hold ``length`` order indices from each
        sample's progress on.

        Parameters
        ----------
        length : int
            Order indices the ring must hold per sample.
        live : int64 ndarray (S,), optional
            How many order indices from each sample's progress on hold marginals still to
            be read. Given, the ring is rebuilt with only these when it must grow or at
            least half of it is no longer read (a fresh ring's untouched rows take no
            memory, while a ring kept from round to round ends up touching all ``C``
            rows of every sample, ``C`` the longest window any sample ever had). Else
            the ring only grows, keeping all it holds. :meth:`plan` gives it for rings
            of at least :data:`RING_REPACK_BYTES`.
        """
        S, C, q = self.draft.shape
        if live is None:
            if length <= C:
                return
            live = np.full(S, C, dtype=np.int64)          # keep all it holds
        else:
            live = np.minimum(live, C)
            if length <= C and 2 * int(live.sum()) > S * C:
                return                                    # little to gain
            length = max(length, int(live.max(initial=1)))
        ring = np.zeros((S, length, q))
        held = np.flatnonzero(live)
        s = np.repeat(held, live[held])
        o = self.progress_t[s] + np.arange(s.size) - np.repeat(np.cumsum(live[held]) - live[held],
                                                               live[held])
        step = max(1, RING_COPY_BYTES // (8 * q))      # bounds the copy's temporary
        for c in range(0, s.size, step):
            ring[s[c:c + step], o[c:c + step] % length] = self.draft[s[c:c + step],
                                                                     o[c:c + step] % C]
        self.draft = ring

    def _ring_live(self, r):
        """Order indices of each sample's ring still to be read, from its progress on:
        a slot's block (its draft), all a sample outside the round holds (srs: a sample
        waiting for its proposals, a proposal handing over its last window)."""
        live = np.where(self.progress_t < self.n_order, self.draft.shape[1], 0)
        live[r.samples] = r.k
        return live

    def _plan_positions(self, r):
        """What each row of the round reads: order indices ``row_base .. + row_len - 1``.

        Row ``i < k`` reads its block position and, if it is a checkpoint row,
        the window after it (``row_win``: the next draft should the block stop
        at a row it covers, fastspec._planner.fill_row_windows); row ``k`` reads
        the window after the block. Counted
        per sample in ``log.positions`` (a dense oracle's rows count ``n`` each:
        :attr:`dense_positions`).
        """
        rows = int(r.row_start[-1])
        slot = np.repeat(np.arange(r.samples.size), np.diff(r.row_start))
        i = np.arange(rows) - r.row_start[slot] + r.first_row[slot]
        base = r.t[slot] + i
        end = np.minimum(base + r.row_win + (i < r.k[slot]),
                         self.n_order[r.samples[slot]])
        r.row_slot, r.row_base, r.row_len = slot, base, end - base
        r.n_pos = np.bincount(slot, weights=r.row_len,
                              minlength=r.samples.size).astype(np.int64)
        self.log.positions[r.samples] += r.n_pos

    @property
    def dense_positions(self):
        """Positions a row costs when the oracle answers all of them (None: counted in
        ``log.positions``, the positions protocol)."""
        return None if self.model.positions else self.model.n

    def request(self, start, stop):
        r = self._r
        out = np.empty((stop - start, self.model.n), dtype=np.int64)
        kernels.fill_contexts(self.parallel, r.rnd, self._held(), r.W, start, out)
        if not self.model.positions:
            return out
        base, length = r.row_base[start:stop], r.row_len[start:stop]
        width = max(1, int(length.max(initial=0)))
        idx = base[:, None] + np.arange(width)
        order = self.orders[r.samples[r.row_slot[start:stop]]]
        positions = np.take_along_axis(order, np.minimum(idx, self.model.n - 1), axis=1)
        positions[np.arange(width) >= length[:, None]] = -1
        return out, positions

    def _windows(self, r, dtype, spans_calls=False):
        """Allocate the round's windows (``found``, module doc of :mod:`fastspec.ar.kernels`)
        in the answers' dtype: a float32 answer's values are copied exactly and take half
        the memory (at q = 32,000, 128 KB a position). float64 once any answer is.
        The checkpoint windows (``ckpt_win``) only when the round ``spans_calls``."""
        shape = (r.samples.size, r.w_max, self.model.q)
        if r.cand_win is None:
            r.cand_win = np.empty(shape, dtype)
            r.ckpt_win = np.empty((0,) + shape[1:], dtype)
        elif r.cand_win.dtype != dtype and dtype == np.float64:
            r.cand_win, r.ckpt_win = (w.astype(np.float64) for w in (r.cand_win, r.ckpt_win))
        if spans_calls and r.ckpt_win.shape[0] == 0 and (r.spacing > 1).any():
            r.ckpt_win = np.empty(shape, r.cand_win.dtype)
        r.found = (r.cand_target, r.cand_win, r.row_win, r.spacing, r.ckpt_win, r.wstate)

    def consume(self, answer, start, stop, where):
        probs, tol = answer
        r = self._r
        self._windows(r, probs.dtype, spans_calls=start > 0 or stop < r.row_start[-1])
        self._tol = max(self._tol, tol)
        kernels.verify_rows(self.parallel, self.rule, (not self.model.positions, probs, tol),
                            start, stop, r.rnd, self._held(), (r.W, r.q_at), r.stream, r.found,
                            r.err)
        self._raise_if_invalid(where, start, lambda a, g, b: probs[g - start, self._column(g, b)])

    def finish(self, where):
        r = self._r
        if r is None:
            return
        if r.cand_win is None:                    # no row was asked this round
            self._windows(r, np.float64)
        tau = np.empty(r.samples.size, dtype=np.int64)
        kernels.settle_blocks(self.parallel, self.rng, self.rule, r.rnd, self._held(), r.W,
                              r.stream, r.found, self._tol, self.sizer.arrays(), tau, r.err)
        self._raise_if_invalid(where, None, self._window_values)
        self._settled(r, tau, where)

    def row_bytes(self):
        """A row's context and its answer (counted as float64): bytes, or ``(fixed,
        per position)`` bytes with the positions protocol (:meth:`row_widths`)."""
        n, q = self.model.n, self.model.q
        if self.model.positions and self._r is not None:
            return 8 * n, 8 * (q + 1)
        return 8 * (n + n * q + n)

    def row_widths(self):
        """Positions each row of the round asks for (None: dense answers, ``n`` a row)."""
        return self._r.row_len if self.model.positions and self._r is not None else None

    def result(self, stats):
        from .._result import SampleResult
        return SampleResult(samples=self.x, stats=stats, orders=self.orders,
                            log_prob=self.log_prob)

    def round_rows(self):
        samples, rows, _ = super().round_rows()
        return samples, rows, self._r.n_pos if self.model.positions else None

    # -- the srs door (fastspec._srs.SrsHost) ------------------------------------------------
    # A sample's block B is drafted from its current marginals nu_B; its proposals are
    # block-method samples of the positions of B given its context, started from the
    # marginals there (fresh) and returning log mu_B(X); log nu_B(X) is read off the draft.
    def _proposal_start(self, r, slot, where):
        """Marginals at each rejected slot's context, on its block: (R, k_max, q)."""
        k = r.k[slot]
        init = np.zeros((slot.size, int(k.max()), self.model.q))
        for p, a in enumerate(slot):
            s = r.samples[a]
            if r.first_row[a]:                       # fresh: the draft is exactly that
                init[p, :k[p]] = self.draft[s, (r.t[a] + np.arange(k[p])) % self.draft.shape[1]]
            else:                                    # else row 0's window, checked here
                init[p, :k[p]] = self._checked(r.cand_win[a, :k[p]], s, where)
        return init

    def _checked(self, window, s, where):
        window = window.astype(np.float64)        # (a float32 answer's window: summed as the
        sums = window.sum(axis=1)                 # kernels sum it)
        bad = (~np.isfinite(window).all(axis=1) | (window < 0).any(axis=1)
               | (np.abs(sums - 1.0) > self._tol))
        if bad.any():
            raise OracleError(f"{where}: marginals returned at the context of sample "
                              f"{s} are not a distribution at a position of its block (sums "
                              f"{sums[bad][:3].tolist()}); the context has positive probability "
                              "under the target, so they must be")
        return window / sums[:, None]

    def proposals(self, parents, par, k, init, rng):
        """``par[p]`` block-method proposals of the block ``k[p]`` of each sample
        ``parents[p]``, from its context, started from ``init[p]`` (:meth:`_proposal_start`),
        with PCG64 states ``rng`` (one row per proposal)."""
        n, q = self.model.n, self.model.q
        t = self.progress_t[parents]
        remaining = self.n_free[parents] - t
        # Each job's order: the rest of its sample's order, the block first.
        idx = t[:, None] + np.arange(n)
        rest = np.where(idx < self.n_free[parents][:, None],
                        np.take_along_axis(self.orders[parents], np.minimum(idx, n - 1), 1), -1)
        job_k = np.repeat(k, par)
        rows = np.repeat(np.arange(parents.size), par)
        draft = np.zeros((job_k.size, int(k.max()), q))  # a ring by order index (ar.kernels)
        for i in range(int(k.max())):                # the block's marginals, all jobs at once
            on = np.flatnonzero(i < job_k)
            draft[on, i] = init[rows[on], i]
        tail = np.minimum(self.sizer.k[parents], remaining - k)
        return ARSampler.for_jobs(
            self.model, rng, x=self.x[np.repeat(parents, par)], orders=rest[rows],
            n_free=job_k, n_order=np.repeat(remaining, par), tail_len=np.repeat(tail, par),
            draft=draft, block_size="auto", first_block=job_k,
            parallel=use_parallel(int(job_k.sum()) * n))

    def proposal_log_ratio(self, jobs, jobs_idx, parents):
        """``log mu_B(X) - log nu_B(X)`` of finished proposals ``jobs_idx`` of ``jobs``
        (:meth:`proposals`), whose samples are ``parents``: float64 ``(len(jobs_idx),)``."""
        k = jobs.n_free[jobs_idx]
        log_nu = np.zeros(jobs_idx.size)
        ring = (self.progress_t[parents][:, None] + np.arange(int(k.max()))) % self.draft.shape[1]
        # A proposal the draft gives probability 0 (the target does not) has ratio +inf and is
        # accepted surely: log 0 = -inf is the right value, not a fault to warn about.
        with np.errstate(divide="ignore"):
            for i in range(int(k.max())):
                on = i < k
                b = jobs.orders[jobs_idx[on], i]
                log_nu[on] += np.log(self.draft[parents[on], ring[on, i], jobs.x[jobs_idx[on], b]])
        return jobs.log_prob[jobs_idx] - log_nu

    def accept_proposal(self, s, jobs, j, k):
        """Install proposal ``j`` of ``jobs`` as the block ``k`` of sample ``s``, and its last
        window as the draft after it."""
        t = self.progress_t[s]
        block = self.orders[s, t:t + k]
        self.x[s, block] = jobs.x[j, block]
        self.log_prob[s] += jobs.log_prob[j]
        self.progress_t[s] = t + k
        tail = min(int(self.sizer.k[s]), int(self.n_free[s] - t - k))
        if tail > 0:        # the job's last window: the marginals after the block
            self.ensure_ring(tail)
            after = t + k + np.arange(tail)       # our order indices; the job's are from t on
            self.draft[s, after % self.draft.shape[1]] = jobs.draft[j, (after - t)
                                                                    % jobs.draft.shape[1]]
        self.fresh[s] = bool(jobs.fresh[j]) and tail > 0
        if self.fresh[s] and self.progress_t[s] == self.n_free[s] - 1:
            # the last free position, drawn from fresh marginals (no round needed)
            b = self.orders[s, self.n_free[s] - 1]
            o = (self.n_free[s] - 1) % self.draft.shape[1]
            u = np.empty(1)
            draw_uniforms(self.rng, np.array([s]), u)
            y = kernels.draw_categorical(self.draft[s, o], u[0])
            self.x[s, b] = y
            self.log_prob[s] += math.log(self.draft[s, o, y])
            self.progress_t[s] = self.n_free[s]

    # -- errors ------------------------------------------------------------------------------
    def _column(self, g, b):
        """Where position ``b`` sits in the answer to round row ``g``."""
        if not self.model.positions:
            return b
        r = self._r
        s = r.samples[r.row_slot[g]]
        base = r.row_base[g]
        return int(np.flatnonzero(self.orders[s, base:base + r.row_len[g]] == b)[0])

    def _window_values(self, a, g, b):
        r = self._r
        full = g == r.istate[a, FULL_ROW]
        i = r.istate[a, CAND]
        window = (r.cand_win[a] if full or r.wstate[a, 1] == 0 else
                  r.ckpt_win[a, i - checkpoint_of(i, r.first_row[a], r.spacing[a]):])
        s = r.samples[a]
        first = r.t[a] + (r.k[a] if full else i + 1)
        j = int(np.flatnonzero(self.orders[s, first:first + window.shape[0]] == b)[0])
        return window[j]

    def _raise_if_invalid(self, where, start, values_of):
        r = self._r
        if not r.err[:, 0].any():
            return
        bad = np.flatnonzero(r.err[:, 0])
        a = int(bad[0])
        code, g, b = (int(v) for v in r.err[a])
        s = int(r.samples[a])
        i = g - int(r.row_start[a]) + int(r.first_row[a])
        context = self.x[s].copy()
        context[self.orders[s, r.t[a]:r.t[a] + i]] = r.W[a, :i]
        row = g if start is None else g - start
        raise OracleError(self.model.invalid_answer_message(
            where, row, s, context, b, np.asarray(values_of(a, g, b)), code, self._tol))
