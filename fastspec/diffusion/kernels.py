"""Numba kernels of the batched diffusion sampler (docs/ALGORITHMS.md, sections 2-3).

Every kernel loops over *slots* (the unfinished samples of a round; ``samples[a]``
is the sample in slot ``a``) or over request rows with ``prange``; each iteration
writes only its own outputs and draws only from its own sample's stream
(:mod:`fastspec._seeds`), so serial and parallel twins agree bit for bit.

One block of sample ``s`` at chain step ``j`` from state ``y``: the draft runs
``k`` steps with the denoiser frozen at ``D_draft``,
``W_0 = y``, ``W_{i+1} = a_i W_i + b_i D_draft + c_i xi_i`` (coefficients of
steps ``j + i``), ``xi_i ~ N(0, I)``. Row ``i`` of the request is the state
``W_i`` at step ``j + i``: ``z = W_i / s_{j+i}``, ``sigma_{j+i}``. Under the target
the same ``xi_i`` is ``N(Delta_i, I)`` with ``Delta_i = b_i (D(W_i) - D_draft) / c_i``,
so ``log p_i / q_i = <xi_i, Delta_i> - |Delta_i|**2 / 2`` (noise units). Row 0
is not asked when the draft is fresh (``D_draft = D(y)``), nor row ``k`` when the
block ends the chain (``y_N`` is never denoised).
"""

import math

import numpy as np
from numba import prange

from .._jit import kernel, twin
from .._rules import (ACCEPT, BLOCK, CAND, CAND_ROW, DEAD, FULL_ROW, LOG_PI, SRS, TINY, TOKEN,
                      keeps_whole, reset_slot, rows_of_slot, slots_of_rows, stop_probability)
from .._seeds import fill_normals, next_double
from .._sizer import update as update_block_size

_SQRT2 = math.sqrt(2.0)

# Float columns of the per-slot streaming state after LOG_PI (fastspec._rules).
CAND_LOG_PI, LOG_REF, CAND_LOG_REF = 1, 2, 3
N_FSTATE = 4


@kernel
def reference_term(noise, den, d_draft, ref, scale):
    """``log p / q_ref`` of one step taken with ``noise`` under the draft ``d_draft``.

    The step went to ``a W + b d_draft + c noise``; under the target (denoiser
    value ``den`` at ``W``) its noise is ``zeta = noise - scale (den - d_draft)``,
    under a reference draft frozen at ``ref`` it is ``zeta + Delta`` with
    ``Delta = scale (den - ref)``, ``scale = b / c``. srs proposals sum these to
    get ``log mu_B(X) - log nu_B(X)`` against their sample's draft.
    """
    dot = 0.0
    sq = 0.0
    for t in range(noise.shape[0]):
        delta = scale * (den[t] - ref[t])
        zeta = noise[t] - scale * (den[t] - d_draft[t])
        dot += zeta * delta
        sq += delta * delta
    return dot + 0.5 * sq


@kernel
def residual_mass(d, log_pi):
    """``R = int (pi phi(t - d) - phi(t))_+ dt`` (Gaussian residual mass).

    With ``t* = (d**2 / 2 - log pi) / d``: ``R = pi Phi(d - t*) - Phi(-t*)``;
    ``R = 0`` when ``d = 0``.
    """
    if d <= 0.0:
        return 0.0
    t_star = (0.5 * d * d - log_pi) / d
    r = (math.exp(log_pi) * 0.5 * math.erfc((t_star - d) / _SQRT2)
         - 0.5 * math.erfc(t_star / _SQRT2))
    return max(r, 0.0)


