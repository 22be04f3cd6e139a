"""``DiffusionModel``: a diffusion model seen through its denoiser oracle."""

import numbers

import numpy as np

from .._driver import read_answer
from .._errors import OracleError


class DiffusionModel:
    """A model on ``R^dim`` reached through its denoiser.

    Parameters
    ----------
    denoise : callable
        ``denoise(z, sigma) -> x_hat``: ``z`` float64 ``(K, dim)``, ``sigma``
        float64 ``(K,)`` (all > 0); returns ``(K, dim)`` floats,
        ``E[x | x + sigma * eps = z]`` row by row. Each sampling round makes
        exactly one call, with the rows of every sample stacked.
    dim : int
        Dimension ``d`` of the data (>= 1).

    Notes
    -----
    Every answer is checked: a wrong shape or type, or a non-finite value in a
    row the samplers use, raises :class:`fastspec.OracleError` naming the
    round, the chain step, sigma and the offending row, and no sample is
    returned. The answer is borrowed: the denoiser may return a view of a
    buffer it overwrites on its next call. Exceptions the denoiser raises pass
    through unchanged. The samplers draw the law
    of the chain's last state ``y_N`` (see :mod:`fastspec.schedules`); for
    the final denoised estimate call
    ``model.denoise(y / schedule.final_s, np.full(len(y), schedule.final_sigma))``.

    Examples
    --------
    >>> import numpy as np, fastspec
    >>> def denoise(z, sigma):  # data ~ N(0, I)
    ...     return z / (1.0 + sigma[:, None] ** 2)
    >>> model = fastspec.DiffusionModel(denoise, dim=3)
    >>> sched = fastspec.schedules.ve(100, 80.0, 0.002)
    >>> fastspec.sample(model, schedule=sched, n_samples=2, seed=0).samples.shape
    (2, 3)
    """

    def __init__(self, denoise, dim):
        if not callable(denoise):
            raise ValueError(f"denoise must be callable, got {type(denoise).__name__}")
        if (not isinstance(dim, (numbers.Integral, np.integer)) or isinstance(dim, bool)
                or dim < 1):
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        self.denoise = denoise
        self.dim = int(dim)

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"

    # -- the pipeline protocol (fastspec._driver.Pipeline) ---------------------------------
    def _sampler(self, method, streams, options):
        from ..schedules import Schedule, ve
        options = dict(options)
        for key in ("order", "given"):
            if options.pop(key, None) is not None:
                raise ValueError(f"{key} is for ARModel only; a DiffusionModel takes schedule=")
        schedule = options.pop("schedule", None)
        if schedule is None:
            schedule = ve(1000, 80.0, 0.002)
        if not isinstance(schedule, Schedule):
            raise ValueError(
                "schedule must be a fastspec.schedules.Schedule (e.g. "
                f"fastspec.schedules.ve(...)), got {type(schedule).__name__}")
        if method != "sequential":
            schedule.check_speculative()
        if method == "srs":
            from .srs import SrsSampler
            options.pop("rule", None)
            return SrsSampler(self, streams, schedule=schedule, **options)
        from .sampler import DiffusionSampler
        return DiffusionSampler(self, streams, method=method, schedule=schedule, **options)

    def _call(self, args, counter, where):
        """One call of the denoiser on ``(z, sigma)``; the answer (K, dim), float32 or float64."""
        z, sigma = args
        out = counter.timed(self.denoise, z, sigma)
        return read_answer(out, "the denoiser", where, (z.shape[0], self.dim), "(K, dim)",
                           kinds="fiu")[0]

    def non_finite_message(self, where, row, sample, step, sigma, values):
        """A short message for a non-finite denoiser row."""
        values = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        shown = ", ".join(f"[{int(c)}]={values[c]}" for c in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        who = "" if sample is None else f"sample {sample}, "
        step = "" if step is None else f"chain step {step}, "
        return (f"{where}: the denoiser returned non-finite values at row {row} ({who}{step}"
                f"sigma={float(sigma):.6g}): {shown}{more}. Check the denoiser at that noise "
                "level.")

    def query(self, z, sigma):
        """Call the denoiser once and check its answer.

        Parameters
        ----------
        z : array_like (K, dim)
        sigma : array_like (K,)

        Returns
        -------
        ndarray (K, dim) float64

        Raises
        ------
        OracleError
            Wrong shape, type or non-finite values.
        """
        from .._driver import CallCounter
        z = np.ascontiguousarray(z, dtype=np.float64)
        sigma = np.ascontiguousarray(sigma, dtype=np.float64)
        den = self._call((z, sigma), CallCounter(), "query").astype(np.float64)
        finite = np.isfinite(den).all(axis=1)
        if not finite.all():
            r = int(np.flatnonzero(~finite)[0])
            raise OracleError(self.non_finite_message("query", r, None, None, sigma[r], den[r]))
        return den
