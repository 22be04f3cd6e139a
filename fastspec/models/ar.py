"""Reference any-order AR models with exact, numba-compiled marginal oracles.

Each oracle is a ``prange`` loop over contexts, compiled as serial and parallel
twins (:mod:`fastspec._jit`); a call runs the parallel twin when its answer
has at least ``PARALLEL_MIN_WORK`` elements. Each context writes its own rows,
so answers do not depend on the thread count. A context of probability
zero (possible for drafts) gets uniform rows: any valid answer is fine there,
since the verification never keeps a draft past a zero-probability position.
"""

import math
import re
import unicodedata

import numpy as np
from numba import prange

from .._checks import check_int, check_real
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


# -- Markov chain: nearest pinned neighbours, precomputed matrix powers ------------------

#: The 27 symbols of :meth:`MarkovChain.characters`: a-z, then the space (text8's alphabet).
CHARACTERS = "abcdefghijklmnopqrstuvwxyz "

#: Default smoothing mass of :meth:`MarkovChain.characters`: each transition row is
#: mixed with the uniform row at this weight, so every bigram has probability at least
#: 1e-3 / 27 (the standard library's text leaves some bigrams, e.g. "qz", unseen).
CHARACTER_SMOOTHING = 1e-3


@kernel
def _chain_neighbours(ctx, left, right):
    # left[i] = the nearest pinned position before i (-1 if none), right[i] = after i (n if none)
    n = ctx.shape[0]
    last = -1
    for i in range(n):
        left[i] = last
        if ctx[i] >= 0:
            last = i
    last = n
    for i in range(n - 1, -1, -1):
        right[i] = last
        if ctx[i] >= 0:
            last = i


@kernel
def _chain_conditional(ctx, i, left, right, powers, prior, out):
    # out (q,) <- P(x_i = . | pinned entries of ctx). By the Markov property only the
    # nearest pinned neighbours l < i < r matter:
    #   P(x_i = x | x_l = a, x_r = b) ~ T^(i-l)[a, x] * T^(r-i)[x, b],
    # with the marginal prior[i] = initial T^i in place of T^(i-l)[a, .] when no l exists.
    n = ctx.shape[0]
    q = out.shape[0]
    if ctx[i] >= 0:
        out[:] = 0.0
        out[ctx[i]] = 1.0
        return
    lo = left[i]
    hi = right[i]
    s = 0.0
    for x in range(q):
        w = prior[i, x] if lo < 0 else powers[i - lo, ctx[lo], x]
        if hi < n:
            w *= powers[hi - i, x, ctx[hi]]
        out[x] = w
        s += w
    if s > 0.0:
        for x in range(q):
            out[x] /= s
    else:                    # the pinned neighbours are incompatible: any answer is valid
        out[:] = 1.0 / q


@twin
def _chain_marginals_all(contexts, out, powers, prior):
    K, n = contexts.shape
    for r in prange(K):
        left = np.empty(n, dtype=np.int64)
        right = np.empty(n, dtype=np.int64)
        _chain_neighbours(contexts[r], left, right)
        for i in range(n):
            _chain_conditional(contexts[r], i, left, right, powers, prior, out[r, i])


@twin
def _chain_marginals_at_all(contexts, positions, out, powers, prior):
    K, n = contexts.shape
    q = out.shape[2]
    for r in prange(K):
        left = np.empty(n, dtype=np.int64)
        right = np.empty(n, dtype=np.int64)
        _chain_neighbours(contexts[r], left, right)
        for j in range(positions.shape[1]):
            i = positions[r, j]
            if i < 0:                      # padding at the end of the row
                out[r, j, :] = 1.0 / q
            else:
                _chain_conditional(contexts[r], i, left, right, powers, prior, out[r, j])


