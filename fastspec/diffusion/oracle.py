"""``DiffusionModel``: a diffusion model seen through its denoiser oracle."""

import math

import numpy as np

from .._checks import check_callable, check_int, is_int
from .._driver import read_answer
from .._options import AR_ONLY
from .._errors import OracleError


class DiffusionModel:
    """A model on ``R^dim`` (or on arrays of any ``shape``) reached through its denoiser.

    Parameters
    ----------
    denoise : callable
        ``denoise(z, sigma) -> x_hat``: ``z`` float64 ``(K, *shape)``,
        ``sigma`` float64 ``(K,)`` (all > 0); returns ``(K, *shape)`` floats,
        ``E[x | x + sigma * eps = z]`` row by row. Each sampling round makes
        exactly one call, with the rows of every sample stacked.
    dim : int, optional
        Dimension ``d`` of the data (>= 1): the same as ``shape=(dim,)``.
    shape : tuple of int, optional
        Shape of one data point, e.g. ``(C, H, W)`` for images; ``dim`` is
        then ``prod(shape)``. Give ``dim`` or ``shape`` (or both, if they
        agree). ``res.samples`` has shape ``(n_samples, *shape)``.

    Raises
    ------
    TypeError
        If ``denoise`` is not callable, or ``dim`` or ``shape`` is not made of ints.
    ValueError
        If neither ``dim`` nor ``shape`` is given, a size is below 1, or the
        two disagree.

    Notes
    -----
    The samplers work on flat rows of ``dim = prod(shape)`` values; the
    denoiser sees them as ``(K, *shape)`` views and its answer is flattened
    back, so a network on images is called on image batches.

    A schedule whose last step adds no noise (``c_{N-1} = 0``: diffusers'
    DDPM and DDIM chains end that way, and k-diffusion's when the sigmas end
    at 0) is a deterministic map of the state before it. The speculative
    methods run the chain up to that step and then spend one more round on
    the denoiser at every sample's last state; the law is unchanged. Zero
    noise at any earlier step is for ``method="sequential"`` only.

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

    def __init__(self, denoise, dim=None, shape=None):
        check_callable("denoise", denoise)
        check_int("dim", dim, 1, allow_none=True)
        if shape is None:
            if dim is None:
                raise ValueError("give dim (an int) or shape (a tuple such as (3, 32, 32)): the "
                                 "size of one data point")
            shape = (int(dim),)
        shape = as_shape(shape)
        size = math.prod(shape)
        if dim is not None and int(dim) != size:
            raise ValueError(f"dim = {dim} disagrees with shape = {shape} (prod {size}); give "
                             "one of them")
        self.denoise = denoise
        self.dim = size
        self.shape = shape

    def __repr__(self):
        if self.shape == (self.dim,):
            return f"{type(self).__name__}(dim={self.dim})"
        return f"{type(self).__name__}(shape={self.shape})"

    # -- the pipeline protocol (fastspec._driver.Pipeline) ---------------------------------
    def batch_sampler(self, method, streams, options):
        """:meth:`fastspec._driver.Pipeline.batch_sampler`: the ``schedule`` of ``options``
        is checked here (None: ``ve(1000, 80.0, 0.002)``), ``order`` and ``given`` are
        refused (ValueError)."""
        from ..schedules import Schedule, ve
        options.refuse(AR_ONLY, "ARModel", "a DiffusionModel takes schedule=")
        schedule = options.schedule
        rule = options.rule
        kwargs = dict(block_size=options.block_size, row_cost=options.row_cost,
                      parallel=options.parallel)
        if schedule is None:
            schedule = ve(1000, 80.0, 0.002)
        if not isinstance(schedule, Schedule):
            raise TypeError(
                "schedule must be a fastspec.schedules.Schedule (e.g. "
                f"fastspec.schedules.ve(...)), got {type(schedule).__name__}")
        last = None
        if schedule.n_steps == 1 and schedule.c[0] == 0:
            method = "sequential"      # one noiseless step: one denoiser call, whatever the method
            rule = None
        if method != "sequential" and schedule.n_steps > 1 and schedule.c[-1] == 0:
            # A noiseless last step is a function of the state before it: run the
            # chain up to it, then one round of the denoiser (_LastStep).
            last = schedule
            schedule = schedule._head()
        if method != "sequential":
            schedule.check_speculative()
        if method == "srs":
            from .srs import DiffusionSrsSampler
            inner = DiffusionSrsSampler(self, streams, schedule=schedule, **kwargs)
        elif options.draft is not None and method != "sequential":
            from .drafted import DraftedDiffusionSampler
            inner = DraftedDiffusionSampler(self, streams, drafter=options.draft, method=method,
                                            schedule=schedule, rule=rule, **kwargs)
        else:
            from .sampler import DiffusionSampler
            inner = DiffusionSampler(self, streams, method=method, schedule=schedule, rule=rule,
                                     **kwargs)
        if last is None and self.shape == (self.dim,):
            return inner
        return _LastStep(inner, last, self)

    def call_oracle(self, args, counter, where):
        """One call of the denoiser on ``(z, sigma)``; the answer (K, dim), float32 or float64."""
        z, sigma = args
        k = z.shape[0]
        out = counter.timed(self.denoise, z.reshape((k,) + self.shape), sigma)
        names = "(K, dim)" if self.shape == (self.dim,) else "(K, *shape)"
        return read_answer(out, "the denoiser", where, (k,) + self.shape, names,
                           kinds="fiu")[0].reshape(k, self.dim)

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
        z : array_like (K, dim) or (K, *shape)
        sigma : array_like (K,)

        Returns
        -------
        ndarray (K, *shape) float64

        Raises
        ------
        OracleError
            Wrong shape, type or non-finite values.
        """
        from .._driver import CallCounter
        z = np.ascontiguousarray(z, dtype=np.float64)
        z = z.reshape(z.shape[0], -1) if z.ndim else z
        sigma = np.ascontiguousarray(sigma, dtype=np.float64)
        den = self.call_oracle((z, sigma), CallCounter(), "query").astype(np.float64)
        finite = np.isfinite(den).all(axis=1)
        if not finite.all():
            r = int(np.flatnonzero(~finite)[0])
            raise OracleError(self.non_finite_message("query", r, None, None, sigma[r], den[r]))
        return den.reshape((den.shape[0],) + self.shape)


