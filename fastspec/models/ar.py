"""Reference any-order AR models with exact, numba-compiled marginal oracles.

Each oracle is a ``prange`` loop over contexts, compiled as serial and parallel
twins (:mod:`fastspec._jit`); a call runs the parallel twin when its answer
has at least ``PARALLEL_MIN_WORK`` elements. Each context writes its own rows,
so answers do not depend on the thread count. A context of probability
zero (possible for drafts) gets uniform rows: any valid answer is fine there,
since the verification never keeps a draft past a zero-probability position.
"""

import math
import numbers

import numpy as np
from numba import prange

from .._jit import kernel, twin, use_parallel
from ..ar.oracle import ARModel


def _as_prob_array(name, value, ndim, normalise_axis=-1, allow_scale=False):
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; {name}{list(bad)} = {arr[bad]}")
    if np.any(arr < 0):
        bad = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative; {name}{list(bad)} = {arr[bad]}")
    sums = arr.sum(axis=normalise_axis, keepdims=True)
    if np.any(sums <= 0):
        bad = tuple(int(i) for i in np.argwhere(sums <= 0)[0])
        raise ValueError(f"{name} has a slice summing to zero at {list(bad)}")
    if not allow_scale and np.any(np.abs(sums - 1.0) > 1e-8):
        bad = tuple(int(i) for i in np.argwhere(np.abs(sums - 1.0) > 1e-8)[0])
        raise ValueError(f"{name} must sum to 1 along axis {normalise_axis}; the slice at "
                         f"{list(bad)} sums to {float(sums[bad])!r}")
    return np.ascontiguousarray(arr / sums)


# -- Markov chain: forward-backward with evidence -------------------------------------

@kernel
def _markov_marginals_row(contexts, r, out, transition, initial):
    K, n = contexts.shape
    q = initial.shape[0]
    ctx = contexts[r]
    alpha = np.zeros((n, q))
    for x in range(q):
        if ctx[0] < 0 or ctx[0] == x:
            alpha[0, x] = initial[x]
    ok = _normalise(alpha[0])
    for i in range(1, n):
        for x in range(q):
            if ctx[i] < 0 or ctx[i] == x:
                s = 0.0
                for xp in range(q):
                    s += alpha[i - 1, xp] * transition[xp, x]
                alpha[i, x] = s
        ok = ok and _normalise(alpha[i])
    beta = np.ones(q)
    nxt = np.empty(q)
    for i in range(n - 1, -1, -1):
        if ok:
            for x in range(q):
                out[r, i, x] = alpha[i, x] * beta[x]
            if not _normalise(out[r, i]):
                ok = False
        if not ok:
            out[r, i, :] = 1.0 / q
        if i > 0:
            for x in range(q):
                s = 0.0
                for xn in range(q):
                    if ctx[i] < 0 or ctx[i] == xn:
                        s += transition[x, xn] * beta[xn]
                nxt[x] = s
            _normalise(nxt)
            beta[:] = nxt
    if not ok:
        out[r, :, :] = 1.0 / q


@twin
def _markov_marginals_all(contexts, out, transition, initial):
    for r in prange(contexts.shape[0]):
        _markov_marginals_row(contexts, r, out, transition, initial)


def _markov_marginals(contexts, transition, initial):
    out = np.empty((contexts.shape[0], contexts.shape[1], initial.shape[0]))
    _markov_marginals_all(use_parallel(out.size), contexts, out, transition, initial)
    return out


@kernel
def _normalise(v):
    s = 0.0
    for j in range(v.shape[0]):
        s += v[j]
    if not s > 0.0:
        return False
    for j in range(v.shape[0]):
        v[j] /= s
    return True


