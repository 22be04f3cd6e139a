"""Small MLP oracles with seeded random weights, evaluated with numpy matmuls.

They stand in for a neural network on a CPU. What matters for speculation is
the cost profile, not what the network computes: the weights (float32, about
10-17 MB at the default sizes) do not fit in this class of machine's last-level
cache, so a call with one row streams every weight from memory while a call
with K rows streams them once for all K (a BLAS GEMM). Batched rows are
therefore several times cheaper per row than single rows, as with any useful
network; ``python -m fastspec.bench wallclock`` measures and records the ratio.

The outputs are computed in float32 (as a network would) and returned as
float64 probabilities / denoised states.
"""

import numpy as np

from .._threads import one_blas_thread
from ..ar.oracle import ARModel
from ..diffusion.oracle import DiffusionModel


def _weights(rng, fan_in, fan_out, scale=1.0):
    return (rng.normal(0.0, scale / np.sqrt(fan_in), size=(fan_in, fan_out))).astype(np.float32)


class _ResidualTrunk:
    """The part both oracles share: an input layer, then ``layers`` residual tanh
    layers of width ``hidden`` (float32). Each oracle adds its own output layer."""

    def __init__(self, rng, d_in, hidden, layers, in_scale=1.0):
        hidden, layers = int(hidden), int(layers)
        if hidden < 1 or layers < 0:
            raise ValueError(f"hidden must be >= 1 and layers >= 0, got hidden={hidden}, "
                             f"layers={layers}")
        self.W_in = _weights(rng, d_in, hidden, in_scale)
        self.b_in = rng.normal(0.0, 0.1, size=hidden).astype(np.float32)
        self.W_hidden = [_weights(rng, hidden, hidden) for _ in range(layers)]
        self.b_hidden = [rng.normal(0.0, 0.1, size=hidden).astype(np.float32) for _ in range(layers)]

    @property
    def weight_bytes(self):
        return int(self.W_in.nbytes + sum(w.nbytes for w in self.W_hidden))

    def __call__(self, x):
        """Hidden state ``(K, hidden)`` of float32 inputs ``x`` ``(K, d_in)``."""
        h = x @ self.W_in
        h += self.b_in
        np.tanh(h, out=h)
        for W, b in zip(self.W_hidden, self.b_hidden):
            h += np.tanh(h @ W + b)
        return h