@kernel
def residual_try(d, log_pi, u0, u1, u2, u3):
    """One try at ``t`` with density proportional to ``(pi phi(t - d) - phi(t))_+``.

    The support is ``t > t* = (d**2 / 2 - log pi) / d``. Write ``t = t* + s``,
    ``m = t* - d``; the density of ``s > 0`` is ``phi(m + s) (1 - exp(-d s))``.
    Two exact rejection samplers, each accepting a try with probability above
    about 0.1 on a grid of ``(d, log pi)``:

    * ``d >= max(m, 1)``: ``s`` from the normal tail beyond ``m`` (plain
      rejection if ``m < 0.5``, else Robert's exponential proposal), kept with
      probability ``1 - exp(-d s)``;
    * otherwise (small ``d``, where ``1 - exp(-d s) ~ d s``): ``s`` from
      ``Gamma(2, lam)``, kept with probability ``exp(-(s - (lam - m))**2 / 2)``
      and then ``(1 - exp(-d s)) / (d s)``.

    Returns ``(t, ok)``; ``ok`` False: rejected, try again with fresh uniforms.
    """
    t_star = (0.5 * d * d - log_pi) / d
    m = t_star - d
    if d >= max(m, 1.0):
        if m < 0.5:
            # Box-Muller normal, kept if beyond m
            z = math.sqrt(-2.0 * math.log1p(-u0)) * math.cos(2.0 * math.pi * u1)
            if z <= m:
                return 0.0, False
            s = z - m
        else:
            lam = 0.5 * (m + math.sqrt(m * m + 4.0))
            s = -math.log1p(-u0) / lam
            x = m + s - lam
            if not u1 < math.exp(-0.5 * x * x):
                return 0.0, False
        if u2 < -math.expm1(-d * s):
            return t_star + s, True
        return 0.0, False
    lam = 0.5 * (m + math.sqrt(m * m + 8.0))
    s = (-math.log1p(-u0) - math.log1p(-u1)) / lam
    x = s - (lam - m)
    if not u2 < math.exp(-0.5 * x * x):
        return 0.0, False
    ds = d * s
    keep = 1.0 if ds <= 0.0 else -math.expm1(-ds) / ds
    if u3 < keep:
        return t_star + s, True
    return 0.0, False


@kernel
def residual_t(d, log_pi, u):
    """:func:`residual_try` over the rows of a uniform table ``u`` (n, 4); ``(t, ok)``."""
    for j in range(u.shape[0]):
        t, ok = residual_try(d, log_pi, u[j, 0], u[j, 1], u[j, 2], u[j, 3])
        if ok:
            return t, True
    return 0.0, False


@kernel
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


@twin
def initial_states(rng, init_scale, y):
    """``y_0 ~ N(0, init_scale**2 I)`` for every sample (its stream's first draws)."""
    for s in prange(y.shape[0]):
        fill_normals(rng, s, y[s])
        for t in range(y.shape[1]):
            y[s, t] *= init_scale


@kernel
def _take_step(rng, s, slot, i, step, W_cur, d_draft, a, b, c, xi):
    """Draw ``xi`` (the noise of draft step ``i``) and move ``W_cur[slot]`` to ``W_{i+1}``."""
    fill_normals(rng, s, xi)
    for t in range(W_cur.shape[1]):
        W_cur[slot, t] = a[step] * W_cur[slot, t] + b[step] * d_draft[s, t] + c[step] * xi[t]


@twin
def draft_blocks(rng, samples, j, k, first_row, fresh, y, d_draft, a, b, c, u_stop, fstate,
                 istate, cand_D, W_cur, n_drawn, W_cand, xi_cand, track, ref_D):
    """Start each slot's block: its ``k + 1`` stop uniforms, then the steps before its first row.

    The draft's states are not stored: :func:`fill_states` draws each step's
    noise and advances ``W_cur`` (the slot's latest draft state, ``W_{n_drawn}``)
    as the rows are built, chunk by chunk, so a round holds ``O(d)`` per slot
    plus its current chunk. A stream's draws are in a fixed order (uniforms,
    then ``xi_0 .. xi_{k-1}``), whatever the chunking. With a fresh draft row 0
    is not asked: ``xi_0`` is drawn here, and with ``track`` (srs proposals) its
    :func:`reference_term` (its denoiser value is the draft's) is added here.
    """
    for slot in prange(samples.shape[0]):
        s = samples[slot]
        for i in range(k[slot] + 1):
            u_stop[slot, i] = next_double(rng, s)
        reset_slot(fstate, istate, slot)
        cand_D[slot, :] = d_draft[s, :]   # fresh: row 0's denoiser value is the draft's
        W_cur[slot, :] = y[s, :]
        W_cand[slot, :] = y[s, :]         # the stop candidate's state, W_0 until a row says
        n_drawn[slot] = 0
        if first_row[slot] > 0 and k[slot] > 0:
            _take_step(rng, s, slot, 0, j[slot], W_cur, d_draft, a, b, c, xi_cand[slot])
            n_drawn[slot] = 1
            if track and fresh[s]:
                fstate[slot, LOG_REF] = reference_term(xi_cand[slot], d_draft[s], d_draft[s],
                                                       ref_D[s], b[j[slot]] / c[j[slot]])


