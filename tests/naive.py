"""Plain NumPy references of the verification rules (docs/ALGORITHMS.md), block by block.

They decide "from the end" exactly as the rules are stated, with one uniform per
decision, so the streaming kernels can be checked against them on the same
uniforms (tests/test_streaming.py), and the rules themselves against exact laws
(tests/test_ar_kernels.py).
"""

import math

import numpy as np
from scipy import special

TOKEN, BLOCK, UNVERIFIED = "token", "block", "unverified"


def ar_tau(rule, target, draft_probs, draft, u_stop):
    """Draft positions kept (0..k) for AR targets p_i (k, q), drafts q_i (k, q), W (k,).

    ``u_stop`` is (k + 1,) or (m, k + 1): one uniform per decision (for m
    blocks with the same drafts); returns an int or an int array (m,).
    """
    u = np.atleast_2d(u_stop)
    k = draft.shape[0]
    rho = target[np.arange(k), draft] / draft_probs[np.arange(k), draft]
    tau = np.full(u.shape[0], k)
    if rule == TOKEN:
        for i in range(k - 1, -1, -1):        # the first rejection wins
            tau = np.where(u[:, i] < rho[i], tau, i)
    elif rule == BLOCK:
        pi = np.ones(k + 1)
        for i in range(k):
            pi[i + 1] = min(1.0, pi[i] * rho[i])
        h = np.empty(k)
        for i in range(k):
            residual = np.maximum(pi[i] * target[i] - draft_probs[i], 0.0).sum()
            den = residual + 1.0 - pi[i]
            h[i] = residual / den if den > 0 else 1.0
        # Keep all with probability pi_k; else stop at the largest i with u_i < h_i
        # (h_0 = 1 since pi_0 = 1: the backward pass always stops by i = 0).
        stop = np.zeros(u.shape[0], dtype=np.int64)
        for i in range(1, k):
            stop = np.where(u[:, i] < h[i], i, stop)
        tau = np.where(u[:, k] < pi[k], k, stop)
    return int(tau[0]) if np.ndim(u_stop) == 1 else tau


def ar_residual(rule, target, draft_probs, draft, tau):
    """The law (q,) of the position after the cut, given tau < k."""
    k = draft.shape[0]
    scale = 1.0
    if rule == BLOCK:
        rho = target[np.arange(k), draft] / draft_probs[np.arange(k), draft]
        for i in range(tau):
            scale = min(1.0, scale * rho[i])
    weights = np.maximum(scale * target[tau] - draft_probs[tau], 0.0)
    if weights.sum() <= 1e-300:
        weights = target[tau]
    return weights / weights.sum()


def gaussian_residual_mass(d, log_pi):
    """R = pi Phi(d - t*) - Phi(-t*), t* = (d^2/2 - log pi) / d (0 when d = 0)."""
    if d <= 0:
        return 0.0
    t_star = (0.5 * d * d - log_pi) / d
    return max(math.exp(log_pi) * special.ndtr(d - t_star) - special.ndtr(-t_star), 0.0)


def diffusion_log_ratios(w, d_vals, d_draft, a, b, c):
    """Per-step log p_i/q_i and |Delta_i| of path ``w`` (k+1, d), denoiser values (k, d)."""
    zeta = (w[1:] - a[:, None] * w[:-1] - b[:, None] * d_draft) / c[:, None]
    delta = b[:, None] * (d_vals - d_draft) / c[:, None]
    return (np.sum(zeta * delta, axis=1) - 0.5 * np.sum(delta * delta, axis=1),
            np.sqrt(np.sum(delta * delta, axis=1)))


def diffusion_tau(rule, log_rho, delta_norm, u_stop):
    """Draft steps kept (0..k) and log pi_tau, from per-step log ratios and |Delta|."""
    k = log_rho.shape[0]
    if rule == UNVERIFIED:
        return k, 0.0
    if rule == TOKEN:
        for i in range(k):
            if not u_stop[i] < math.exp(min(0.0, log_rho[i])):
                return i, 0.0
        return k, 0.0
    log_pi = np.zeros(k + 1)
    for i in range(k):
        log_pi[i + 1] = min(0.0, log_pi[i] + log_rho[i])
    if u_stop[k] < math.exp(log_pi[k]):
        return k, log_pi[k]
    for i in range(k - 1, -1, -1):
        r = gaussian_residual_mass(delta_norm[i], log_pi[i])
        den = r - math.expm1(log_pi[i])
        h = 1.0 if den <= 0 else r / den
        if u_stop[i] < h:
            return i, log_pi[i]
    raise AssertionError("h_0 = 1: not reached")
