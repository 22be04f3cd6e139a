"""Small MLP oracles with seeded random weights, evaluated with numpy matmuls.

They stand in for a neural network: one batched call of K rows costs far less
than K calls of one row (BLAS), so fewer rounds mean less wall-clock.
"""

import numpy as np

from ..ar.model import ARModel
from ..diffusion.model import DiffusionModel


class NeuralAR(ARModel):
    """Any-order AR oracle: a one-hidden-layer MLP over the one-hot context.

    Input per row: the one-hot of each position with a "free" channel,
    flattened to ``n * (q + 1)``; output: logits ``(n, q)``, softmax per
    position. Weights are scaled so the marginals depend moderately on the
    context (speculation is meaningful, neither trivial nor hopeless).

    Parameters
    ----------
    n, q : int
        Sequence length and alphabet size.
    hidden : int, default 64
        Hidden width.
    seed : int, default 0
        Seed of the weights.
    strength : float, default 1.0
        Scale of the context's effect on the logits.
    """

    def __init__(self, n, q=2, hidden=64, seed=0, strength=1.0):
        rng = np.random.default_rng(seed)
        d_in = n * (q + 1)
        # Only pinned channels carry signal; each row of W1 sees about n/2 pinned inputs.
        self.W1 = rng.normal(0.0, 1.0 / np.sqrt(n), size=(d_in, hidden))
        self.b1 = rng.normal(0.0, 0.1, size=hidden)
        self.W2 = rng.normal(0.0, strength / np.sqrt(hidden), size=(hidden, n * q))
        self.b2 = rng.normal(0.0, 0.5, size=n * q)
        self._n, self._q = int(n), int(q)
        super().__init__(self._marginals, n, q)

    def _marginals(self, ctx):
        n, q = self._n, self._q
        K = ctx.shape[0]
        idx = np.where(ctx < 0, q, ctx)                      # channel q = free
        onehot = np.zeros((K, n, q + 1))
        np.put_along_axis(onehot, idx[:, :, None], 1.0, axis=2)
        # dense one-hot @ W1: a BLAS GEMM, cheap per row when K is large (like a real network)
        h = onehot.reshape(K, n * (q + 1)) @ self.W1
        h += self.b1
        np.tanh(h, out=h)
        logits = (h @ self.W2 + self.b2).reshape(K, n, q)
        logits -= logits.max(axis=2, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=2, keepdims=True)
        return p


class NeuralDenoiser(DiffusionModel):
    """Denoiser oracle: a residual MLP on (z / sqrt(1 + sigma^2), log sigma).

    Returns ``c_skip * z + c_out * F(...)`` with EDM-style preconditioning so
    the output is finite and of the data scale for every sigma.

    Parameters
    ----------
    dim : int
        Data dimension d.
    hidden : int, default 256
        Hidden width (two hidden layers).
    seed : int, default 0
        Seed of the weights.
    """

    def __init__(self, dim, hidden=256, seed=0):
        rng = np.random.default_rng(seed)
        d = int(dim)
        self.W1 = rng.normal(0.0, 1.0 / np.sqrt(d + 1), size=(d + 1, hidden))
        self.W2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, hidden))
        self.W3 = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, d))
        self.b1 = rng.normal(0.0, 0.1, size=hidden)
        self.b2 = rng.normal(0.0, 0.1, size=hidden)
        super().__init__(self._denoise, d)

    def _denoise(self, z, sigma):
        z = np.asarray(z, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64).reshape(-1, 1)
        c_in = 1.0 / np.sqrt(1.0 + s * s)
        c_skip = 1.0 / (1.0 + s * s)
        c_out = s * c_in
        x = np.concatenate([z * c_in, np.log(s) / 4.0], axis=1)
        h = np.tanh(x @ self.W1 + self.b1)
        h = np.tanh(h @ self.W2 + self.b2)
        return c_skip * z + c_out * np.tanh(h @ self.W3)