@twin
def fill_states(rng, samples, j, k, first_row, row_start, start, stop, d_draft, a, b, c,
                s_scale, sigma, W_cur, n_drawn, xi_cand, z_out, sigma_out, W_out, xi_out):
    """Rows ``start .. stop - 1`` of the request: ``z = W_i / s_{j+i}`` and ``sigma_{j+i}``.

    Builds the draft as it goes: row ``i``'s state ``W_i`` (kept in ``W_out``
    for the verification) and, for ``i < k``, the noise ``xi_i`` of the step
    leaving it (``xi_out``), drawn from the sample's stream.
    """
    slot_lo, slot_hi = slots_of_rows(row_start, start, stop)
    for slot in prange(slot_lo, slot_hi):
        s = samples[slot]
        r0, r1 = rows_of_slot(row_start, slot, start, stop)
        for g in range(r0, r1):
            row = g - start
            i = g - row_start[slot] + first_row[slot]
            step = j[slot] + i
            for t in range(z_out.shape[1]):
                W_out[row, t] = W_cur[slot, t]
                z_out[row, t] = W_cur[slot, t] / s_scale[step]
            sigma_out[row] = sigma[step]
            if i < k[slot]:
                _take_step(rng, s, slot, i, step, W_cur, d_draft, a, b, c, xi_out[row])
                n_drawn[slot] = i + 1
                if i == 0:
                    xi_cand[slot, :] = xi_out[row, :]


@twin
def verify_rows(rule, den, start, stop, samples, j, k, first_row, row_start,
                d_draft, b, c, W_rows, xi_rows, u_stop, fstate, istate, cand_D, full_D, W_cand,
                xi_cand, err, track, ref_D):
    """Read the denoiser rows ``start .. stop - 1`` (of whichever slots they belong to), in order.

    Keeps, per slot, the running log pi (block rule), the latest stop candidate
    and its denoiser value (the next draft if the block is cut there) and
    whether the whole block is kept. Rows after the first rejection (token) are
    never used, so they are not read. A non-finite row that is used sets
    ``err[slot] = (row, chain step)`` and stops the slot. With the ``SRS`` rule
    the running sum is ``log prod rho`` (uncapped) and the candidate is row 0
    (the denoiser at the block's start, which seeds the residual proposals).
    """
    dim = den.shape[1]
    slot_lo, slot_hi = slots_of_rows(row_start, start, stop)
    for slot in prange(slot_lo, slot_hi):
        s = samples[slot]
        r0, r1 = rows_of_slot(row_start, slot, start, stop)
        for g in range(r0, r1):
            if istate[slot, DEAD]:
                break
            row = g - start
            i = g - row_start[slot] + first_row[slot]
            finite = True
            for t in range(dim):
                if not math.isfinite(den[row, t]):
                    finite = False
            if not finite:
                err[slot, 0], err[slot, 1], err[slot, 2] = 1, g, j[slot] + i
                istate[slot, DEAD] = 1
                break
            if i < k[slot]:
                step = j[slot] + i
                scale = b[step] / c[step]
                dot = 0.0
                sq = 0.0
                for t in range(dim):
                    delta = scale * (den[row, t] - d_draft[s, t])
                    dot += xi_rows[row, t] * delta
                    sq += delta * delta
                log_rho = dot - 0.5 * sq
                candidate = False
                if rule == BLOCK:
                    log_pi = fstate[slot, LOG_PI]
                    h = stop_probability(residual_mass(math.sqrt(sq), log_pi), log_pi)
                    candidate = u_stop[slot, i] < h
                    if candidate:
                        fstate[slot, CAND_LOG_PI] = log_pi
                    fstate[slot, LOG_PI] = min(0.0, log_pi + log_rho)
                elif rule == TOKEN:
                    candidate = not u_stop[slot, i] < math.exp(min(0.0, log_rho))
                elif rule == SRS:
                    candidate = i == 0
                    fstate[slot, LOG_PI] += log_rho
                if candidate:
                    istate[slot, CAND] = i
                    istate[slot, CAND_ROW] = g
                    fstate[slot, CAND_LOG_REF] = fstate[slot, LOG_REF]
                    for t in range(dim):
                        cand_D[slot, t] = den[row, t]
                        W_cand[slot, t] = W_rows[row, t]
                        xi_cand[slot, t] = xi_rows[row, t]
                    if rule == TOKEN:
                        istate[slot, DEAD] = 1    # rows after the first rejection are unused
                if track:
                    fstate[slot, LOG_REF] += reference_term(xi_rows[row], den[row], d_draft[s],
                                                            ref_D[s], scale)
            else:                                 # row k: kept whole?
                keep = keeps_whole(rule, fstate[slot, LOG_PI], u_stop[slot, k[slot]])
                istate[slot, ACCEPT] = 1 if keep else 0
                if keep:
                    istate[slot, FULL_ROW] = g
                    for t in range(dim):
                        full_D[slot, t] = den[row, t]


