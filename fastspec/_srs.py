"""Speculative rejection sampling (srs), batched: what both pipelines share.

The seed paper's sequence-level rule (docs/ALGORITHMS.md, section 3, "srs"). Each sample
drafts a block ``B`` (``nu_B``: its current marginals, or its frozen-denoiser
path) and keeps it whole with probability ``min(1, mu_B(W) / nu_B(W))``, where
``mu_B`` is the target law of the block. Otherwise the block is drawn from the
residual ``(mu_B - nu_B)_+`` by rejection: proposals ``X ~ mu_B`` are kept with
probability ``(1 - nu_B(X) / mu_B(X))_+``; the first kept one *in index order*
wins (never the first to finish, which would depend on the value drawn).

The proposals are drawn with the best exact sampler fastspec has, the batched
block sampler, run on the sub-problem "block ``B`` from the sample's current
state" (``for_jobs``); it returns ``log mu_B(X) - log nu_B(X)`` from the
conditionals its own verification computed, and asks in its last round for the
marginals (or denoiser value) after the block: the sample's next, fresh draft.
The proposals of every sample rejected in one round form one *wave*, a batch
that shares every round with the other samples' blocks and the other waves.
Each sample runs ``par`` proposals at once, from its own running acceptance
rate of proposals; their streams are seeded from the sample's own, so sample
``i`` stays a function of ``(seed, i)``.
"""

from typing import Protocol

import numpy as np

from ._driver import BatchSampler, Rejections, RoundLog, widest_row_bytes
from ._jit import kernel
from ._seeds import next_double, next_uint64, seed_states

#: Concurrent proposals per rejected block: about 2 / (estimated acceptance of a
#: proposal), clamped to [PAR_MIN, PAR_MAX]. A proposal is kept with probability
#: TV(mu_B, nu_B), so 2 / TV of them find one with probability 1 - e^-2 = 0.86.
#: PAR_MAX bounds the rows a rejected block costs (about PAR_MAX times its
#: length per wave). Measured (12 seeds, one sample; MarkovChain e^2 n=1024,
#: CurieWeiss n=1024): at most 64: 34.7 rounds, 4.20n rows / 11.8, 2.50n; at
#: most 6: 38.1, 4.17n / 12.9, 2.29n; at most 4: 38.0, 3.75n / 12.8, 1.81n.
PAR_MIN, PAR_MAX = 2, 4


@kernel
def seed_jobs(rng, parents, job_rng):
    """Job j's PCG64 state, seeded with four words drawn from its parent's stream.

    Jobs are taken in order, so a sample's jobs take its stream's words in index
    order, whatever else is in the wave.
    """
    words = np.empty((parents.shape[0], 4), dtype=np.uint64)
    for j in range(parents.shape[0]):
        for w in range(4):
            words[j, w] = next_uint64(rng, parents[j])
    seed_states(words, job_rng)


@kernel
def draw_uniforms(rng, rows, out):
    """One uniform from each stream ``rows[i]``, in order."""
    for i in range(rows.shape[0]):
        out[i] = next_double(rng, rows[i])


def _octave(k):
    return np.minimum(np.floor(np.log2(np.maximum(k, 1))).astype(np.int64) + 1, 63)


def _padded(arrays):
    """AR positions (K, W) of several sources padded with -1 to one width; others as given."""
    width = max(a.shape[1] for a in arrays) if arrays[0].ndim == 2 else None
    if width is None or arrays[0].dtype != np.int64 or all(a.shape[1] == width for a in arrays):
        return arrays
    return [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1) for a in arrays]


class Wave:
    """The proposals of the samples whose blocks were rejected in one round."""

    def __init__(self, parents, par, k, init, jobs, rng):
        self.parents = parents                           # (P,)
        self.par = par                                   # proposals per parent (P,)
        self.k = k                                       # block length per parent (P,)
        self.init = init                                 # what seeds a parent's proposals
        self.job_parent = np.repeat(parents, par)
        self.first_job = np.concatenate([[0], np.cumsum(par)[:-1]]).astype(np.int64)
        self.jobs, self.rng = jobs, rng
        self.decision = np.full(self.job_parent.size, -1, dtype=np.int64)  # -1 running, 0/1
        self.open = np.ones(parents.size, dtype=np.bool_)