class MarkovChain(ARModel):
    """A q-state Markov chain of length n; any-order marginals by forward-backward.

    Parameters
    ----------
    transition : array_like (q, q)
        Non-negative transition weights; each row is normalised to sum to 1
        (so ``[[e**2, 1], [1, e**2]]`` means "proportional to").
    initial : array_like (q,), optional
        Law of x_0 (normalised). Default: the stationary law of ``transition``.
    n : int
        Length of the chain.
    """

    def __init__(self, transition, initial=None, *, n):
        self.transition = _as_prob_array("transition", transition, 2, allow_scale=True)
        q = self.transition.shape[0]
        if self.transition.shape != (q, q):
            raise ValueError(f"transition must be square (q, q), got {self.transition.shape}")
        if initial is None:
            vals, vecs = np.linalg.eig(self.transition.T)
            stat = np.abs(np.real(vecs[:, np.argmin(np.abs(vals - 1.0))]))
            initial = stat / stat.sum()
        self.initial = _as_prob_array("initial", initial, 1, allow_scale=True)
        if self.initial.shape != (q,):
            raise ValueError(f"initial must have shape ({q},), got {self.initial.shape}")
        super().__init__(self._marginals, n, q)

    def _marginals(self, contexts):
        return _markov_marginals(contexts, self.transition, self.initial)

    def log_probability(self, x):
        """Log-probability of configurations ``x`` (..., n) under the chain."""
        x = np.asarray(x, dtype=np.int64)
        with np.errstate(divide="ignore"):
            lp = np.log(self.initial[x[..., 0]])
            lp = lp + np.sum(np.log(self.transition[x[..., :-1], x[..., 1:]]), axis=-1)
        return lp


# -- Mixture of product distributions ---------------------------------------------------

@kernel
def _mixture_marginals_row(contexts, positions, r, out, log_weights, probs, log_probs):
    K, n = contexts.shape
    C, _, q = probs.shape
    post = log_weights.copy()
    for c in range(C):
        for j in range(n):
            if contexts[r, j] >= 0:
                post[c] += log_probs[c, j, contexts[r, j]]
    top = -np.inf
    for c in range(C):
        top = max(top, post[c])
    if top == -np.inf:
        out[r, :, :] = 1.0 / q
        return
    s = 0.0
    for c in range(C):
        post[c] = math.exp(post[c] - top)
        s += post[c]
    # Component-major accumulation: probs[c] is read contiguously (a component-inner
    # loop strides by n * q and was ~10x slower at n = 4096).
    out[r, :, :] = 0.0
    dense = positions.shape[1] == 0
    width = n if dense else positions.shape[1]
    for c in range(C):
        w = post[c] / s
        for j in range(width):
            i = j if dense else positions[r, j]
            if i < 0:
                continue
            for y in range(q):
                out[r, j, y] += w * probs[c, i, y]


@twin
def _mixture_marginals_all(contexts, positions, out, log_weights, probs, log_probs):
    for r in prange(contexts.shape[0]):
        _mixture_marginals_row(contexts, positions, r, out, log_weights, probs, log_probs)


def _dense_or(contexts, positions):
    """``positions`` as int64 ``(K, W)``, or ``(K, 0)`` meaning every position (dense)."""
    if positions is None:
        return np.zeros((contexts.shape[0], 0), dtype=np.int64), contexts.shape[1]
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    return positions, positions.shape[1]


def _mixture_marginals(contexts, log_weights, probs, log_probs, positions=None):
    positions, width = _dense_or(contexts, positions)
    out = np.empty((contexts.shape[0], width, probs.shape[2]))
    _mixture_marginals_all(use_parallel(out.size), contexts, positions, out, log_weights, probs,
                           log_probs)
    return out


class MixtureOfProducts(ARModel):
    """A mixture of product distributions on ``{0..q-1}^n``.

    Parameters
    ----------
    weights : array_like (C,)
        Mixture weights (normalised).
    probs : array_like (C, n, q)
        Per-component, per-position symbol probabilities (rows normalised).
    """

    def __init__(self, weights, probs):
        self.weights = _as_prob_array("weights", weights, 1, allow_scale=True)
        self.probs = _as_prob_array("probs", probs, 3, allow_scale=True)
        if self.probs.shape[0] != self.weights.shape[0]:
            raise ValueError(f"weights has {self.weights.shape[0]} components but probs has "
                             f"{self.probs.shape[0]}")
        with np.errstate(divide="ignore"):
            self._log_weights = np.log(self.weights)
            self._log_probs = np.log(self.probs)
        super().__init__(self._marginals, self.probs.shape[1], self.probs.shape[2],
                         positions=True)

    @classmethod
    def random(cls, n, q=2, n_components=None, concentration=0.5, seed=0):
        """A random mixture: ``n_components`` (default ``ceil(sqrt(n))``) equal-weight
        products with Dirichlet(``concentration``) position rows, from ``seed``."""
        rng = np.random.default_rng(seed)
        C = int(n_components) if n_components is not None else math.ceil(math.sqrt(n))
        probs = rng.dirichlet(np.full(q, concentration), size=(C, n))
        probs = np.clip(probs, 1e-3, None)
        return cls(np.full(C, 1.0 / C), probs)

    def _marginals(self, contexts, positions=None):
        """Dense ``(K, n, q)``, or the listed positions ``(K, W, q)`` (``ARModel``'s protocol)."""
        return _mixture_marginals(contexts, self._log_weights, self.probs, self._log_probs,
                                  positions)

    def log_probability(self, x):
        """Log-probability of configurations ``x`` (..., n)."""
        x = np.asarray(x, dtype=np.int64)
        per = np.moveaxis(self._log_probs[:, np.arange(self.n), x].sum(axis=-1), 0, -1)
        per = per + self._log_weights  # (..., C): log w_c + log P_c(x)
        top = per.max(axis=-1, keepdims=True)
        return (top + np.log(np.exp(per - top).sum(axis=-1, keepdims=True)))[..., 0]