class NeuralAR(ARModel):
    """Any-order AR oracle: a residual MLP over the one-hot context.

    Input per row: the one-hot of each position with a "free" channel,
    flattened to ``n * (q + 1)`` (an embedding sum, written as one matmul);
    ``layers`` residual tanh layers of width ``hidden``; output logits
    ``(n, q)``, softmax per position. The conditionals of different contexts
    need not come from one joint law; the samplers are exact with respect to
    left-to-right ancestral sampling of whatever the oracle returns.

    Parameters
    ----------
    n, q : int
        Sequence length and alphabet size.
    hidden : int, default 512
        Hidden width.
    layers : int, default 2
        Number of residual hidden layers (``hidden x hidden`` each).
    seed : int, default 0
        Seed of the weights.
    strength : float, default 1.0
        Scale of the output layer, i.e. how sharply the context moves the
        marginals.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models import NeuralAR
    >>> m = NeuralAR(16, hidden=32, layers=1, seed=0)
    >>> fastspec.sample(m, n_samples=2, seed=0).samples.shape
    (2, 16)
    """

    def __init__(self, n, q=2, hidden=512, layers=2, seed=0, strength=1.0):
        n, q = int(n), int(q)
        rng = np.random.default_rng(seed)
        # A pre-activation sums n one-hot rows of W_in: entries of std 1/sqrt(n) keep it O(1).
        self.trunk = _ResidualTrunk(rng, n * (q + 1), hidden, layers, in_scale=np.sqrt(q + 1))
        # Output columns ordered (symbol, position): the softmax then reduces over a
        # leading axis of contiguous rows, which numpy does fast.
        self.W_out = _weights(rng, int(hidden), q * n, strength)
        self.b_out = rng.normal(0.0, 0.5, size=q * n).astype(np.float32)
        self._n, self._q = n, q
        super().__init__(self._marginals, n, q, positions=True)

    @property
    def weight_bytes(self):
        """Total size of the weight matrices in bytes."""
        return self.trunk.weight_bytes + int(self.W_out.nbytes)

    @one_blas_thread
    def _marginals(self, ctx, positions=None):
        """Dense ``(K, n, q)``, or the listed positions ``(K, W, q)`` (``ARModel``'s protocol):
        then only the output columns of the positions some row lists are computed."""
        n, q = self._n, self._q
        K = ctx.shape[0]
        # One-hot with channel q meaning "free", built by flat indexing (no python loop).
        channel = np.where(ctx < 0, q, ctx)
        flat = (np.arange(K)[:, None] * (n * (q + 1)) + np.arange(n)[None, :] * (q + 1)
                + channel)
        x = np.zeros(K * n * (q + 1), dtype=np.float32)
        x[flat.ravel()] = 1.0
        h = self.trunk(x.reshape(K, n * (q + 1)))
        if positions is None:
            logits = (h @ self.W_out + self.b_out).reshape(K, q, n).astype(np.float64)
        else:
            used = np.unique(positions[positions >= 0])
            cols = (np.arange(q)[:, None] * n + used[None, :]).ravel()
            part = (h @ self.W_out[:, cols] + self.b_out[cols]).reshape(K, q, used.size)
            at = np.searchsorted(used, np.maximum(positions, 0))             # (K, W)
            logits = np.take_along_axis(part, at[:, None, :], axis=2).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return np.ascontiguousarray(p.transpose(0, 2, 1))


class NeuralDenoiser(DiffusionModel):
    """Denoiser oracle: a residual MLP on ``(z / sqrt(1 + sigma^2), log sigma)``.

    Returns ``c_skip * z + c_out * F(...)`` with EDM-style preconditioning, so
    the output is finite and of the data scale for every sigma.

    Parameters
    ----------
    dim : int
        Data dimension d.
    hidden : int, default 1024
        Hidden width.
    layers : int, default 3
        Number of residual hidden layers (``hidden x hidden`` each).
    seed : int, default 0
        Seed of the weights.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models import NeuralDenoiser
    >>> m = NeuralDenoiser(4, hidden=32, layers=1, seed=0)
    >>> fastspec.sample(m, schedule=fastspec.schedules.ve(20, 80.0, 0.002),
    ...                 n_samples=2, seed=0).samples.shape
    (2, 4)
    """

    def __init__(self, dim, hidden=1024, layers=3, seed=0):
        d = int(dim)
        rng = np.random.default_rng(seed)
        self.trunk = _ResidualTrunk(rng, d + 1, hidden, layers)
        self.W_out = _weights(rng, int(hidden), d)
        super().__init__(self._denoise, d)

    @property
    def weight_bytes(self):
        """Total size of the weight matrices in bytes."""
        return self.trunk.weight_bytes + int(self.W_out.nbytes)

    @one_blas_thread
    def _denoise(self, z, sigma):
        z = np.asarray(z, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64).reshape(-1, 1)
        c_in = 1.0 / np.sqrt(1.0 + s * s)
        c_skip = 1.0 / (1.0 + s * s)
        c_out = s * c_in
        x = np.concatenate([z * c_in, np.log(s) / 4.0], axis=1).astype(np.float32)
        h = self.trunk(x)
        # Residual stacks grow the scale of h; 1/sqrt(1 + layers) keeps F's input O(1).
        F = np.tanh((h @ self.W_out) / np.sqrt(1.0 + len(self.trunk.W_hidden)))
        return c_skip * z + c_out * F.astype(np.float64)