class SrsHost(BatchSampler, Protocol):
    """The door between srs and the batched sampler it wraps: all srs reads or calls.

    The pipelines' samplers (:class:`fastspec.ar.sampler.ARSampler`,
    :class:`fastspec.diffusion.sampler.DiffusionSampler`) implement it, for the
    samples of a call (rule ``SRS``) and for their proposals (``for_jobs``).
    """

    #: Per-sample PCG64 states, uint64 ``(S, 4)``; srs draws from row ``s`` for sample s.
    rng: np.ndarray
    #: Per-sample rounds, rows and positions, shared with srs.
    log: RoundLog
    #: Samples waiting for srs proposals (skipped by :meth:`plan`), bool ``(S,)``.
    waiting: np.ndarray
    #: Samples (S).
    n_samples: int

    def round_rows(self) -> tuple:
        """This round's slots: ``(samples, rows, positions or None)``, int64 ``(A,)`` each."""

    def take_rejections(self) -> "Rejections | None":
        """The blocks the last :meth:`finish` rejected (None: none)."""

    def proposals(self, parents, par, k, init, rng) -> "SrsHost":
        """A batched sampler of ``par[p]`` proposals of the block ``k[p]`` of each sample
        ``parents[p]``, started from ``init[p]`` (:attr:`Rejections.start`)."""

    def proposal_log_ratio(self, jobs, jobs_idx, parents) -> np.ndarray:
        """``log mu_B(X) - log nu_B(X)`` of finished proposals ``jobs_idx``."""

    def accept_proposal(self, s, jobs, j, k) -> None:
        """Install proposal ``j`` as sample ``s``'s block of length ``k`` (and, when the
        sample then has one step left from a fresh draft, draw it: it needs no round)."""

    def progress_done(self) -> np.ndarray:
        """Which samples (proposals) are complete, bool ``(S,)``."""

    def abandon(self, samples) -> None:
        """Stop proposals ``samples`` where they are."""