# -- Curie-Weiss (mean-field Ising) ----------------------------------------------------

@kernel
def _curie_weiss_marginals_row(contexts, positions, r, out, J, h):
    K, n = contexts.shape
    m = 0
    free = 0
    for j in range(n):
        v = contexts[r, j]
        if v < 0:
            free += 1
        else:
            m += 2 * v - 1
    others = free - 1
    # log P(s_i = sigma, rest) summed over the j up-spins among the other free sites
    lp = np.empty(2)
    for s in range(2):
        sigma = 2 * s - 1
        top = -np.inf
        terms = np.empty(max(others + 1, 1))
        for jj in range(others + 1):
            M = m + sigma + 2 * jj - others
            t = (math.lgamma(others + 1) - math.lgamma(jj + 1) - math.lgamma(others - jj + 1)
                 + J / (2.0 * n) * M * M + h * M)
            terms[jj] = t
            top = max(top, t)
        acc = 0.0
        for jj in range(others + 1):
            acc += math.exp(terms[jj] - top)
        lp[s] = top + math.log(acc) if others >= 0 else 0.0
    p_up = 1.0 / (1.0 + math.exp(lp[0] - lp[1])) if free > 0 else 0.5
    if positions.shape[1] > 0:            # the listed (free) positions only
        for j in range(positions.shape[1]):
            out[r, j, 0] = 1.0 - p_up
            out[r, j, 1] = p_up
        return
    for j in range(n):
        v = contexts[r, j]
        if v < 0:
            out[r, j, 0] = 1.0 - p_up
            out[r, j, 1] = p_up
        else:
            out[r, j, 0] = 1.0 - v
            out[r, j, 1] = v


@twin
def _curie_weiss_marginals_all(contexts, positions, out, J, h):
    for r in prange(contexts.shape[0]):
        _curie_weiss_marginals_row(contexts, positions, r, out, J, h)


def _curie_weiss_marginals(contexts, J, h, positions=None):
    positions, width = _dense_or(contexts, positions)
    out = np.empty((contexts.shape[0], width, 2))
    _curie_weiss_marginals_all(use_parallel(out.size), contexts, positions, out, J, h)
    return out


class CurieWeiss(ARModel):
    """Mean-field Ising model: P(s) ~ exp(J/(2n) M^2 + h M), M = sum of spins.

    Symbol 0 is spin -1, symbol 1 is spin +1 (q = 2). Marginals sum over the
    free magnetisation exactly, in O(n) per context. ``J = 1`` is critical:
    strongly correlated, the hard case for speculation.

    Parameters
    ----------
    n : int
    J : float, default 1.0
        Coupling.
    h : float, default 0.0
        External field.
    """

    def __init__(self, n, J=1.0, h=0.0):
        for name, v in (("J", J), ("h", h)):
            if not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite real number, got {v!r}")
        self.J = float(J)
        self.h = float(h)
        super().__init__(self._marginals, n, 2, positions=True)

    def _marginals(self, contexts, positions=None):
        """Dense ``(K, n, 2)``, or the listed positions ``(K, W, 2)`` (``ARModel``'s protocol)."""
        return _curie_weiss_marginals(contexts, self.J, self.h, positions)

    def log_probability(self, x):
        """Log-probability of configurations ``x`` (..., n), exact normalisation."""
        x = np.asarray(x, dtype=np.int64)
        M = (2 * x - 1).sum(axis=-1)
        ups = np.arange(self.n + 1)
        Ms = 2 * ups - self.n
        from math import lgamma
        logc = np.array([lgamma(self.n + 1) - lgamma(u + 1) - lgamma(self.n - u + 1) for u in ups])
        e = logc + self.J / (2 * self.n) * Ms**2 + self.h * Ms
        log_z = e.max() + np.log(np.exp(e - e.max()).sum())
        return self.J / (2 * self.n) * M**2 + self.h * M - log_z


