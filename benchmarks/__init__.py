"""asv benchmarks of fastspec (``asv run``); shared pieces of the benchmark classes."""
import numpy as np


class _PerSampleTracks:
    """Rounds and oracle rows per sample of ``self.res`` (a SampleResult its subclass's
    ``setup(method, n)`` draws). asv skips names starting with ``_``, so this mixin is
    not a benchmark of its own."""

    def track_rounds_per_sample(self, method, n):
        return float(np.mean(self.res.stats.rounds_per_sample))
    track_rounds_per_sample.unit = "rounds"

    def track_rows_per_n(self, method, n):
        return float(np.mean(self.res.stats.rows_per_sample)) / n
    track_rows_per_n.unit = "rows / n"
