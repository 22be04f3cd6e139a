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
        Wall-clock of the whole call, and the part spent inside the oracle.
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

    @property
    def rows(self):
        """Alias of ``contexts`` (the word used for diffusion)."""
        return self.contexts

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
        lines.append(
            f"  wall-clock {self.wall_seconds:.3f} s, of which oracle {self.oracle_seconds:.3f} s"
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
        ``(n_samples, n)``: the order each AR sample was drawn in (None for
        diffusion).
    """

    samples: np.ndarray
    stats: SampleStats
    orders: np.ndarray = field(default=None)

    def __str__(self):
        return f"SampleResult(samples shape {self.samples.shape})\n{self.stats}"


def build_stats(method, counter, block_logs, n_steps, wall_seconds):
    """Assemble :class:`SampleStats` from the engine counter and per-sample block logs."""
    ks = [k for log in block_logs for k, _ in log]
    acc = [a for log in block_logs for _, a in log]
    return SampleStats(
        method=method,
        rounds=int(counter.rounds),
        contexts=int(counter.rows),
        rounds_per_sample=counter.task_rounds.copy(),
        rows_per_sample=counter.task_rows.copy(),
        block_sizes=np.asarray(ks, dtype=np.int64),
        accepted=np.asarray(acc, dtype=np.int64),
        n_steps=int(n_steps),
        wall_seconds=float(wall_seconds),
        oracle_seconds=float(counter.oracle_seconds),
    )
