"""``ARModel``: an any-order autoregressive model seen through its marginal oracle."""

import math

import numpy as np

from .._checks import check_callable, check_flag, check_int
from .._driver import read_answer
from .._options import DIFFUSION_ONLY
from .._errors import OracleError
from . import kernels

#: Free-position marginals of a float64 answer must sum to one within this
#: tolerance; a lower-precision answer gets ``sqrt(eps)`` of its dtype (3.5e-4
#: for float32), the tolerance ``numpy.random.Generator.choice`` applies.
SUM_TOLERANCE = 1e-6

_CODES = {kernels.NON_FINITE: "a non-finite value", kernels.NEGATIVE: "a negative value",
          kernels.BAD_SUM: "values not summing to 1"}


def sum_tolerance(dtype):
    """Tolerance on the sum of a marginal given in ``dtype`` (see :data:`SUM_TOLERANCE`)."""
    if np.issubdtype(dtype, np.floating):
        return max(SUM_TOLERANCE, math.sqrt(float(np.finfo(dtype).eps)))
    return SUM_TOLERANCE


def _short(values, limit=8):
    """A few hundred characters at most: all values if few, else a summary."""
    values = np.asarray(values, dtype=np.float64)
    if values.size <= limit:
        return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"
    finite = values[np.isfinite(values)]
    parts = [f"{values.size} values"]
    if finite.size < values.size:
        parts.append(f"{values.size - finite.size} non-finite (first at index "
                     f"{int(np.flatnonzero(~np.isfinite(values))[0])})")
    if finite.size:
        parts.append(f"min {finite.min():.6g} (index {int(np.flatnonzero(values == finite.min())[0])})")
        parts.append(f"max {finite.max():.6g}")
    return ", ".join(parts)


def _short_context(context, limit=24):
    pinned = np.flatnonzero(context >= 0)
    n = context.shape[0]
    if n <= limit:
        return f"context {context.tolist()}"
    shown = ", ".join(f"{int(i)}: {int(context[i])}" for i in pinned[:8])
    more = " ..." if pinned.size > 8 else ""
    return f"context with {pinned.size} of {n} positions pinned {{{shown}{more}}}"


