"""Numba kernels of the diffusion samplers (DESIGN.md sections 3-4).

All randomness is drawn by the caller from the sample's own
``numpy.random.Generator`` and passed in as arrays, so a kernel's output is a
function of its inputs alone, whatever the number of threads.

Noise units: a draft step ``W_{i+1} = a_i W_i + b_i D_draft + c_i zeta_i``
has ``zeta_i ~ N(0, I)`` under the draft q_i; under the target p_i
(denoiser evaluated at ``W_i``) the same ``zeta_i`` is ``N(Delta_i, I)`` with
``Delta_i = b_i (D(W_i) - D_draft) / c_i``, so
``log p_i / q_i = <zeta_i, Delta_i> - |Delta_i|**2 / 2``.
"""

import math

import numpy as np
from numba import njit, prange

#: Verification rules understood by :func:`decide`.
UNVERIFIED = 0  # accept every draft position (wrong on purpose: the tests' negative control)
TOKEN = 1       # per-position min(1, rho_i), reflection at the first rejection
BLOCK = 2       # prefix-optimal sequence-level rule with backward stop decisions

_SQRT2 = math.sqrt(2.0)

#: Uniform tuples handed to one call of :func:`residual_t`. Each try accepts
#: with probability >= ~0.1 (measured on a grid of d, log_pi), so running out
#: (and asking the caller for more) is rare.
RESIDUAL_TRIES = 32


@njit(cache=True)
def draft_states(y0, d_draft, a, b, c, xi):
    """Frozen-denoiser draft: ``W_{i+1} = a_i W_i + b_i d_draft + c_i xi_i``.

    Parameters
    ----------
    y0 : ndarray (d,)
        The current state ``W_0``.
    d_draft : ndarray (d,)
        The frozen denoiser value.
    a, b, c : ndarray (k,)
        Chain coefficients of the k steps.
    xi : ndarray (k, d)
        Standard normal noise.

    Returns
    -------
    ndarray (k + 1, d)
        ``W_0 .. W_k``.
    """
    k, d = xi.shape
    w = np.empty((k + 1, d))
    w[0] = y0
    for i in range(k):
        for t in range(d):
            w[i + 1, t] = a[i] * w[i, t] + b[i] * d_draft[t] + c[i] * xi[i, t]
    return w


#: Below this many entries (k * d) :func:`log_ratios` runs serially: a
#: parallel launch costs ~10 us on an idle machine and up to ~1 ms when the
#: cores are shared, far more than the few microseconds of a small block.
PARALLEL_MIN_WORK = 1 << 16


def log_ratios(w, d_vals, d_draft, a, b, c):
    """Per-step log p_i/q_i and |Delta_i| (see :func:`_log_ratios`); parallel if wide."""
    if d_vals.shape[0] * d_vals.shape[1] >= PARALLEL_MIN_WORK:
        return _log_ratios_parallel(w, d_vals, d_draft, a, b, c)
    return _log_ratios_serial(w, d_vals, d_draft, a, b, c)


def _log_ratios(w, d_vals, d_draft, a, b, c):
    """Per-step log p_i/q_i and |Delta_i| along a path, for its draft.

    Parameters
    ----------
    w : ndarray (k + 1, d)
        Path ``W_0 .. W_k``.
    d_vals : ndarray (k, d)
        Denoiser values ``D(W_i / s_i, sigma_i)`` at ``W_0 .. W_{k-1}``.
    d_draft : ndarray (d,)
        The draft's frozen denoiser value.
    a, b, c : ndarray (k,)
        Chain coefficients (``c > 0``).

    Returns
    -------
    log_rho : ndarray (k,)
        ``<zeta_i, Delta_i> - |Delta_i|**2 / 2`` with
        ``zeta_i = (W_{i+1} - a_i W_i - b_i d_draft) / c_i``.
    delta_norm : ndarray (k,)
        ``|Delta_i|``.
    """
    k = d_vals.shape[0]
    dim = w.shape[1]
    log_rho = np.empty(k)
    delta_norm = np.empty(k)
    for i in prange(k):  # steps are independent: each writes its own entries
        dot = 0.0
        sq = 0.0
        inv_c = 1.0 / c[i]
        for t in range(dim):
            zeta = (w[i + 1, t] - a[i] * w[i, t] - b[i] * d_draft[t]) * inv_c
            delta = b[i] * (d_vals[i, t] - d_draft[t]) * inv_c
            dot += zeta * delta
            sq += delta * delta
        log_rho[i] = dot - 0.5 * sq
        delta_norm[i] = math.sqrt(sq)
    return log_rho, delta_norm


# One body compiled twice (as umap does): serial for narrow blocks, prange over steps for wide.
_log_ratios_serial = njit(cache=True)(_log_ratios)
_log_ratios_parallel = njit(cache=True, parallel=True)(_log_ratios)


@njit(cache=True)
def residual_mass(d, log_pi):
    """``R = int (pi * phi(t - d) - phi(t))_+ dt`` (Gaussian residual mass).

    With ``t* = (d**2 / 2 - log pi) / d``: ``R = pi Phi(d - t*) - Phi(-t*)``;
    ``R = 0`` when ``d = 0``.
    """
    if d <= 0.0:
        return 0.0
    t_star = (0.5 * d * d - log_pi) / d
    r = (math.exp(log_pi) * 0.5 * math.erfc((t_star - d) / _SQRT2)
         - 0.5 * math.erfc(t_star / _SQRT2))
    return max(r, 0.0)