@twin
def settle_blocks(rng, rule, samples, j, k, stop_at, n_steps, y, d_draft, fresh,
                  a, b, c, W_cur, n_drawn, W_cand, xi_cand, u_stop, fstate, istate, cand_D,
                  full_D,
                  mode, fixed, row_cost, k_state, mean, cuts, at_risk, progress, tau_out,
                  track, ref_D, log_ref):
    """Decide each slot's kept length ``tau``, draw the residual step, install the next draft.

    Also updates the sample's block size, and takes the last step (of
    ``stop_at[s]``) directly when only one remains and the draft is fresh (no
    round needed), unless the chain goes on after it (srs proposals want the
    denoiser at their last state). With the ``SRS`` rule a rejected block sets
    ``tau_out = -1`` and leaves the sample as it was. With ``track``, adds each
    step's :func:`reference_term` to ``log_ref``.
    """
    dim = y.shape[1]
    for slot in prange(samples.shape[0]):
        s = samples[slot]
        kk = k[slot]
        if n_drawn[slot] < kk:                    # steps no row was built for (none asked)
            xi_rest = np.empty(dim)
            for i in range(n_drawn[slot], kk):
                _take_step(rng, s, slot, i, j[slot] + i, W_cur, d_draft, a, b, c, xi_rest)
            n_drawn[slot] = kk
        accept = istate[slot, ACCEPT]
        if accept < 0:                            # row k was not asked (or never reached)
            if istate[slot, DEAD]:
                accept = 0
            else:
                accept = 1 if keeps_whole(rule, fstate[slot, LOG_PI], u_stop[slot, kk]) else 0
        if rule == SRS and accept == 0:           # redrawn from the residual by the caller
            tau_out[slot] = -1
            update_block_size(mode, fixed, row_cost, k_state, mean, cuts, at_risk, s, kk, 0)
            continue
        tau = kk if accept == 1 else istate[slot, CAND]
        if tau == kk:
            if track:
                log_ref[s] += fstate[slot, LOG_REF]
            y[s, :] = W_cur[slot, :]
            if istate[slot, FULL_ROW] >= 0:
                d_draft[s, :] = full_D[slot, :]
                fresh[s] = True
            else:
                fresh[s] = False
            new_j = j[slot] + kk
        else:
            step = j[slot] + tau
            scale = b[step] / c[step]
            delta = np.empty(dim)
            sq = 0.0
            for t in range(dim):
                delta[t] = scale * (cand_D[slot, t] - d_draft[s, t])
                sq += delta[t] * delta[t]
            if rule == TOKEN:
                noise = set_along(xi_cand[slot], delta, True, 0.0)
            else:
                noise = np.empty(dim)
                fill_normals(rng, s, noise)
                d = math.sqrt(sq)
                log_pi = fstate[slot, CAND_LOG_PI]
                if d == 0.0 or residual_mass(d, log_pi) <= TINY:
                    for t in range(dim):          # that branch has ~0 probability: draw from p
                        noise[t] += delta[t]
                else:
                    while True:
                        tt, ok = residual_try(d, log_pi, next_double(rng, s), next_double(rng, s),
                                              next_double(rng, s), next_double(rng, s))
                        if ok:
                            break
                    noise = set_along(noise, delta, False, tt)
            if track:
                log_ref[s] += fstate[slot, CAND_LOG_REF] + reference_term(
                    noise, cand_D[slot], d_draft[s], ref_D[s], scale)
            for t in range(dim):
                y[s, t] = a[step] * W_cand[slot, t] + b[step] * d_draft[s, t] + c[step] * noise[t]
                d_draft[s, t] = cand_D[slot, t]   # the denoiser at the last kept state: stale
            fresh[s] = False
            new_j = j[slot] + tau + 1
        tau_out[slot] = tau
        progress[s] = new_j
        update_block_size(mode, fixed, row_cost, k_state, mean, cuts, at_risk, s, kk, tau)
        if fresh[s] and stop_at[s] - new_j == 1 and stop_at[s] == n_steps:
            noise = np.empty(dim)                 # the last step needs no round
            fill_normals(rng, s, noise)
            if track:
                log_ref[s] += reference_term(noise, d_draft[s], d_draft[s], ref_D[s],
                                             b[new_j] / c[new_j])
            for t in range(dim):
                y[s, t] = a[new_j] * y[s, t] + b[new_j] * d_draft[s, t] + c[new_j] * noise[t]
            progress[s] = stop_at[s]
