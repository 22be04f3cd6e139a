"""The batched diffusion sampler: sequential, token and block for all samples at once.

Every sample's state lives in arrays (chain state, step, draft denoiser value,
block size); each round one kernel drafts every block with the denoiser frozen,
the round's states go to the denoiser (in calls of at most ``max_rows`` rows),
one kernel verifies each call's rows as they arrive and one settles every block.
See :mod:`fastspec.diffusion.kernels` for the conventions and
docs/ALGORITHMS.md for why each rule is exact.

Drafts. With ``D_draft = D(y_j)`` the draft is *fresh*: ``W_0`` is not asked
again and the last row (``W_k``) is the next block's fresh draft if the whole
block is kept. After a residual draw the denoiser at the new state is unknown;
the next block is drafted with the (stale) value at the last kept state and its
round also asks for ``W_0``. The speculative methods draft their very first
block with ``D_draft = 0``: any value known before drafting is valid, and a round
spent only on ``D(y_0)`` would not advance the chain. "sequential" is the same
machinery with blocks of one step after a first round on ``D(y_0)``: every draft
is fresh, hence exact, and each round asks for the rows a plain ancestral loop
asks for.
"""

import numpy as np

from .._driver import RoundLog, SamplerBase
from .._errors import OracleError
from .._jit import kernel, use_parallel
from .._seeds import fill_normals
from .._planner import plan_round
from .._sizer import COST, BlockSizer
from . import kernels
from .._rules import BLOCK, N_FSTATE, N_ISTATE, RULES, SRS


@kernel
def _last_step(rng, s, y, d_draft, a, b, c):
    """``y <- a y + b D + c xi`` for sample ``s`` (its final step, from a fresh D)."""
    noise = np.empty(y.shape[1])
    fill_normals(rng, s, noise)
    for t in range(y.shape[1]):
        y[s, t] = a * y[s, t] + b * d_draft[s, t] + c * noise[t]


class _Round:
    """This round's per-slot arrays (slot a holds sample ``samples[a]``)."""