@njit(cache=True)
def decide(rule, log_rho, delta_norm, u):
    """Number of draft positions kept, for one block.

    Parameters
    ----------
    rule : int
        :data:`TOKEN`, :data:`BLOCK` or :data:`UNVERIFIED`.
    log_rho, delta_norm : ndarray (k,)
        From :func:`log_ratios`.
    u : ndarray (k + 1,)
        Independent uniforms on [0, 1): one per decision.

    Returns
    -------
    tau : int
        Draft states ``W_1 .. W_tau`` are kept (``0 <= tau <= k``); when
        ``tau < k`` position ``tau + 1`` is drawn from the rule's residual.
    log_pi : float
        ``log pi_tau`` (block rule; 0 otherwise), the residual's weight.

    Notes
    -----
    Block rule: ``pi_0 = 1``, ``pi_i = min(1, pi_{i-1} rho_i)``; accept all
    with probability ``pi_k``, else for ``i = k-1 .. 0`` stop at ``i`` with
    probability ``h_i = R_i / (R_i + 1 - pi_i)`` (1 when the denominator is
    0), each decision with its own uniform.
    """
    k = log_rho.shape[0]
    if rule == UNVERIFIED:
        return k, 0.0
    if rule == TOKEN:
        for i in range(k):
            if not u[i] < math.exp(min(0.0, log_rho[i])):
                return i, 0.0
        return k, 0.0
    log_pi = np.empty(k + 1)
    log_pi[0] = 0.0
    for i in range(k):
        log_pi[i + 1] = min(0.0, log_pi[i] + log_rho[i])
    if u[k] < math.exp(log_pi[k]):
        return k, log_pi[k]
    for i in range(k - 1, -1, -1):
        r = residual_mass(delta_norm[i], log_pi[i])
        den = r - math.expm1(log_pi[i])
        h = 1.0 if den <= 0.0 else r / den
        if u[i] < h:
            return i, log_pi[i]
    return 0, 0.0  # not reached: h_0 = 1 because pi_0 = 1


@njit(cache=True)
def residual_t(d, log_pi, u):
    """Draw ``t`` with density proportional to ``(pi phi(t - d) - phi(t))_+``.

    The support is ``t > t* = (d**2 / 2 - log pi) / d``. Write
    ``t = t* + s``, ``m = t* - d``; the density of ``s > 0`` is
    ``phi(m + s) (1 - exp(-d s))``. Two exact rejection samplers:

    * ``d >= max(m, 1)``: ``s`` from the normal tail beyond ``m`` (plain
      rejection if ``m < 0.5``, else Robert's exponential proposal), kept
      with probability ``1 - exp(-d s)``;
    * otherwise (small ``d``, where ``1 - exp(-d s) ~ d s``): ``s`` from
      ``Gamma(2, lam)``, kept with probability ``exp(-(s - (lam - m))**2 / 2)``
      and then ``(1 - exp(-d s)) / (d s)``.

    Parameters
    ----------
    d : float
        ``|Delta| > 0``.
    log_pi : float
        ``log pi <= 0``.
    u : ndarray (n, 4)
        Uniforms on [0, 1); one row per try.

    Returns
    -------
    t : float
    ok : bool
        False if every try was rejected (draw again with fresh uniforms).
    """
    t_star = (0.5 * d * d - log_pi) / d
    m = t_star - d
    n = u.shape[0]
    if d >= max(m, 1.0):
        lam = 0.5 * (m + math.sqrt(m * m + 4.0))
        for j in range(n):
            if m < 0.5:
                # Box-Muller normal, kept if beyond m
                z = math.sqrt(-2.0 * math.log1p(-u[j, 0])) * math.cos(2.0 * math.pi * u[j, 1])
                if z <= m:
                    continue
                s = z - m
            else:
                s = -math.log1p(-u[j, 0]) / lam
                x = m + s - lam
                if not u[j, 1] < math.exp(-0.5 * x * x):
                    continue
            if u[j, 2] < -math.expm1(-d * s):
                return t_star + s, True
        return 0.0, False
    lam = 0.5 * (m + math.sqrt(m * m + 8.0))
    shift = lam - m
    for j in range(n):
        s = (-math.log1p(-u[j, 0]) - math.log1p(-u[j, 1])) / lam
        x = s - shift
        if not u[j, 2] < math.exp(-0.5 * x * x):
            continue
        ds = d * s
        keep = 1.0 if ds <= 0.0 else -math.expm1(-ds) / ds
        if u[j, 3] < keep:
            return t_star + s, True
    return 0.0, False


@njit(cache=True)
def set_along(v, delta, reflect, t):
    """Replace the component of ``v`` along ``e = delta / |delta|``.

    ``reflect`` True: the maximal reflection coupling,
    ``v - 2 (<v, e> - |delta| / 2) e``; else the component becomes ``t``
    (``v_perp + t e``, the block rule's residual noise).
    """
    dim = v.shape[0]
    sq = 0.0
    for i in range(dim):
        sq += delta[i] * delta[i]
    norm = math.sqrt(sq)
    out = v.copy()
    if norm == 0.0:
        return out
    proj = 0.0
    for i in range(dim):
        proj += v[i] * delta[i]
    proj /= norm
    target = norm - proj if reflect else t
    scale = (target - proj) / norm
    for i in range(dim):
        out[i] += scale * delta[i]
    return out
