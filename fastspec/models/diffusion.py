"""Reference diffusion models with exact denoisers (numba twins, ``prange`` over rows).

* :class:`PointCloud` -- finitely many points (bounded support);
* :class:`GaussianMixture` -- isotropic Gaussian components;
* :class:`Gaussian` -- diagonal Gaussian; its denoiser is linear, so the
  output of any schedule's chain is Gaussian with a closed-form law
  (:meth:`Gaussian.output_law`), which the tests use.
"""

import math

import numpy as np
from numba import prange

from .._jit import twin, use_parallel

from ..diffusion.oracle import DiffusionModel

__all__ = ["PointCloud", "GaussianMixture", "Gaussian"]


@twin
def _mixture_denoise(z, sigma, means, variances, log_weights):
    """Posterior mean of ``x ~ sum_m w_m N(mu_m, v_m I)`` given ``x + sigma eps = z``.

    ``v_m = 0`` gives a point mass. Each row is computed by one thread.
    """
    n_rows, dim = z.shape
    n_comp = means.shape[0]
    out = np.empty((n_rows, dim))
    for r in prange(n_rows):
        s2 = sigma[r] * sigma[r]
        logits = np.empty(n_comp)
        best = -np.inf
        for m in range(n_comp):
            tot = variances[m] + s2
            sq = 0.0
            for t in range(dim):
                diff = z[r, t] - means[m, t]
                sq += diff * diff
            logits[m] = log_weights[m] - 0.5 * sq / tot - 0.5 * dim * math.log(tot)
            if logits[m] > best:
                best = logits[m]
        norm = 0.0
        for m in range(n_comp):
            logits[m] = math.exp(logits[m] - best)
            norm += logits[m]
        for t in range(dim):
            out[r, t] = 0.0
        for m in range(n_comp):
            wgt = logits[m] / norm
            shrink = variances[m] / (variances[m] + s2)
            for t in range(dim):
                out[r, t] += wgt * (means[m, t] + shrink * (z[r, t] - means[m, t]))
    return out


@twin
def _gaussian_denoise(z, sigma, mean, var):
    """``mean + var / (var + sigma**2) (z - mean)`` row by row (diagonal Gaussian)."""
    n_rows, dim = z.shape
    out = np.empty((n_rows, dim))
    for r in prange(n_rows):
        s2 = sigma[r] * sigma[r]
        for t in range(dim):
            out[r, t] = mean[t] + var[t] / (var[t] + s2) * (z[r, t] - mean[t])
    return out


def _as_matrix(name, value):
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array (n_points, dim), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _as_weights(weights, n, what):
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.array(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per {what}), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {w}")
    return w / w.sum()