class DiffusionSampler(SamplerBase):
    """All samples of one diffusion call (see the module docstring)."""

    def __init__(self, model, streams, *, method, schedule, block_size, row_cost, rule=None,
                 parallel=None):
        S, N, d = len(streams), schedule.n_steps, model.dim
        rule = rule if rule is not None else RULES.get(method, BLOCK)
        sizer = BlockSizer(1 if method == "sequential" else block_size, np.full(S, N), row_cost,
                           halving=rule == SRS)
        if parallel is None:
            k0 = 1 if method == "sequential" else int(sizer.k[0] if sizer.mode else sizer.limit)
            parallel = use_parallel(S * (k0 + 1) * d)
        y = np.empty((S, d))
        kernels.initial_states(parallel, streams.states, schedule.init_scale, y)
        # "sequential" spends its first round on D(y_0); the others draft with D = 0.
        self._setup(model, streams.states, method, rule, schedule, sizer, parallel, y=y,
                    d_draft=np.zeros((S, d)), fresh=np.zeros(S, dtype=np.bool_),
                    has_draft=np.full(S, method != "sequential"), start=np.zeros(S, np.int64),
                    stop=np.full(S, N, dtype=np.int64))

    @classmethod
    def for_jobs(cls, model, rng, schedule, *, y, start, stop, d_draft, ref_D, parallel):
        """Block-method samplers of stretches of the chain (srs residual proposals).

        Job ``i`` runs steps ``start[i] .. stop[i] - 1`` from state ``y[i]``, with
        the fresh denoiser value ``d_draft[i] = D(y[i])``, PCG64 states ``rng[i]``;
        if the chain goes on, its last round also asks for the denoiser at its
        final state (then in ``d_draft``, ``fresh``). It sums ``log mu / nu`` of its
        path against the reference draft ``ref_D[i]`` in ``log_ref``.
        """
        self = cls.__new__(cls)
        J = y.shape[0]
        sizer = BlockSizer("auto", stop - start, None)
        sizer.k[:] = stop - start          # first block: the whole stretch (as AR proposals)
        self._setup(model, rng, "block", BLOCK, schedule, sizer, parallel, y=y, d_draft=d_draft,
                    fresh=np.ones(J, dtype=np.bool_), has_draft=np.ones(J, dtype=np.bool_),
                    start=start, stop=stop, ref_D=ref_D)
        return self

    def _setup(self, model, rng, method, rule, schedule, sizer, parallel, *, y, d_draft, fresh,
               has_draft, start, stop, ref_D=None):
        S = y.shape[0]
        self.model, self.rng, self.method, self.rule = model, rng, method, rule
        self.schedule = schedule
        self.n_steps = schedule.n_steps
        self.a = np.ascontiguousarray(schedule.a)
        self.b = np.ascontiguousarray(schedule.b)
        self.c = np.ascontiguousarray(schedule.c)
        self.s = np.ascontiguousarray(schedule.s)
        self.sigma = np.ascontiguousarray(schedule.sigma)
        self.sizer, self.parallel = sizer, parallel
        self.y, self.d_draft, self.fresh, self.has_draft = y, d_draft, fresh, has_draft
        self.progress_j, self.stop = start.copy(), stop
        self.steps = self.progress_j              # (SamplerBase: each sample's progress)
        # Steps are a chain: row k is asked unless the chain ends after the block.
        self.order_len = np.full(S, self.n_steps, dtype=np.int64)
        self.no_tail = np.zeros(S, dtype=np.int64)
        self.track = ref_D is not None
        self.ref_D = ref_D if ref_D is not None else np.zeros((0, y.shape[1]))
        self.log_ref = np.zeros(S)
        self.waiting = np.zeros(S, dtype=np.bool_)
        self.log = RoundLog.empty(S)
        self.trace = None      # tests: a list receiving each chunk's draft states
        self._r = None

    # -- the round protocol (fastspec._driver.BatchSampler) -------------------------------
    def plan(self):
        r = _Round()
        # "sequential" spends its first round on D(y_0) (k = 0); the others start drafting.
        r.samples, r.j, r.k, r.first_row, r.row_start, _, _, _ = plan_round(
            self.sizer, self.progress_j, self.stop, self.waiting, self.order_len,
            self.has_draft, self.fresh, self.no_tail, self.log)
        A, d = r.samples.size, self.model.dim
        if A == 0:
            return 0
        k_max = int(r.k.max())
        # O(d) per slot: the draft is built chunk by chunk in request() (see fill_states).
        r.u_stop = np.empty((A, k_max + 1))
        r.fstate = np.empty((A, N_FSTATE))
        r.istate = np.empty((A, N_ISTATE), dtype=np.int64)
        r.cand_D = np.empty((A, d))
        r.full_D = np.empty((A, d))
        r.W_cur = np.empty((A, d))
        r.W_cand = np.empty((A, d))
        r.xi_cand = np.empty((A, d))
        r.n_drawn = np.zeros(A, dtype=np.int64)
        r.err = np.zeros((A, 3), dtype=np.int64)
        r.chunks = {}
        if self.sizer.mode == COST:
            self.sizer.reserve(r.k)
        r.rnd = (r.samples, r.j, r.k, r.first_row, r.row_start)
        r.stream = (r.u_stop, r.fstate, r.istate)
        r.walk = (r.W_cur, r.n_drawn, r.W_cand, r.xi_cand)
        r.found = (r.cand_D, r.full_D)
        kernels.draft_blocks(self.parallel, self.rng, r.rnd, self._chain(), self._coef(),
                             r.stream, r.walk, r.found, self._ref())
        self._r = r
        return int(r.row_start[-1])

    def request(self, start, stop):
        """The states of rows ``start .. stop - 1``; their draft states and noises are kept
        until :meth:`consume` reads the answer (calls must be requested in row order)."""
        r = self._r
        K, d = stop - start, self.model.dim
        z = np.empty((K, d))
        sigma = np.empty(K)
        W_rows = np.empty((K, d))
        xi_rows = np.empty((K, d))
        kernels.fill_states(self.parallel, self.rng, r.rnd, start, stop, self._chain(),
                            self._coef(), (self.s, self.sigma), r.walk, (z, sigma, W_rows, xi_rows))
        r.chunks[start] = (W_rows, xi_rows)
        if self.trace is not None:
            self.trace.append((start, W_rows.copy()))
        return z, sigma

    def consume(self, answer, start, stop, where):
        r = self._r
        W_rows, xi_rows = r.chunks.pop(start)
        kernels.verify_rows(self.parallel, self.rule, answer, start, stop, r.rnd, self._chain(),
                            self._coef(), (W_rows, xi_rows), r.stream, r.walk, r.found, r.err,
                            self._ref())
        if r.err[:, 0].any():
            slot = int(np.flatnonzero(r.err[:, 0])[0])
            _, g, step = (int(v) for v in r.err[slot])
            raise OracleError(self.model.non_finite_message(
                where, g - start, int(r.samples[slot]), step, self.sigma[step],
                answer[g - start]))

    def finish(self, where):
        r = self._r
        if r is None:
            return
        tau = np.empty(r.samples.size, dtype=np.int64)
        kernels.settle_blocks(self.parallel, self.rng, self.rule, r.rnd, self.n_steps,
                              self._chain(), self._coef(), r.walk, r.stream, r.found,
                              self.sizer.arrays(), tau, self._ref())
        if self.trace is not None:
            self.trace.append((-1, r.W_cur.copy()))
        self._settled(r, tau, where)

    # -- the kernels' state tuples (fastspec.diffusion.kernels) ------------------------------
    def _chain(self):
        return self.y, self.d_draft, self.fresh, self.progress_j, self.stop

    def _coef(self):
        return self.a, self.b, self.c

    def _ref(self):
        return self.track, self.ref_D, self.log_ref

    def row_bytes(self):
        """A row's state, its answer, its draft state and its noise, float64 ``(d,)`` each."""
        return 32 * self.model.dim + 16

    def result(self, stats):
        from .._result import SampleResult
        return SampleResult(samples=self.y, stats=stats)

    # -- the srs door (fastspec._srs.SrsHost) ------------------------------------------------
    # A sample's block is k steps drafted with the denoiser frozen (nu_B); its proposals
    # are block-method runs of the same k steps from the sample's state, started from the
    # denoiser there (fresh), each summing log mu_B(X) - log nu_B(X) of its path against
    # the sample's frozen draft as it goes (fastspec.diffusion.kernels.reference_term).
    def _proposal_start(self, r, slot, where):
        """The denoiser at each rejected slot's state: its row 0, or its fresh draft (R, d)."""
        return r.cand_D[slot].copy()

    def proposals(self, parents, par, k, init, rng):
        """``par[p]`` block-method runs of the ``k[p]`` steps of each sample ``parents[p]``
        from its state, started from the denoiser ``init[p]`` there, with PCG64 states
        ``rng`` (one row per proposal)."""
        start = np.repeat(self.progress_j[parents], par)
        return DiffusionSampler.for_jobs(
            self.model, rng, self.schedule, y=np.repeat(self.y[parents], par, axis=0),
            start=start, stop=start + np.repeat(k, par), d_draft=np.repeat(init, par, axis=0),
            ref_D=np.repeat(self.d_draft[parents], par, axis=0),
            parallel=use_parallel(int(k.sum() * par.mean()) * self.model.dim))

    def proposal_log_ratio(self, jobs, jobs_idx, parents):
        """``log mu_B(X) - log nu_B(X)`` of finished proposals ``jobs_idx`` (summed along
        their paths): float64 ``(len(jobs_idx),)``."""
        return jobs.log_ref[jobs_idx]

    def accept_proposal(self, s, jobs, j, k):
        """Install proposal ``j`` of ``jobs`` as sample ``s``'s next ``k`` steps."""
        self.y[s] = jobs.y[j]
        self.d_draft[s] = jobs.d_draft[j]
        self.fresh[s] = jobs.fresh[j]
        self.progress_j[s] = jobs.stop[j]
        step = self.progress_j[s]
        if self.fresh[s] and self.stop[s] - step == 1:   # the last step needs no round
            _last_step(self.rng, s, self.y, self.d_draft, self.a[step], self.b[step],
                       self.c[step])
            self.progress_j[s] = self.stop[s]
