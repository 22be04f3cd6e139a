"""``ARModel``: an any-order autoregressive model seen through its marginal oracle."""

import numbers

import numpy as np

from .._errors import OracleError
from .kernels import find_invalid_rows

#: Free-position marginals must sum to one within this tolerance.
SUM_TOLERANCE = 1e-6


def _check_positive_int(name, value, minimum=1):
    if (not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, bool)
            or value < minimum):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class ARModel:
    """An any-order autoregressive model on ``{0..q-1}^n``, reached through an oracle.

    Parameters
    ----------
    marginals : callable
        ``marginals(ctx) -> probs``. ``ctx`` is an int64 array ``(K, n)``:
        entry ``-1`` marks a free position, any other entry is the pinned
        symbol. ``probs`` is a float array ``(K, n, q)`` whose row ``[r, i]``
        is P(x_i = . | the pinned entries of ctx[r]) for every free ``i``;
        rows of pinned positions are ignored.
    n : int
        Sequence length (>= 1).
    q : int
        Alphabet size (>= 2).

    Notes
    -----
    Every answer is checked (shape, finiteness, non-negativity, rows summing
    to 1 within ``1e-6`` on free positions); a violation raises
    :class:`fastspec.OracleError` and no sample is returned.
    The sampler's target is the sequential law: choose an order, then draw
    each position from the oracle's conditional given all earlier ones.

    Examples
    --------
    >>> import numpy as np, fastspec
    >>> def uniform(ctx):
    ...     return np.full(ctx.shape + (3,), 1 / 3)
    >>> model = fastspec.ARModel(uniform, n=5, q=3)
    >>> fastspec.sample(model, n_samples=2, seed=1).samples.shape
    (2, 5)
    """

    def __init__(self, marginals, n, q):
        if not callable(marginals):
            raise ValueError(f"marginals must be callable, got {type(marginals).__name__}")
        self.marginals = marginals
        self.n = _check_positive_int("n", n, 1)
        self.q = _check_positive_int("q", q, 2)

    def __repr__(self):
        return f"{type(self).__name__}(n={self.n}, q={self.q})"

    # -- engine protocol (see fastspec._engine) ---------------------------------
    def _request_rows(self, request):
        return request.shape[0]

    def _answer(self, requests, round_index):
        """One oracle call for all ``requests`` (context arrays), validated and split."""
        contexts = requests[0] if len(requests) == 1 else np.concatenate(requests)
        probs = self.query(contexts, round_index=round_index)
        answers = []
        start = 0
        for r in requests:
            answers.append(probs[start:start + r.shape[0]])
            start += r.shape[0]
        return answers

    def query(self, contexts, round_index=None):
        """Call the oracle on ``contexts`` and check its answer.

        Parameters
        ----------
        contexts : int64 array (K, n)
        round_index : int, optional
            Used in error messages.

        Returns
        -------
        probs : float64 array (K, n, q)

        Raises
        ------
        OracleError
            If the answer is not a valid conditional distribution on some free
            position; the message names round, row, position and values.
        """
        where = "" if round_index is None else f"round {round_index}: "
        out = self.marginals(contexts)
        try:
            probs = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise OracleError(f"{where}marginals returned {type(out).__name__}, which is not a "
                              f"float array: {exc}") from None
        expected = (contexts.shape[0], self.n, self.q)
        if probs.shape != expected:
            raise OracleError(f"{where}marginals returned shape {probs.shape} for "
                              f"{contexts.shape[0]} contexts; expected (K, n, q) = {expected}")
        position, code = find_invalid_rows(contexts, np.ascontiguousarray(probs), SUM_TOLERANCE)
        bad = np.flatnonzero(code)
        if bad.size:
            r = int(bad[0])
            i = int(position[r])
            what = {1: "a non-finite value", 2: "a negative value",
                    3: f"values summing to {float(probs[r, i].sum())!r} (not 1 within {SUM_TOLERANCE})"}
            raise OracleError(
                f"{where}marginals returned {what[int(code[r])]} at row {r}, free position {i}: "
                f"{probs[r, i].tolist()} ({bad.size} invalid row(s) of {contexts.shape[0]})")
        return probs