class SrsBase:
    """srs around a pipeline's batched sampler (``outer``, rule ``SRS``), through
    :class:`SrsHost` alone.

    Subclasses provide :meth:`_slice_answer` (a call's answer for some rows),
    :meth:`_init_rows` and :meth:`_stack_init` (slice and stack
    :attr:`Rejections.start`).
    """

    def __init__(self, outer):
        self.outer = outer
        self.model = outer.model
        self.n_steps = outer.n_steps
        self.log = outer.log
        S = outer.n_samples
        self.block_k = np.zeros(S, dtype=np.int64)       # a waiting sample's block length
        self.tried = np.zeros((S, 64), dtype=np.int64)   # its proposals, by block-length octave
        self.kept = np.zeros((S, 64), dtype=np.int64)
        self.waves = []

    # -- the round protocol (fastspec._driver.BatchSampler) -------------------------------
    def plan(self):
        self.sources = []
        total = self.outer.plan()
        self.sources.append((self.outer, 0, total))
        busy = []
        for wave in self.waves:
            rows = wave.jobs.plan()
            if rows:
                samples, job_rows, positions = wave.jobs.round_rows()
                parents = wave.job_parent[samples]
                np.add.at(self.log.rows, parents, job_rows)
                if positions is not None:    # AR: the positions its rows asked for
                    np.add.at(self.log.positions, parents, positions)
                busy.append(parents)
                self.sources.append((wave.jobs, total, total + rows))
                total += rows
        if busy:   # a waiting sample has no row of its own: count its round once, via its jobs
            self.log.rounds[np.unique(np.concatenate(busy))] += 1
        return total

    @property
    def dense_positions(self):
        return getattr(self.outer, "dense_positions", None)

    def row_bytes(self):
        return max(widest_row_bytes(src) for src, _, _ in self.sources)

    def _pieces(self, start, stop):
        for source, lo, hi in self.sources:
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                yield source, a - lo, b - lo, a - start, b - start

    def request(self, start, stop):
        parts = [src.request(a, b) for src, a, b, _, _ in self._pieces(start, stop)]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(_padded(p)) for p in zip(*parts))
        return np.concatenate(parts)

    def consume(self, answer, start, stop, where):
        for src, a, b, lo, hi in self._pieces(start, stop):
            src.consume(self._slice_answer(answer, lo, hi), a, b, where)

    def finish(self, where):
        outer = self.outer
        self._new = []
        outer.finish(where)
        rejected = outer.take_rejections()
        if rejected is not None:
            self._new.append((rejected.samples, rejected.k, rejected.start))
            self.block_k[rejected.samples] = rejected.k
            outer.waiting[rejected.samples] = True
        for wave in self.waves:
            wave.jobs.finish(where)
            self._resolve(wave)
        self.waves = [w for w in self.waves if w.open.any()]
        if self._new:            # one wave for every sample that needs proposals now
            parents = np.concatenate([p for p, _, _ in self._new])
            k = np.concatenate([k for _, k, _ in self._new])
            init = self._stack_init([i for _, _, i in self._new])
            par = self._par(parents, k)
            rng = np.empty((int(par.sum()), 4), dtype=np.uint64)
            seed_jobs(outer.rng, np.repeat(parents, par), rng)
            jobs = outer.proposals(parents, par, k, init, rng)
            self.waves.append(Wave(parents, par, k, init, jobs, rng))

    def progress(self):
        return self.outer.progress()

    def finished(self):
        return self.outer.finished() and not self.waves

    def result(self, stats):
        return self.outer.result(stats)

    # -- residual proposals ------------------------------------------------------------------
    def _log_ratio(self, wave, jobs_idx):
        """``log mu_B(X) - log nu_B(X)`` of finished proposals ``jobs_idx`` of ``wave``."""
        return self.outer.proposal_log_ratio(wave.jobs, jobs_idx, wave.job_parent[jobs_idx])

    def _par(self, parents, k):
        octave = _octave(k)
        tv = (self.kept[parents, octave] + 1) / (self.tried[parents, octave] + 2)
        return np.clip(np.ceil(2.0 / tv), PAR_MIN, PAR_MAX).astype(np.int64)

    def _resolve(self, wave):
        """Test finished proposals; settle samples whose first open proposal was kept."""
        jobs = wave.jobs
        # (Proposals of a sample already settled were abandoned: never tested.)
        open_job = np.repeat(wave.open, wave.par)
        newly = np.flatnonzero(jobs.progress_done() & (wave.decision < 0) & open_job)
        if newly.size:
            u = np.empty(newly.size)
            draw_uniforms(wave.rng, newly, u)
            log_ratio = self._log_ratio(wave, newly)
            keep = u < -np.expm1(np.minimum(0.0, -log_ratio))
            wave.decision[newly] = keep.astype(np.int64)
            parents = wave.job_parent[newly]
            octave = _octave(np.repeat(wave.k, wave.par)[newly])
            np.add.at(self.tried, (parents, octave), 1)
            np.add.at(self.kept, (parents, octave), keep.astype(np.int64))
        # Per open sample: its first proposal not rejected, in index order.
        candidate = np.where(wave.decision != 0, np.arange(wave.decision.size),
                             wave.decision.size)
        first = np.minimum.reduceat(candidate, wave.first_job)
        last = wave.first_job + wave.par
        for p in np.flatnonzero(wave.open):
            j = first[p]
            if j >= last[p]:                              # all rejected: more proposals
                wave.open[p] = False
                self._new.append((wave.parents[p:p + 1], wave.k[p:p + 1],
                                  self._init_rows(wave.init, p)))
            elif wave.decision[j] == 1:
                wave.open[p] = False
                jobs.abandon(np.arange(wave.first_job[p], last[p]))
                s = wave.parents[p]
                self.outer.accept_proposal(s, jobs, j, wave.k[p])
                self.outer.waiting[s] = False