def as_shape(shape):
    """``shape`` as a tuple of ints >= 1: TypeError if it is not ints, ValueError if empty
    or a size is below 1."""
    if is_int(shape):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints such as (3, 32, 32), got "
                        f"{shape!r}") from None
    if not all(is_int(d) for d in dims):
        raise TypeError(f"shape must be a tuple of ints such as (3, 32, 32), got {shape!r}")
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"shape must be a non-empty tuple of ints >= 1, got {shape!r}")
    return tuple(int(d) for d in dims)


class _LastStep:
    """A batched sampler with a noiseless last step and the data's shape.

    ``inner`` runs the chain without its last step (``full`` is the whole
    schedule, or None when it has no noiseless last step; ``model`` is the
    DiffusionModel); once it is done, one
    round asks the denoiser at every sample's state and applies
    ``y <- a y + b D`` of the last step. Samples come back as ``(S, *shape)``.
    """

    def __init__(self, inner, full, model):
        self.inner, self.full, self.model, self.shape = inner, full, model, model.shape
        self.n_steps = full.n_steps if full is not None else inner.n_steps
        self.log = inner.log
        self.drafter = getattr(inner, "drafter", None)     # (a draft model's counts)
        self._y = None          # the states before the last step, once inner is done
        self._done = full is None
        self._inner_round = False

    def _states(self):
        return np.ascontiguousarray(self.inner.result(None).samples, dtype=np.float64)

    def plan(self):
        if not self.inner.finished():
            self._inner_round = True
            return self.inner.plan()
        self._inner_round = False
        if self._done:
            return 0
        self._y = self._states()
        self.log.rounds += 1
        self.log.rows += 1
        return self._y.shape[0]

    def finished(self):
        return self.inner.finished() and self._done

    def request(self, start, stop):
        if self._inner_round:
            return self.inner.request(start, stop)
        sigma = self.full.sigma[-1]
        return (self._y[start:stop] / self.full.s[-1], np.full(stop - start, sigma))

    def consume(self, answer, start, stop, where):
        if self._inner_round:
            return self.inner.consume(answer, start, stop, where)
        finite = np.isfinite(answer).all(axis=1)
        if not finite.all():
            r = int(np.flatnonzero(~finite)[0])
            raise OracleError(self.model.non_finite_message(
                where, r, start + r, self.n_steps - 1, self.full.sigma[-1], answer[r]))
        y = self._y[start:stop]
        y *= self.full.a[-1]
        y += self.full.b[-1] * answer

    def finish(self, where):
        if self._inner_round:
            self.inner.finish(where)
        elif self._y is not None:
            self._done = True

    def row_bytes(self):
        """The inner round's, or the last step's: a state and its answer, float64 ``(d,)``."""
        if self._inner_round:
            return self.inner.row_bytes()
        return 16 * self.model.dim + 16

    def progress(self):
        done, total = self.inner.progress()
        extra = 0 if self.full is None else int(self.log.rows.shape[0])
        return done + (extra if self._done else 0), total + extra

    def result(self, stats):
        from .._result import SampleResult
        y = self._y if self._y is not None else self._states()
        return SampleResult(samples=y.reshape((y.shape[0],) + self.shape), stats=stats)
