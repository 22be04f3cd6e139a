"""The round loop shared by both pipelines, and the contract each pipeline implements.

A call of :func:`fastspec.sample` builds one :class:`BatchSampler` holding every
sample's state in arrays, then :func:`run_rounds` drives it: each round the
sampler drafts all blocks at once (:meth:`BatchSampler.plan`), the round's rows
go to the user's oracle in calls of at most ``max_rows`` rows (one round, however
many calls), each call's answer is verified as it arrives
(:meth:`BatchSampler.consume`) and then dropped, and the sampler settles every
sample's block (:meth:`BatchSampler.finish`). Nothing in a round loops over
samples in Python.
"""

import gc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ._errors import OracleError
from ._result import SampleResult, SampleStats

if TYPE_CHECKING:
    from ._options import SampleOptions

#: What ``max_rows="auto"`` (the default) allows one oracle call to cost: the
#: rows of a call are as many as keep its answer, plus what the engine holds
#: per row of the call (diffusion: the request, draft states and noises), under
#: this many bytes, counting answers as float64. At least one row per call.
#: 256 MiB left a diffusion round of 2000 samples at d = 64 (ve(1000), block) at
#: 278 MiB above the interpreter, 64 MiB at 86 MiB against sequential's 11 MiB
#: (docs/BENCHMARKS.md, memory of a round).
MEMORY_BUDGET = 64 * 2**20


