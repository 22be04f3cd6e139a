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

State tuples passed to the kernels (``S`` samples, ``A`` slots of the round,
``d`` dimensions, ``N`` chain steps, ``k_max`` the round's longest block)::

    rnd = (samples, j, k, first_row, row_start)            the round (fastspec._sizer)
      samples: int64 (A,)        sample in each slot
      j: int64 (A,)              its chain step at the block's start
      k: int64 (A,)              its block's draft steps
      first_row: int64 (A,)      first row asked (1 when the draft is fresh, else 0)
      row_start: int64 (A + 1,)  slot a owns the round's rows row_start[a] .. row_start[a+1]-1
    chain = (y, d_draft, fresh, progress, stop_at)         per sample
      y: float64 (S, d)          the state at its chain step
      d_draft: float64 (S, d)    the denoiser value the draft is frozen at
      fresh: bool (S,)           d_draft is D(y)
      progress: int64 (S,)       chain steps taken
      stop_at: int64 (S,)        the step it stops at
    coef = (a, b, c)                                       the schedule
      a, b, c: float64 (N,)      step j: y' = a[j] y + b[j] D(y) + c[j] noise
    walk = (W_cur, n_drawn, W_cand, xi_cand)               per slot: the draft's path
      W_cur: float64 (A, d)      its latest state W_{n_drawn}
      n_drawn: int64 (A,)        draft steps drawn
      W_cand: float64 (A, d)     the stop candidate's state
      xi_cand: float64 (A, d)    the noise of the step leaving it
    stream = (u_stop, fstate, istate)                      per slot (fastspec._rules)
    found = (cand_D, full_D)                               per slot: what the rows gave
      cand_D: float64 (A, d)     the denoiser at the stop candidate's state
      full_D: float64 (A, d)     the denoiser after the block (row k)
    ref = (track, ref_D, log_ref)                          srs proposals' log mu / nu
      track: bool                sum the terms (else ref_D and log_ref are empty)
      ref_D: float64 (S, d)      the reference draft of each proposal
      log_ref: float64 (S,)      the sums, updated
    sizer = BlockSizer.arrays() (fastspec._sizer)
"""

import math

import numpy as np
from numba import prange

from .._jit import kernel, twin
from .._rules import (BLOCK, CAND_LOG_PI, CAND_LOG_SUM, DEAD, FULL_ROW, LOG_PI, LOG_SUM, TINY,
                      TOKEN, kept_length, reset_slot, row_of, rows_of_slot, slots_of_rows,
                      verify_draft_row, verify_last_row)
from .._seeds import fill_normals, next_double
from .._sizer import update as update_block_size

_SQRT2 = math.sqrt(2.0)

# The running log sum of the streaming state (fastspec._rules) is the srs proposals' log mu / nu.
LOG_REF, CAND_LOG_REF = LOG_SUM, CAND_LOG_SUM


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
def _take_step(rng, s, slot, step, W_cur, d_draft, coef, xi):
    """Draw ``xi`` (the noise of chain step ``step``) and move ``W_cur[slot]`` one step."""
    a, b, c = coef
    fill_normals(rng, s, xi)
    for t in range(W_cur.shape[1]):
        W_cur[slot, t] = a[step] * W_cur[slot, t] + b[step] * d_draft[s, t] + c[step] * xi[t]


@twin
def draft_blocks(
    rng,     # uint64 (S, 4): PCG64 state of each sample's stream (fastspec._seeds)
    rnd,     # the round (module doc)
    chain,   # per-sample state (module doc)
    coef,    # (a, b, c) (module doc)
    stream,  # (u_stop, fstate, istate), written (fastspec._rules)
    walk,    # (W_cur, n_drawn, W_cand, xi_cand), written (module doc)
    found,   # (cand_D, full_D), cand_D written (module doc)
    ref,     # (track, ref_D, log_ref) (module doc)
):
    """Start each slot's block: its ``k + 1`` stop uniforms, then the steps before its first row.

    The draft's states are not stored: :func:`fill_states` draws each step's
    noise and advances ``W_cur`` (the slot's latest draft state, ``W_{n_drawn}``)
    as the rows are built, chunk by chunk, so a round holds ``O(d)`` per slot
    plus its current chunk. A stream's draws are in a fixed order (uniforms,
    then ``xi_0 .. xi_{k-1}``), whatever the chunking. With a fresh draft row 0
    is not asked: ``xi_0`` is drawn here, and with ``track`` (srs proposals) its
    :func:`reference_term` (its denoiser value is the draft's) is added here.
    """
    samples, j, k, first_row, _ = rnd
    y, d_draft, fresh = chain[0], chain[1], chain[2]
    b, c = coef[1], coef[2]
    u_stop, fstate, istate = stream
    W_cur, n_drawn, W_cand, xi_cand = walk
    cand_D = found[0]
    track, ref_D = ref[0], ref[1]
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
            _take_step(rng, s, slot, j[slot], W_cur, d_draft, coef, xi_cand[slot])
            n_drawn[slot] = 1
            if track and fresh[s]:
                fstate[slot, LOG_REF] = reference_term(xi_cand[slot], d_draft[s], d_draft[s],
                                                       ref_D[s], b[j[slot]] / c[j[slot]])


@twin
def fill_states(
    rng,     # uint64 (S, 4): PCG64 state of each sample's stream (fastspec._seeds)
    rnd,     # the round (module doc)
    start,   # int: first round row wanted
    stop,    # int: one past the last round row wanted
    chain,   # per-sample state (module doc): d_draft is read
    coef,    # (a, b, c) (module doc)
    scales,  # (s_scale, sigma): float64 (N,) each, row i's z = W_i / s_scale, its sigma
    walk,    # (W_cur, n_drawn, W_cand, xi_cand), updated (module doc)
    out,     # (z, sigma, W, xi): float64 (K, d), (K,), (K, d), (K, d), written
):
    """Rows ``start .. stop - 1`` of the request: ``z = W_i / s_{j+i}`` and ``sigma_{j+i}``.

    Builds the draft as it goes: row ``i``'s state ``W_i`` (kept in ``W_out``
    for the verification) and, for ``i < k``, the noise ``xi_i`` of the step
    leaving it (``xi_out``), drawn from the sample's stream.
    """
    samples, j, k, first_row, row_start = rnd
    d_draft = chain[1]
    s_scale, sigma = scales
    W_cur, n_drawn, _, xi_cand = walk
    z_out, sigma_out, W_out, xi_out = out
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
                _take_step(rng, s, slot, step, W_cur, d_draft, coef, xi_out[row])
                n_drawn[slot] = i + 1
                if i == 0:
                    xi_cand[slot, :] = xi_out[row, :]


@kernel(inline="always")
def _all_finite(m, row):
    for t in range(m.shape[1]):
        if not math.isfinite(m[row, t]):
            return False
    return True


@kernel(inline="always")
def _copy_row(dst, i, src, j):
    """``dst[i, :] = src[j, :]`` as a loop: numba's slice assignment costs more per row
    than the copy itself at small ``d`` (it made verify_rows 5x slower at d = 16)."""
    for t in range(dst.shape[1]):
        dst[i, t] = src[j, t]


@twin
def verify_rows(
    rule,    # int: TOKEN, BLOCK, SRS or UNVERIFIED (fastspec._rules)
    den,     # float64 (K, d): the denoiser at answer rows' states
    start,   # int: round row of answer row 0
    stop,    # int: one past the round row of the last answer row
    rnd,     # the round (module doc)
    chain,   # per-sample state (module doc): d_draft is read
    coef,    # (a, b, c) (module doc)
    drawn,   # (W_rows, xi_rows): float64 (K, d) each, the rows' states and step noises
    stream,  # (u_stop, fstate, istate), updated (fastspec._rules)
    walk,    # (W_cur, n_drawn, W_cand, xi_cand), W_cand, xi_cand written (module doc)
    found,   # (cand_D, full_D), written (module doc)
    err,     # int64 (A, 3): (1, round row, chain step) of a non-finite row used, written
    ref,     # (track, ref_D, log_ref) (module doc)
):
    """Read the denoiser rows ``start .. stop - 1`` (of whichever slots they belong to), in order.

    Keeps, per slot, the running log pi (block rule), the latest stop candidate
    and its denoiser value (the next draft if the block is cut there) and
    whether the whole block is kept. Rows after the first rejection (token) are
    never used, so they are not read. A non-finite row that is used sets
    ``err[slot] = (row, chain step)`` and stops the slot. With the ``SRS`` rule
    the running sum is ``log prod rho`` (uncapped) and the candidate is row 0
    (the denoiser at the block's start, which seeds the residual proposals).
    """
    samples, j, k, first_row, row_start = rnd
    d_draft = chain[1]
    b, c = coef[1], coef[2]
    W_rows, xi_rows = drawn
    u_stop, fstate, istate = stream
    W_cand, xi_cand = walk[2], walk[3]
    cand_D, full_D = found
    track, ref_D = ref[0], ref[1]
    slot_lo, slot_hi = slots_of_rows(row_start, start, stop)
    for slot in prange(slot_lo, slot_hi):
        r0, r1 = rows_of_slot(row_start, slot, start, stop)
        for g in range(r0, r1):           # (read inline, not by a helper: see fastspec._rules)
            s, row, i = row_of(samples, row_start, first_row, start, slot, g)
            if istate[slot, DEAD]:
                break
            if not _all_finite(den, row):
                err[slot, 0], err[slot, 1], err[slot, 2] = 1, g, j[slot] + i
                istate[slot, DEAD] = 1
                break
            if i == k[slot]:                          # row k: kept whole?
                if verify_last_row(rule, u_stop, fstate, istate, slot, k[slot], g):
                    _copy_row(full_D, slot, den, row)
                continue
            step = j[slot] + i
            scale = b[step] / c[step]
            dot = 0.0
            sq = 0.0
            for t in range(den.shape[1]):
                delta = scale * (den[row, t] - d_draft[s, t])
                dot += xi_rows[row, t] * delta
                sq += delta * delta
            log_rho = dot - 0.5 * sq
            rho = math.exp(min(0.0, log_rho)) if rule == TOKEN else 0.0
            residual = 0.0
            if rule == BLOCK:
                residual = residual_mass(math.sqrt(sq), fstate[slot, LOG_PI])
            if verify_draft_row(rule, u_stop, fstate, istate, slot, i, g, rho, log_rho, residual):
                _copy_row(cand_D, slot, den, row)
                _copy_row(W_cand, slot, W_rows, row)
                _copy_row(xi_cand, slot, xi_rows, row)
            if track:
                fstate[slot, LOG_REF] += reference_term(xi_rows[row], den[row], d_draft[s],
                                                        ref_D[s], scale)


@kernel(inline="always")
def _residual_noise(rng, s, rule, xi, delta, sq, log_pi):
    """The noise of the step a cut block takes from its stop candidate.

    Token: the maximal reflection coupling of the candidate's noise ``xi``;
    block: a fresh normal whose component along ``delta`` is drawn from the
    residual ``(pi phi(t - d) - phi(t))_+`` (from the target when its mass is ~0).
    """
    if rule == TOKEN:
        return set_along(xi, delta, True, 0.0)
    noise = np.empty(delta.shape[0])
    fill_normals(rng, s, noise)
    d = math.sqrt(sq)
    if d == 0.0 or residual_mass(d, log_pi) <= TINY:
        for t in range(delta.shape[0]):           # that branch has ~0 probability: draw from p
            noise[t] += delta[t]
        return noise
    while True:
        tt, ok = residual_try(d, log_pi, next_double(rng, s), next_double(rng, s),
                              next_double(rng, s), next_double(rng, s))
        if ok:
            return set_along(noise, delta, False, tt)


@kernel(inline="always")
def _cut_block(rng, rule, s, slot, step, y, d_draft, a, b, c, W_cand, xi_cand, fstate, cand_D,
               track, ref_D, log_ref):
    """Move sample ``s`` from its stop candidate (at chain step ``step``) by the residual
    step (:func:`settle_blocks`, whose arrays these are)."""
    dim = y.shape[1]
    scale = b[step] / c[step]
    delta = np.empty(dim)
    sq = 0.0
    for t in range(dim):
        delta[t] = scale * (cand_D[slot, t] - d_draft[s, t])
        sq += delta[t] * delta[t]
    noise = _residual_noise(rng, s, rule, xi_cand[slot], delta, sq, fstate[slot, CAND_LOG_PI])
    if track:
        log_ref[s] += fstate[slot, CAND_LOG_REF] + reference_term(
            noise, cand_D[slot], d_draft[s], ref_D[s], scale)
    for t in range(dim):
        y[s, t] = a[step] * W_cand[slot, t] + b[step] * d_draft[s, t] + c[step] * noise[t]
        d_draft[s, t] = cand_D[slot, t]           # the denoiser at the last kept state: stale


@twin
def settle_blocks(
    rng,      # uint64 (S, 4): PCG64 state of each sample's stream (fastspec._seeds)
    rule,     # int: TOKEN, BLOCK, SRS or UNVERIFIED (fastspec._rules)
    rnd,      # the round (module doc)
    n_steps,  # int: N, the chain's length
    chain,    # per-sample state (module doc), updated
    coef,     # (a, b, c) (module doc)
    walk,     # (W_cur, n_drawn, W_cand, xi_cand) (module doc)
    stream,   # (u_stop, fstate, istate) (fastspec._rules)
    found,    # (cand_D, full_D) (module doc)
    sizer,    # BlockSizer.arrays() (fastspec._sizer), updated
    tau_out,  # int64 (A,): kept length of each slot's block (-1: srs rejected), written
    ref,      # (track, ref_D, log_ref), log_ref updated (module doc)
):
    """Decide each slot's kept length ``tau``, draw the residual step, install the next draft.

    Also updates the sample's block size, and takes the last step (of
    ``stop_at[s]``) directly when only one remains and the draft is fresh (no
    round needed), unless the chain goes on after it (srs proposals want the
    denoiser at their last state). With the ``SRS`` rule a rejected block sets
    ``tau_out = -1`` and leaves the sample as it was. With ``track``, adds each
    step's :func:`reference_term` to ``log_ref``.
    """
    samples, j, k, _, _ = rnd
    y, d_draft, fresh, progress, stop_at = chain
    a, b, c = coef
    W_cur, n_drawn, W_cand, xi_cand = walk
    u_stop, fstate, istate = stream
    cand_D, full_D = found
    mode, limit, row_cost, k_state, mean, cuts, at_risk = sizer
    track, ref_D, log_ref = ref
    dim = y.shape[1]
    for slot in prange(samples.shape[0]):
        s = samples[slot]
        kk = k[slot]
        if n_drawn[slot] < kk:                    # steps no row was built for (none asked)
            xi_rest = np.empty(dim)
            for i in range(n_drawn[slot], kk):
                _take_step(rng, s, slot, j[slot] + i, W_cur, d_draft, coef, xi_rest)
            n_drawn[slot] = kk
        tau = kept_length(rule, u_stop, fstate, istate, slot, kk)
        tau_out[slot] = tau
        update_block_size(mode, limit, row_cost, k_state, mean, cuts, at_risk, s, kk, max(tau, 0))
        if tau < 0:                               # redrawn from the residual by the caller
            continue
        if tau == kk:
            if track:
                log_ref[s] += fstate[slot, LOG_REF]
            y[s, :] = W_cur[slot, :]
            fresh[s] = istate[slot, FULL_ROW] >= 0
            if fresh[s]:
                d_draft[s, :] = full_D[slot, :]
            new_j = j[slot] + kk
        else:
            _cut_block(rng, rule, s, slot, j[slot] + tau, y, d_draft, a, b, c, W_cand, xi_cand,
                       fstate, cand_D, track, ref_D, log_ref)
            fresh[s] = False
            new_j = j[slot] + tau + 1
        progress[s] = new_j
        if fresh[s] and stop_at[s] - new_j == 1 and stop_at[s] == n_steps:
            noise = np.empty(dim)                 # the last step needs no round
            fill_normals(rng, s, noise)
            if track:
                log_ref[s] += reference_term(noise, d_draft[s], d_draft[s], ref_D[s],
                                             b[new_j] / c[new_j])
            for t in range(dim):
                y[s, t] = a[new_j] * y[s, t] + b[new_j] * d_draft[s, t] + c[new_j] * noise[t]
            progress[s] = stop_at[s]
