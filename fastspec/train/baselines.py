"""Simple baselines the pretrained models are measured against (numpy only).

* :func:`fit_mixture_of_products` -- a mixture of product distributions fit by
  EM (the digits AR model's baseline);
* :func:`unigram_log_probs` -- character frequencies (the text model's baseline);
* :func:`mean_denoiser`, :func:`linear_denoiser` -- the trivial denoisers (the
  data mean; the posterior mean of a Gaussian with the data's mean and
  covariance, i.e. the best affine denoiser).
"""

import numpy as np
from scipy.special import logsumexp


def fit_mixture_of_products(x, q, n_components, seed=0, n_iter=300, alpha=1.0, tol=1e-7):
    """EM for a mixture of products of categoricals on ``{0..q-1}^n``.

    Parameters
    ----------
    x : int array (N, n)
        Training items.
    q : int
        Alphabet size.
    n_components : int
        Number of mixture components C.
    seed : int
        Seeds the random initial responsibilities (Dirichlet(1) per item).
    n_iter : int
        Maximum EM iterations.
    alpha : float
        Pseudo-count added to every (component, position, symbol) cell in the
        M-step (MAP with a symmetric Dirichlet(1 + alpha) prior), so no
        probability is 0 and held-out likelihoods stay finite.
    tol : float
        Stop when the mean training log-likelihood per item improves by less.

    Returns
    -------
    weights : ndarray (C,)
    probs : ndarray (C, n, q)
    train_ll : float
        Mean training log-likelihood per item (nats) at the end.
    """
    x = np.asarray(x, dtype=np.int64)
    N, n = x.shape
    onehot = np.zeros((N, n, q))
    onehot[np.arange(N)[:, None], np.arange(n)[None, :], x] = 1.0
    flat = onehot.reshape(N, n * q)
    resp = np.random.default_rng(seed).dirichlet(np.ones(n_components), size=N)
    last = -np.inf
    for _ in range(n_iter):
        counts = resp.sum(axis=0)                                     # (C,)
        weights = (counts + 1.0) / (N + n_components)
        probs = (resp.T @ flat).reshape(n_components, n, q) + alpha
        probs /= probs.sum(axis=2, keepdims=True)
        log_joint = flat @ np.log(probs).reshape(n_components, n * q).T + np.log(weights)
        ll = logsumexp(log_joint, axis=1)
        resp = np.exp(log_joint - ll[:, None])
        if ll.mean() - last < tol:
            break
        last = ll.mean()
    return weights, probs, float(ll.mean())


def mixture_log_prob(x, weights, probs):
    """Exact log-probability (nats) of items ``x`` (N, n) under a mixture of products."""
    x = np.asarray(x, dtype=np.int64)
    n = probs.shape[1]
    per = np.log(probs)[:, np.arange(n), x].sum(axis=-1).T + np.log(weights)   # (N, C)
    return logsumexp(per, axis=1)


def unigram_log_probs(train_ids, q, alpha=1.0):
    """Log-frequencies (nats) of the ``q`` symbols in ``train_ids``, add-``alpha`` smoothed."""
    counts = np.bincount(np.asarray(train_ids).ravel(), minlength=q) + alpha
    return np.log(counts / counts.sum())


def mean_denoiser(mean):
    """``D(z, sigma) = mean``: the best denoiser that ignores its input."""
    mean = np.asarray(mean, dtype=np.float64)
    return lambda z, sigma: np.broadcast_to(mean, np.shape(z)).copy()


def linear_denoiser(mean, cov):
    """Posterior mean for ``x ~ N(mean, cov)``: ``mean + cov (cov + sigma^2 I)^-1 (z - mean)``.

    It is the best affine function of ``z`` in mean squared error for any data law
    with this mean and covariance. Computed in the eigenbasis of ``cov``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    evals, evecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    evals = np.clip(evals, 0.0, None)

    def denoise(z, sigma):
        u = (np.asarray(z, dtype=np.float64) - mean) @ evecs
        s2 = np.asarray(sigma, dtype=np.float64).reshape(-1, 1) ** 2
        return mean + (u * (evals / (evals + s2))) @ evecs.T

    return denoise