def _check_args(z, sigma, dim):
    z = np.ascontiguousarray(z, dtype=np.float64)
    sigma = np.ascontiguousarray(sigma, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != dim or sigma.shape != (z.shape[0],):
        raise ValueError(f"denoise expects z (K, {dim}) and sigma (K,), got {z.shape} and "
                         f"{sigma.shape}")
    return z, sigma


class _MixtureBase(DiffusionModel):
    def __init__(self, means, variances, weights):
        self.means = means
        self.variances = variances
        self.weights = weights
        self._log_weights = np.log(np.maximum(weights, 1e-300))
        super().__init__(self._denoise, means.shape[1])
        self._denoise(np.zeros((1, self.dim)), np.ones(1))  # compile once, here

    def _denoise(self, z, sigma):
        z, sigma = _check_args(z, sigma, self.dim)
        return _mixture_denoise(use_parallel(z.size * self.means.shape[0]), z, sigma, self.means,
                                self.variances, self._log_weights)


class PointCloud(_MixtureBase):
    """Uniform (or weighted) distribution on finitely many points.

    Parameters
    ----------
    points : array_like (n_points, dim)
    weights : array_like (n_points,), optional
        Non-negative, normalised here (default uniform).

    Examples
    --------
    >>> import numpy as np, fastspec
    >>> model = fastspec.models.PointCloud(np.eye(3))
    >>> model.denoise(np.zeros((1, 3)), np.array([1e-3])).shape
    (1, 3)
    """

    def __init__(self, points, weights=None):
        pts = _as_matrix("points", points)
        super().__init__(pts, np.zeros(pts.shape[0]), _as_weights(weights, pts.shape[0], "point"))

    def __repr__(self):
        return f"PointCloud(n_points={self.means.shape[0]}, dim={self.dim})"


class GaussianMixture(_MixtureBase):
    """Mixture of isotropic Gaussians ``sum_m w_m N(mu_m, std_m**2 I)``.

    Parameters
    ----------
    means : array_like (n_components, dim)
    stds : array_like (n_components,)
        Component standard deviations (>= 0; 0 is a point mass).
    weights : array_like (n_components,), optional
        Non-negative, normalised here (default uniform).
    """

    def __init__(self, means, stds, weights=None):
        mu = _as_matrix("means", means)
        sd = np.array(stds, dtype=np.float64)
        if sd.shape != (mu.shape[0],):
            raise ValueError(f"stds must have shape ({mu.shape[0]},) (one per component), "
                             f"got {sd.shape}")
        if not np.isfinite(sd).all() or (sd < 0).any():
            raise ValueError(f"stds must be finite and >= 0, got {sd}")
        super().__init__(mu, sd ** 2, _as_weights(weights, mu.shape[0], "component"))

    def __repr__(self):
        return f"GaussianMixture(n_components={self.means.shape[0]}, dim={self.dim})"


class Gaussian(DiffusionModel):
    """Diagonal Gaussian ``N(mean, diag(std**2))``: a linear denoiser.

    Parameters
    ----------
    mean : array_like (dim,)
    std : float or array_like (dim,)
        Standard deviations (> 0).

    Notes
    -----
    Because the denoiser is affine, every chain of :mod:`fastspec.schedules`
    maps ``y_j`` to ``y_{j+1} = A_j y_j + B_j + c_j xi_j`` coordinate-wise,
    and :meth:`output_law` propagates mean and variance exactly.
    """

    def __init__(self, mean, std):
        mu = np.array(mean, dtype=np.float64)
        if mu.ndim != 1 or mu.shape[0] < 1 or not np.isfinite(mu).all():
            raise ValueError(f"mean must be a finite 1-D array, got shape {mu.shape}")
        sd = np.array(std, dtype=np.float64)
        if sd.ndim == 0:
            sd = np.full(mu.shape[0], float(sd))
        if sd.shape != mu.shape:
            raise ValueError(f"std must be a scalar or have the shape of mean {mu.shape}, "
                             f"got {sd.shape}")
        if not np.isfinite(sd).all() or (sd <= 0).any():
            raise ValueError(f"std must be finite and > 0, got {sd}")
        self.mean = mu
        self.std = sd
        self._var = sd ** 2
        super().__init__(self._denoise, mu.shape[0])
        self._denoise(np.zeros((1, self.dim)), np.ones(1))  # compile once, here

    def _denoise(self, z, sigma):
        z, sigma = _check_args(z, sigma, self.dim)
        return _gaussian_denoise(use_parallel(z.size), z, sigma, self.mean, self._var)

    def __repr__(self):
        return f"Gaussian(dim={self.dim})"

    def output_law(self, schedule):
        """Exact law of the chain's output ``y_N`` under ``schedule``.

        Parameters
        ----------
        schedule : fastspec.schedules.Schedule

        Returns
        -------
        mean, var : ndarray (dim,)
            ``y_N ~ N(mean, diag(var))``.
        """
        m = np.zeros(self.dim)
        v = np.full(self.dim, schedule.init_scale ** 2)
        for j in range(schedule.n_steps):
            s2 = schedule.sigma[j] ** 2
            shrink = self._var / (self._var + s2)
            gain = schedule.a[j] + schedule.b[j] * shrink / schedule.s[j]
            offset = schedule.b[j] * (1.0 - shrink) * self.mean
            m = gain * m + offset
            v = gain ** 2 * v + schedule.c[j] ** 2
        return m, v