class ARModel:
    """An any-order autoregressive model on ``{0..q-1}^n``, reached through an oracle.

    Parameters
    ----------
    marginals : callable
        ``marginals(ctx) -> probs``. ``ctx`` is an int64 array ``(K, n)``:
        entry ``-1`` marks a free position, any other entry is the pinned
        symbol. ``probs`` is a float array ``(K, n, q)`` (float64, float32 or
        anything numpy can read as floats) whose row ``[r, i]`` is
        P(x_i = . | the pinned entries of ctx[r]) for every free ``i``; rows of
        pinned positions are ignored. The answer is borrowed: the oracle may
        return a view of a buffer it overwrites on its next call.
    n : int
        Sequence length (>= 1).
    q : int
        Alphabet size (>= 2).
    positions : bool, default False
        The positions protocol: the samplers call ``marginals(ctx, positions)``
        and read only the positions they list. ``positions`` is int64
        ``(K, W)``: per row, the distinct free positions the samplers will read
        from that row, then ``-1`` padding at the end (``W`` is the widest row of
        the call). The answer is floats ``(K, W, q)`` whose ``[r, j]`` is
        P(x_{positions[r, j]} = . | the pinned entries of ctx[r]); padded slots
        are ignored and never checked. A verification row reads its block
        position and the window of positions after it that the next draft may
        need (about one block), so an oracle that computes only those saves the
        rest. The samples are bit-identical with and without it, and
        ``stats.positions`` counts the positions asked (``n`` per row without it).

    Raises
    ------
    TypeError
        If ``marginals`` is not callable, ``n`` or ``q`` is not an int, or
        ``positions`` is not a bool.
    ValueError
        If ``n < 1`` or ``q < 2``.

    Notes
    -----
    The sampler's target is the sequential law: choose an order, then draw
    each position from the oracle's conditional given all earlier ones.

    Every marginal the samplers use is checked: finite, non-negative, summing
    to 1 within ``1e-6`` (float64) or ``sqrt(eps)`` of the answer's dtype
    (3.5e-4 for float32), then renormalised in float64. An invalid one raises
    :class:`fastspec.OracleError` naming the round, the row, its context and
    the position, and no sample is returned. Marginals the samplers never use
    are not checked: those of pinned positions, and rows whose context has
    probability 0 under the target (e.g. after a draft symbol the target rules
    out), where a counting oracle may answer 0/0.

    Examples
    --------
    >>> import numpy as np, fastspec
    >>> def uniform(ctx):
    ...     return np.full(ctx.shape + (3,), 1 / 3)
    >>> model = fastspec.ARModel(uniform, n=5, q=3)
    >>> fastspec.sample(model, n_samples=2, seed=1).samples.shape
    (2, 5)
    """

    def __init__(self, marginals, n, q, *, positions=False):
        self.marginals = check_callable("marginals", marginals)
        self.n = check_int("n", n, 1)
        self.q = check_int("q", q, 2)
        self.positions = check_flag("positions", positions)

    def __repr__(self):
        return f"{type(self).__name__}(n={self.n}, q={self.q})"

    # -- the pipeline protocol (fastspec._driver.Pipeline) ---------------------------------
    def batch_sampler(self, method, streams, options):
        """:meth:`fastspec._driver.Pipeline.batch_sampler`: ``order`` and ``given`` of
        ``options`` are checked by the sampler, ``schedule`` is refused (ValueError)."""
        options.refuse(DIFFUSION_ONLY, "DiffusionModel", "an ARModel takes order= and given=")
        kwargs = dict(block_size=options.block_size, row_cost=options.row_cost,
                      order=options.order, given=options.given, parallel=options.parallel)
        if method == "srs":
            from .srs import ARSrsSampler
            return ARSrsSampler(self, streams, **kwargs)
        if options.draft is not None:
            from .drafted import DraftedARSampler
            return DraftedARSampler(self, streams, drafter=options.draft, method=method,
                                    rule=options.rule, **kwargs)
        from .sampler import ARSampler
        return ARSampler(self, streams, method=method, rule=options.rule, **kwargs)

    def call_oracle(self, args, counter, where):
        """One call of the oracle on ``contexts`` or ``(contexts, positions)`` (positions
        protocol); returns ``(probs, tol)`` with probs float32/float64 (K, n or W, q)."""
        if isinstance(args, tuple):
            contexts, positions = args
            out = counter.timed(self.marginals, contexts, positions)
            return self._as_probabilities(out, contexts.shape[0], where, positions.shape[1])
        out = counter.timed(self.marginals, args)
        return self._as_probabilities(out, args.shape[0], where)

    def _as_probabilities(self, out, n_rows, where, width=None):
        if width is None:
            probs, dtype = read_answer(out, "marginals", where, (n_rows, self.n, self.q),
                                       "(K, n, q)")
        else:
            probs, dtype = read_answer(out, "marginals", where, (n_rows, width, self.q),
                                       "(K, W, q) for positions (K, W)")
        return probs, sum_tolerance(dtype)

    def invalid_answer_message(self, where, row, sample, context, position, values, code, tol):
        """A short message for an invalid marginal (a few hundred characters at most)."""
        total = float(np.sum(values)) if np.isfinite(values).all() else float("nan")
        who = "" if sample is None else f" (sample {sample})"
        return (f"{where}: marginals returned {_CODES[code]} at row {row}{who}, "
                f"free position {position}: {_short(values)}; sum {total:.9g}, tolerance "
                f"{tol:.2g}. The row's {_short_context(context)} has positive probability "
                "under the target, so its marginals must form a distribution.")

    # -- direct use -------------------------------------------------------------------------
    def query(self, contexts):
        """Call the oracle on ``contexts`` and check every free position of its answer.

        Parameters
        ----------
        contexts : array_like of int, shape (K, n)
            -1 marks a free position.

        Returns
        -------
        probs : ndarray of float64, shape (K, n, q)
            Renormalised marginals (pinned positions as returned; with the
            positions protocol, which asks for free positions only, the point
            mass at the pinned symbol).

        Raises
        ------
        OracleError
            If the answer is not a valid conditional distribution on some free
            position; the message names the row, the position and the values.
        """
        from .._driver import CallCounter
        contexts = np.ascontiguousarray(contexts, dtype=np.int64)
        if self.positions:      # ask for every free position, then lay the answer out densely
            free = contexts < 0
            width = max(1, int(free.sum(axis=1).max(initial=0)))
            rank = np.argsort(~free, axis=1, kind="stable")[:, :width]
            pos = np.where(np.take_along_axis(free, rank, axis=1), rank, -1).astype(np.int64)
            part, tol = self.call_oracle((contexts, pos), CallCounter(), "query")
            probs = np.zeros(contexts.shape + (self.q,), dtype=part.dtype)
            r, j = np.nonzero(pos >= 0)
            probs[r, pos[r, j]] = part[r, j]
            r, i = np.nonzero(~free)           # pinned: the point mass at the pinned symbol
            probs[r, i, contexts[r, i]] = 1.0
        else:
            probs, tol = self.call_oracle(contexts, CallCounter(), "query")
        position = np.full(contexts.shape[0], -1, dtype=np.int64)
        code = np.zeros(contexts.shape[0], dtype=np.int64)
        kernels.find_invalid_rows(False, contexts, probs, tol, position, code)
        bad = np.flatnonzero(code)
        if bad.size:
            r = int(bad[0])
            raise OracleError(self.invalid_answer_message(
                "query", r, None, contexts[r], int(position[r]), probs[r, position[r]],
                int(code[r]), tol) + f" ({bad.size} invalid row(s) of {contexts.shape[0]})")
        probs = probs.astype(np.float64)
        free = contexts < 0
        probs[free] /= probs[free].sum(axis=-1, keepdims=True)
        return probs
