"""What ``fastspec.sample`` returns: the samples and how much they cost."""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SampleStats:
    """Cost of one ``fastspec.sample`` call.

    Attributes
    ----------
    method : str
        The method that ran (``"auto"`` resolved).
    rounds : int
        Batched oracle calls made by the call: the latency figure. All samples
        of the call share rounds, so this is about the per-sample maximum.
    contexts : int
        Oracle rows evaluated (AR contexts or denoiser states): the work figure.
    rounds_per_sample : ndarray of int64, shape (n_samples,)
        Rounds in which each sample had at least one row.
    rows_per_sample : ndarray of int64, shape (n_samples,)
        Oracle rows each sample asked for.
    block_sizes : ndarray of int64
        Length k of every speculated block, all samples concatenated.
    accepted : ndarray of int64
        Draft positions kept in each of those blocks (0..k).
    n_steps : int
        Sequential steps of the target chain (n for AR, N for diffusion).
    wall_seconds, oracle_seconds : float
        Wall-clock of the whole call, and the part spent inside the user's
        oracle (timed around each call of it).
    oracle_calls : int
        Calls of the user's oracle: ``rounds`` unless ``max_rows`` split a
        round's rows into several calls.
    positions : int
        AR: the (row, position) marginals the oracle was asked for, ``n`` per
        row for a dense oracle, the listed positions with the positions
        protocol (:class:`fastspec.ARModel`); 0 for diffusion.
    positions_per_sample : ndarray of int64, shape (n_samples,)
        The same, per sample.
    draft_calls, draft_rows : int
        With ``draft=``: calls of the draft model and the rows (contexts or
        states) it was asked for, counted apart from the target's ``rounds``,
        ``oracle_calls`` and ``contexts``; 0 without a draft model.
    draft_seconds : float
        Seconds spent inside the draft model (part of ``wall_seconds``).
    """

    method: str
    rounds: int
    contexts: int
    rounds_per_sample: np.ndarray
    rows_per_sample: np.ndarray
    block_sizes: np.ndarray
    accepted: np.ndarray
    n_steps: int
    wall_seconds: float = 0.0
    oracle_seconds: float = 0.0
    oracle_calls: int = 0
    positions: int = 0
    positions_per_sample: np.ndarray = field(default=None, repr=False)
    draft_calls: int = 0
    draft_rows: int = 0
    draft_seconds: float = 0.0

    @property
    def mean_accepted(self):
        """Mean number of draft positions kept per speculated block (nan if none)."""
        return float(np.mean(self.accepted)) if self.accepted.size else float("nan")

    @property
    def mean_block_size(self):
        """Mean speculated block length k (nan if no block was speculated)."""
        return float(np.mean(self.block_sizes)) if self.block_sizes.size else float("nan")

    @property
    def mean_rounds(self):
        """Mean rounds per sample."""
        return float(np.mean(self.rounds_per_sample))

    @property
    def engine_share(self):
        """Share of wall-clock spent outside the oracle (the engine's overhead)."""
        if self.wall_seconds <= 0:
            return float("nan")
        return max(0.0, 1.0 - self.oracle_seconds / self.wall_seconds)

    def __str__(self):
        n = len(self.rounds_per_sample)
        lines = [
            f"method {self.method}: {n} sample(s) of {self.n_steps} sequential steps",
            f"  rounds (batched oracle calls): {self.rounds}"
            f"  (per sample: mean {self.mean_rounds:.1f}, max {int(np.max(self.rounds_per_sample, initial=0))};"
            f" sequential would need {self.n_steps})",
            f"  oracle rows: {self.contexts}  ({self.contexts / max(1, n * self.n_steps):.2f} x n per sample)",
        ]
        if self.block_sizes.size:
            lines.append(
                f"  blocks: {self.block_sizes.size}, mean length {self.mean_block_size:.1f},"
                f" mean accepted {self.mean_accepted:.1f}"
            )
        if self.draft_calls:
            lines.append(f"  draft model: {self.draft_calls} calls, {self.draft_rows} rows,"
                         f" {self.draft_seconds:.3f} s (counted apart from the target's)")
        calls = "" if self.oracle_calls == self.rounds else f" in {self.oracle_calls} calls"
        lines.append(
            f"  wall-clock {self.wall_seconds:.3f} s, of which oracle {self.oracle_seconds:.3f} s{calls}"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class SampleResult:
    """Samples and their cost.

    Attributes
    ----------
    samples : ndarray
        ``(n_samples, n)`` int64 for AR models, ``(n_samples, dim)`` float64
        for diffusion models.
    stats : SampleStats
    orders : ndarray of int64 or None
        AR: ``(n_samples, n)``; row ``i`` lists the free positions of sample
        ``i`` in the order they were drawn, then ``-1`` for each position
        pinned by ``given`` (None for diffusion).
    log_prob : ndarray of float64 or None
        AR: ``(n_samples,)``, the natural log of each sample's probability under
        the sequential law for its order (given the pinned positions), summed
        from the conditionals the samplers already computed (None for
        diffusion).
    """

    samples: np.ndarray
    stats: SampleStats
    orders: np.ndarray = field(default=None)
    log_prob: np.ndarray = field(default=None)

    def __str__(self):
        return f"SampleResult(samples shape {self.samples.shape})\n{self.stats}"