# -- Explicit joint table ---------------------------------------------------------------

@kernel
def _table_marginals_row(contexts, positions, r, out, configs, joint, q):
    n = contexts.shape[1]
    dense = positions.shape[1] == 0
    width = n if dense else positions.shape[1]
    out[r, :, :] = 0.0
    total = 0.0
    for c in range(configs.shape[0]):
        p = joint[c]
        if p == 0.0:
            continue
        ok = True
        for j in range(n):
            v = contexts[r, j]
            if v >= 0 and v != configs[c, j]:
                ok = False
                break
        if not ok:
            continue
        total += p
        for j in range(width):
            i = j if dense else positions[r, j]
            if i >= 0:
                out[r, j, configs[c, i]] += p
    if total > 0.0:
        for j in range(width):
            for y in range(q):
                out[r, j, y] /= total
    else:
        out[r, :, :] = 1.0 / q


@twin
def _table_marginals_all(contexts, positions, out, configs, joint, q):
    for r in prange(contexts.shape[0]):
        _table_marginals_row(contexts, positions, r, out, configs, joint, q)


def _table_marginals(contexts, configs, joint, q, positions=None):
    positions, width = _dense_or(contexts, positions)
    out = np.empty((contexts.shape[0], width, q))
    _table_marginals_all(use_parallel(out.size), contexts, positions, out, configs, joint, q)
    return out


class TableModel(ARModel):
    """A model given by its explicit joint table (small ``q**n`` only).

    Parameters
    ----------
    joint : array_like, shape (q,) * n
        Non-negative probabilities summing to 1; ``joint[x_0, ..., x_{n-1}]``.

    Notes
    -----
    Each oracle row sums over all ``q**n`` configurations, so keep
    ``q**n`` to a few thousand. Used by the exactness tests.
    """

    def __init__(self, joint):
        arr = np.asarray(joint, dtype=np.float64)
        if arr.ndim < 1 or len(set(arr.shape)) != 1 or arr.shape[0] < 2:
            raise ValueError(f"joint must have shape (q,) * n with q >= 2, got {arr.shape}")
        flat = _as_prob_array("joint", arr.reshape(-1), 1)
        q, n = arr.shape[0], arr.ndim
        self.joint = flat.reshape(arr.shape)
        self._flat = flat
        self._configs = np.ascontiguousarray(
            np.array(np.unravel_index(np.arange(flat.size), arr.shape)).T.astype(np.int64))
        super().__init__(self._marginals, n, q, positions=True)

    @classmethod
    def from_model(cls, model):
        """Tabulate a model that has ``log_probability`` (small ``q**n`` only)."""
        shape = (model.q,) * model.n
        configs = np.array(np.unravel_index(np.arange(model.q ** model.n), shape)).T
        lp = model.log_probability(configs)
        p = np.exp(lp - lp.max())
        return cls((p / p.sum()).reshape(shape))

    def _marginals(self, contexts, positions=None):
        """Dense ``(K, n, q)``, or the listed positions ``(K, W, q)`` (``ARModel``'s protocol)."""
        return _table_marginals(contexts, self._configs, self._flat, self.q, positions)

    def probability(self, x):
        """Joint probability of configuration(s) ``x`` (..., n)."""
        x = np.asarray(x, dtype=np.int64)
        return self.joint[tuple(np.moveaxis(x, -1, 0))]

    def flat_index(self, x):
        """Index of configuration(s) ``x`` (..., n) in the flattened table."""
        x = np.asarray(x, dtype=np.int64)
        return np.ravel_multi_index(tuple(np.moveaxis(x, -1, 0)), self.joint.shape)