def rows_per_call(max_rows, row_bytes, rows):
    """The rows of each call for ``rows`` rows (``max_rows``: None, "auto" or an int).

    ``row_bytes``: the bytes one row costs (what "auto" divides the budget by).
    """
    if max_rows is None:
        return rows
    if max_rows == "auto":
        return max(1, min(rows, MEMORY_BUDGET // max(1, row_bytes)))
    return max_rows


def call_bounds(max_rows, rows, row_bytes, widths=None):
    """``(start, stop)`` of each call of a round of ``rows`` rows.

    Parameters
    ----------
    max_rows : None, "auto" or int
    rows : int
    row_bytes : int or tuple
        What one row costs: bytes, or ``(fixed, per_position)`` bytes when the rows
        have ``widths``.
    widths : int64 ndarray (rows,), optional
        Positions each row asks for (the AR positions protocol). A call's answer is
        padded to its widest row, so with "auto" a call stops before a row whose
        width would take the call past the budget: narrow rows share calls, wide
        ones do not pay for them.
    """
    if widths is None or max_rows != "auto":
        if widths is not None:
            row_bytes = row_bytes[0] + row_bytes[1] * int(widths.max(initial=1))
        step = rows_per_call(max_rows, row_bytes, rows)
        return [(start, min(rows, start + step)) for start in range(0, rows, step)]
    fixed, per_position = row_bytes
    if rows * (fixed + per_position * int(widths.max(initial=1))) <= MEMORY_BUDGET:
        return [(0, rows)]
    bounds, start, wide = [], 0, 0
    for g, w in enumerate(widths.tolist()):
        wide_with = max(wide, w)
        if g > start and (g + 1 - start) * (fixed + per_position * wide_with) > MEMORY_BUDGET:
            bounds.append((start, g))
            start, wide_with = g, w
        wide = wide_with
    bounds.append((start, rows))
    return bounds


def widest_row_bytes(sampler):
    """The bytes of ``sampler``'s widest row this round (its ``row_bytes``, priced at the
    widest of its ``row_widths`` when it has them)."""
    cost = sampler.row_bytes()
    if isinstance(cost, tuple):
        cost = cost[0] + cost[1] * int(sampler.row_widths().max(initial=1))
    return cost


class BatchSampler(Protocol):
    """One call's samplers; what :func:`run_rounds` drives."""

    #: Sequential steps of the target chain (n for AR, N for diffusion).
    n_steps: int
    #: Per-sample rounds and rows, and every block's (k, accepted).
    log: "RoundLog"

    def plan(self) -> int:
        """Draft the next block of every unfinished sample; return the round's rows.

        0 rows with :meth:`finished` false: blocks that need no oracle row (a
        last position drawn from fresh marginals); :meth:`finish` settles them.
        """

    def finished(self) -> bool:
        """Whether every sample is complete."""

    def request(self, start: int, stop: int) -> Any:
        """The oracle's arguments for rows ``start .. stop - 1`` of this round."""

    def consume(self, answer: Any, start: int, stop: int, where: str) -> None:
        """Verify rows ``start .. stop - 1`` from the oracle's ``answer`` (borrowed: not kept)."""

    def finish(self, where: str) -> None:
        """Settle this round's blocks: kept drafts, residual draws, next drafts.

        ``where`` names the round (``"round 3"``) in the errors it raises.
        """

    def progress(self) -> tuple:
        """``(steps done over all samples, steps in all)``."""

    def row_bytes(self) -> int:
        """Bytes one row of this round costs while its call is out (``max_rows="auto"``)."""

    def result(self, stats: SampleStats) -> SampleResult:
        """The samples, once :meth:`plan` returned 0."""


@runtime_checkable
class Pipeline(Protocol):
    """What :func:`fastspec.sample` needs of a model family.

    :class:`fastspec.ARModel` and :class:`fastspec.DiffusionModel` implement it;
    :func:`fastspec.sample` and :mod:`fastspec.cluster` accept any object
    that does, so a third family needs no change there.
    """

    def batch_sampler(self, method: str, streams, options: "SampleOptions") -> BatchSampler:
        """A :class:`BatchSampler` of one call.

        Parameters
        ----------
        method : {"sequential", "token", "block", "srs"}
            Resolved ("auto" is not passed).
        streams : fastspec._seeds.SampleStreams
            One random stream per sample.
        options : fastspec._options.SampleOptions
            The family checks its own fields and refuses the others'
            (:meth:`~fastspec._options.SampleOptions.refuse`).
        """

    def call_oracle(self, args, counter: "CallCounter", where: str) -> Any:
        """One call of the user's oracle on ``args``; the answer, checked for shape and type."""


def read_answer(out, who, where, shape, names, kinds="fiub"):
    """The oracle's answer ``out`` as a C-contiguous float32 or float64 array of ``shape``,
    and the dtype it arrived in.

    Anything numpy can read as real numbers is accepted (lists, objects with
    ``__array__``, CPU tensors); other dtypes are converted to float64. ``who``
    ("marginals", "the denoiser") and ``names`` ("(K, n, q)") word the error.

    Raises
    ------
    OracleError
        If numpy cannot read it, it is not real numbers, or its shape is wrong.
    """
    try:
        arr = np.asarray(out)
    except Exception as exc:  # e.g. a tensor that needs .detach() first
        raise OracleError(f"{where}: {who} returned a {type(out).__name__} that numpy cannot "
                          f"read as an array ({exc}); return a numpy float array {names}") \
            from exc
    if arr.dtype.kind not in kinds:
        raise OracleError(f"{where}: {who} returned a {type(out).__name__} of dtype {arr.dtype}, "
                          f"not a float array; return floats of shape {names} = {shape}")
    if arr.shape != shape:
        raise OracleError(f"{where}: {who} returned shape {arr.shape}, expected {names} = "
                          f"{shape}")
    dtype = arr.dtype
    if dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return np.ascontiguousarray(arr), dtype


class SamplerBase:
    """What both pipelines' batched samplers share.

    A subclass keeps each sample's progress in ``self.steps`` and the step it
    stops at in ``self.stop`` (int64 ``(S,)``), and its last round in ``self._r``
    (slots ``samples``, their block lengths ``k`` and row offsets ``row_start``).
    With the ``SRS`` rule it also implements :meth:`_proposal_start`; srs reads
    the rest through the public names of :class:`fastspec._srs.SrsHost`.
    """

    #: srs: the blocks rejected by the last :meth:`finish` (None if none), taken once.
    rejections = None

    @property
    def n_samples(self):
        """Samples (or srs proposals) this sampler draws."""
        return self.steps.shape[0]

    def progress(self):
        return int(self.steps.sum()), int(self.stop.sum())

    def finished(self):
        return bool((self.steps >= self.stop).all())

    def progress_done(self):
        """Which samples are complete."""
        return self.steps >= self.stop

    def abandon(self, samples):
        """Stop ``samples`` where they are (srs drops proposals it no longer needs)."""
        self.steps[samples] = np.maximum(self.steps[samples], self.stop[samples])

    def round_rows(self):
        """This round's slots: ``(samples (A,), rows (A,), positions (A,) or None)``,
        int64; positions only where the oracle is asked for listed positions."""
        r = self._r
        return r.samples, np.diff(r.row_start), None

    def take_rejections(self):
        """The :class:`Rejections` of the last :meth:`finish` (None: none), once."""
        rejections, self.rejections = self.rejections, None
        return rejections

    def _settled(self, r, tau, where):
        """Bookkeeping after a round's blocks of slots ``r`` kept ``tau`` drafts each."""
        self.has_draft[r.samples] = True
        rejected = np.flatnonzero(tau < 0)       # srs: to be redrawn from the residual
        if rejected.size:
            self.rejections = Rejections(r.samples[rejected], r.k[rejected],
                                         self._proposal_start(r, rejected, where))
        if self.method != "sequential":
            spec = r.k > 0
            self.log.add_blocks(r.samples[spec], r.k[spec], np.maximum(tau[spec], 0))
        self._r = None


@dataclass(frozen=True)
class Rejections:
    """Blocks the ``SRS`` rule rejected in one round; srs redraws them from the residual."""

    #: The samples, int64 ``(R,)``, increasing.
    samples: np.ndarray
    #: Their block lengths, int64 ``(R,)``.
    k: np.ndarray
    #: What starts each sample's proposals: AR, the marginals of its block's
    #: positions at its context, float64 ``(R, k_max, q)``; diffusion, the
    #: denoiser at its state, float64 ``(R, d)``.
    start: np.ndarray


@dataclass
class CallCounter:
    """Oracle calls and the seconds spent inside the user's oracle."""

    calls: int = 0
    seconds: float = 0.0

    def timed(self, fn, *args):
        """``fn(*args)``, counted and timed around the user's callable alone."""
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


@dataclass
class RoundLog:
    """Per-sample rounds and rows, and the (k, accepted) of every speculated block."""

    rounds: np.ndarray
    rows: np.ndarray
    positions: np.ndarray
    block_samples: list = field(default_factory=list)
    block_sizes: list = field(default_factory=list)
    accepted: list = field(default_factory=list)
    n_blocks: int = 0
    n_accepted: int = 0

    @classmethod
    def empty(cls, n_samples):
        return cls(*(np.zeros(n_samples, dtype=np.int64) for _ in range(3)))

    def add_blocks(self, samples, k, accepted):
        self.block_samples.append(samples)
        self.block_sizes.append(k)
        self.accepted.append(accepted)
        self.n_blocks += int(samples.size)
        self.n_accepted += int(accepted.sum())

    def blocks(self):
        """Block sizes and accepted lengths, grouped by sample (each sample's in order)."""
        if not self.block_sizes:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        samples = np.concatenate(self.block_samples)
        by_sample = np.argsort(samples, kind="stable")
        return (np.concatenate(self.block_sizes).astype(np.int64)[by_sample],
                np.concatenate(self.accepted).astype(np.int64)[by_sample])


def run_rounds(model, sampler, method, *, max_rows=None, progress=None):
    """Drive ``sampler`` to the end; returns its :class:`SampleResult`.

    The user's exceptions pass through unchanged, with a note naming the round
    and call (PEP 678); invalid answers raise :class:`OracleError`.
    """
    t_start = time.perf_counter()
    counter = CallCounter()
    rounds = 0
    idle = 0
    # Large batches allocate many arrays per round; nothing here makes reference
    # cycles, so the cyclic GC would only walk them (measured 30x slower at 20,000
    # samples with the old per-sample engine).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            rows = sampler.plan()
            if rows == 0:
                if sampler.finished():
                    break
                idle += 1
                if idle > 100_000:
                    raise RuntimeError("fastspec went 100,000 rounds without asking the oracle "
                                       "for a row; this is a fastspec bug, please report it")
                sampler.finish(f"round {rounds}")   # blocks settled without an oracle row
                continue
            idle = 0
            widths = getattr(sampler, "row_widths", lambda: None)()
            for call, (start, stop) in enumerate(call_bounds(max_rows, rows, sampler.row_bytes(),
                                                             widths)):
                where = (f"round {rounds}" if stop - start == rows else
                         f"round {rounds}, call {call} (rows {start}..{stop - 1} of {rows})")
                args = sampler.request(start, stop)
                try:
                    answer = model.call_oracle(args, counter, where)
                except OracleError:
                    raise
                except Exception as exc:
                    exc.add_note(f"(raised by the oracle in {where} of fastspec.sample)")
                    raise
                sampler.consume(answer, start, stop, where)
                del answer, args
            sampler.finish(f"round {rounds}")
            rounds += 1
            if progress is not None:
                progress.update(sampler, rounds)
    finally:
        if gc_was_enabled:
            gc.enable()
        if progress is not None:
            progress.close()
    log = sampler.log
    block_sizes, accepted = log.blocks()
    dense = getattr(sampler, "dense_positions", None)     # AR without the positions protocol
    positions = log.positions if dense is None else log.rows * dense
    drafter = getattr(sampler, "drafter", None)           # fastspec._drafts: a draft model's cost
    drafts = {} if drafter is None else dict(
        draft_calls=drafter.counter.calls, draft_rows=drafter.rows,
        draft_seconds=drafter.counter.seconds)
    stats = SampleStats(
        method=method, rounds=rounds, contexts=int(log.rows.sum()),
        rounds_per_sample=log.rounds, rows_per_sample=log.rows,
        positions=int(positions.sum()), positions_per_sample=positions,
        block_sizes=block_sizes, accepted=accepted, n_steps=int(sampler.n_steps),
        wall_seconds=time.perf_counter() - t_start, oracle_seconds=counter.seconds,
        oracle_calls=counter.calls, **drafts)
    return sampler.result(stats)