def to_characters(text):
    """``text`` in the 27 symbols of :data:`CHARACTERS`, the way text8 was made.

    Letters are lower-cased (accents dropped by NFKD decomposition); every run of
    other characters (digits, punctuation, whitespace) becomes one space.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        Only ``a-z`` and single spaces.

    Raises
    ------
    TypeError
        If ``text`` is not a str.

    Examples
    --------
    >>> to_characters("Return x**2  (see PEP 8).")
    'return x see pep '
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z]+", " ", text.lower())


def standard_library_text():
    """The help texts of the Python documentation that ship with CPython.

    ``pydoc_data.topics`` (what ``help("topic")`` prints), joined in sorted key
    order; about 465,000 characters on Python 3.11, under the Python Software
    Foundation licence. It is the text :mod:`fastspec.models.pretrained`'s
    character model was trained on; its content changes a little between Python
    versions.

    Returns
    -------
    str
    """
    from pydoc_data.topics import topics
    return " ".join(topics[key] for key in sorted(topics))


class MarkovChain(ARModel):
    """A q-state Markov chain of length n with an exact any-order oracle.

    ``P(x_i | pinned entries)`` depends only on the nearest pinned positions
    ``l < i < r`` (the Markov property) and is ``T^(i-l)[x_l, x] T^(r-i)[x, x_r]``
    normalised over ``x``, read from matrix powers computed once: O(q) work per
    position, O(n q) per context.

    Parameters
    ----------
    transition : array_like (q, q)
        Non-negative transition weights; each row is normalised to sum to 1
        (so ``[[e**2, 1], [1, e**2]]`` means "proportional to").
    initial : array_like (q,), optional
        Law of x_0 (normalised). Default: the stationary law of ``transition``.
    n : int
        Length of the chain.

    Attributes
    ----------
    transition : ndarray (q, q) float64
        Row-normalised transition matrix.
    initial : ndarray (q,) float64
    alphabet : str or None
        Symbol ``v`` is the character ``alphabet[v]`` (chains built from text).

    Notes
    -----
    The powers ``T^d`` (d < n) and the marginals ``initial T^i`` take
    ``8 n (q^2 + q)`` bytes: 6 MB at n = 1024, q = 27.

    :meth:`marginals_dense` answers every position (float64 ``(K, n, q)``);
    :meth:`marginals_at` answers only the listed positions, with the same code
    per position. The engine calls the latter (the model is built with
    ``positions=True``); ``model.marginals(ctx)`` without positions is the
    dense answer.
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
        self.alphabet = None
        super().__init__(self._marginals, n, q, positions=True)
        # powers[d] = T^d and prior[i] = initial T^i, for d, i < n
        self._powers = np.empty((self.n, q, q))
        self._prior = np.empty((self.n, q))
        self._powers[0] = np.eye(q)
        self._prior[0] = self.initial
        for d in range(1, self.n):
            np.matmul(self._powers[d - 1], self.transition, out=self._powers[d])
            np.matmul(self._prior[d - 1], self.transition, out=self._prior[d])

    @classmethod
    def from_text(cls, text, alphabet, *, n, smoothing=CHARACTER_SMOOTHING):
        """The bigram chain of a text, started from its stationary law.

        ``T[a, b] = (1 - smoothing) C[a, b] / sum_b' C[a, b'] + smoothing / q``,
        with ``C[a, b]`` the number of times symbol ``b`` follows ``a`` in ``text``.

        Parameters
        ----------
        text : str
            Made only of characters of ``alphabet``.
        alphabet : str
            The q >= 2 distinct symbols, in the order of their ids.
        n : int
            Length of the chain.
        smoothing : float in [0, 1], default 1e-3
            Weight of the uniform row mixed into every transition row.

        Returns
        -------
        MarkovChain
            With ``alphabet`` set and ``counts`` (q, q) int64 = C.

        Raises
        ------
        TypeError
            If ``text`` or ``alphabet`` is not a str.
        ValueError
            If ``alphabet`` repeats a character or has fewer than 2, ``text`` has a
            character outside it or fewer than 2 characters, ``smoothing`` is outside
            [0, 1], or ``smoothing = 0`` and some symbol is never followed by another.
        """
        for name, value in (("text", text), ("alphabet", alphabet)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        q = len(alphabet)
        if q < 2 or len(set(alphabet)) != q:
            raise ValueError(f"alphabet must hold at least 2 distinct characters, got "
                             f"{alphabet!r}")
        if not 0.0 <= check_real("smoothing", smoothing, "a number in [0, 1]") <= 1.0:
            raise ValueError(f"smoothing must be a number in [0, 1], got {smoothing!r}")
        if len(text) < 2:
            raise ValueError(f"text must have at least 2 characters, got {len(text)}")
        index = {ch: i for i, ch in enumerate(alphabet)}
        ids = np.array([index.get(ch, -1) for ch in text], dtype=np.int64)
        if np.any(ids < 0):
            at = int(np.flatnonzero(ids < 0)[0])
            raise ValueError(f"text has a character outside the alphabet at index {at}: "
                             f"{text[at]!r}; map it first (e.g. with to_characters)")
        counts = np.bincount(ids[:-1] * q + ids[1:], minlength=q * q).reshape(q, q)
        rows = counts.sum(axis=1, keepdims=True)
        if smoothing == 0 and np.any(rows == 0):
            raise ValueError(f"symbol {alphabet[int(np.flatnonzero(rows == 0)[0])]!r} is never "
                             "followed by another in text; use smoothing > 0")
        transition = (1.0 - smoothing) * counts / np.maximum(rows, 1) + smoothing / q
        chain = cls(transition, n=n)
        chain.alphabet = alphabet
        chain.counts = counts
        return chain

    @classmethod
    def characters(cls, n, *, smoothing=CHARACTER_SMOOTHING, text=None):
        """The character chain of Tang et al. (2026): 27 symbols, a-z and the space.

        Parameters
        ----------
        n : int
            Length of the chain.
        smoothing : float in [0, 1], default :data:`CHARACTER_SMOOTHING`
            See :meth:`from_text`.
        text : str, optional
            Any text, mapped by :func:`to_characters`. Default: the Python
            documentation's help texts (:func:`standard_library_text`), which ship
            with CPython, so nothing is downloaded.

        Returns
        -------
        MarkovChain
            q = 27, ``alphabet`` = :data:`CHARACTERS`, started from its stationary law.

        Notes
        -----
        Tang, Yu, Zhang and Ver Steeg, "Is Your Diffusion Sampler Actually Correct?
        A Sampler-Centric Evaluation of Discrete Diffusion Language Models" (ICML
        2026, arXiv 2602.19619) estimate the same kind of chain from text8 (a
        Wikipedia dump in these 27 symbols).

        Examples
        --------
        >>> import fastspec
        >>> chain = fastspec.models.MarkovChain.characters(32)
        >>> chain.q, chain.alphabet[-1] == " "
        (27, True)
        >>> len(chain.decode(fastspec.sample(chain, seed=0).samples[0]))
        32
        """
        text = standard_library_text() if text is None else text
        return cls.from_text(to_characters(text), CHARACTERS, n=n, smoothing=smoothing)

    def _check_contexts(self, contexts):
        contexts = np.ascontiguousarray(contexts, dtype=np.int64)
        if contexts.ndim != 2 or contexts.shape[1] != self.n:
            raise ValueError(f"contexts must have shape (K, {self.n}), got {contexts.shape}")
        if contexts.size and contexts.max() >= self.q:
            bad = tuple(int(i) for i in np.argwhere(contexts >= self.q)[0])
            raise ValueError(f"contexts{list(bad)} = {int(contexts[bad])} is not a symbol of this "
                             f"chain (0..{self.q - 1}, or -1 for a free position)")
        return contexts

    def _marginals(self, contexts, positions=None):
        """The oracle: :meth:`marginals_at` when ``positions`` is given, else dense."""
        if positions is None:
            return self.marginals_dense(contexts)
        return self.marginals_at(contexts, positions)

    def marginals_dense(self, contexts):
        """Marginals at every position (the dense oracle protocol).

        Parameters
        ----------
        contexts : array_like of int, shape (K, n)
            -1 marks a free position, else the pinned symbol.

        Returns
        -------
        ndarray of float64, shape (K, n, q)
            ``[r, i]`` = P(x_i = . | pinned entries of ``contexts[r]``); one-hot at
            pinned positions.

        Raises
        ------
        ValueError
            If the shape differs from (K, n) or a symbol is out of range.
        """
        contexts = self._check_contexts(contexts)
        out = np.empty((contexts.shape[0], self.n, self.q))
        _chain_marginals_all(use_parallel(out.size), contexts, out, self._powers, self._prior)
        return out

    def marginals_at(self, contexts, positions):
        """Marginals at listed free positions only (the engine's positions protocol).

        Parameters
        ----------
        contexts : array_like of int, shape (K, n)
            -1 marks a free position, else the pinned symbol.
        positions : array_like of int, shape (K, W)
            Positions of each row to answer, padded at the end with -1.

        Returns
        -------
        ndarray of float64, shape (K, W, q)
            ``[r, j]`` = P(x_i = . | pinned entries of ``contexts[r]``) at
            ``i = positions[r, j]``: the row ``marginals_dense(contexts)[r, i]`` (one-hot
            when ``i`` is pinned); uniform at padding.

        Raises
        ------
        ValueError
            If a shape differs, a symbol is out of range or a position is outside
            ``-1..n-1``.
        """
        contexts = self._check_contexts(contexts)
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        if positions.ndim != 2 or positions.shape[0] != contexts.shape[0]:
            raise ValueError(f"positions must have shape ({contexts.shape[0]}, W), got "
                             f"{positions.shape}")
        if positions.size and (positions.min() < -1 or positions.max() >= self.n):
            bad = tuple(int(i) for i in np.argwhere((positions < -1) | (positions >= self.n))[0])
            raise ValueError(f"positions{list(bad)} = {int(positions[bad])} is outside "
                             f"0..{self.n - 1} (or -1 for padding)")
        out = np.empty(positions.shape + (self.q,))
        _chain_marginals_at_all(use_parallel(out.size), contexts, positions, out, self._powers,
                                self._prior)
        return out

    def simulate(self, n_samples, seed=None):
        """Sequences drawn directly from the chain, left to right (no oracle).

        Parameters
        ----------
        n_samples : int
        seed : None, int, SeedSequence or Generator
            Passed to ``numpy.random.default_rng``.

        Returns
        -------
        ndarray of int64, shape (n_samples, n)
        """
        n_samples = check_int("n_samples", n_samples, 1)
        rng = np.random.default_rng(seed)
        u = rng.random((int(n_samples), self.n))
        cum = np.cumsum(self.transition, axis=1)
        x = np.empty((int(n_samples), self.n), dtype=np.int64)
        x[:, 0] = np.minimum(np.searchsorted(np.cumsum(self.initial), u[:, 0], side="right"),
                             self.q - 1)
        for i in range(1, self.n):
            x[:, i] = np.minimum((u[:, i, None] >= cum[x[:, i - 1]]).sum(axis=1), self.q - 1)
        return x

    def decode(self, x):
        """The characters of configuration ``x`` (n,) as a str (chains with an alphabet)."""
        if self.alphabet is None:
            raise ValueError("this chain has no alphabet; build it with from_text or characters")
        return "".join(self.alphabet[int(v)] for v in np.asarray(x).ravel())

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
            if not math.isfinite(check_real(name, v, "a finite real number")):
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
        logc = np.array([math.lgamma(self.n + 1) - math.lgamma(u + 1) - math.lgamma(self.n - u + 1)
                         for u in ups])
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
