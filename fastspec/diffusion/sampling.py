"""Diffusion samplers as engine tasks: sequential, token, block and srs.

Each sample is one generator task (see :mod:`fastspec._engine`): it yields the
states whose denoiser values it needs and receives them, so all samples, and
all concurrent residual proposals of ``srs``, share every oracle round.

Drafts (DESIGN.md section 3). A block of k steps from state ``y_j`` is drafted
with the denoiser frozen at a value ``D_draft`` known before drafting. When
``D_draft = D(y_j)`` the draft is *fresh*: state ``W_0`` is not queried
again and the verification round asks for ``W_1 .. W_k`` (the last row is
the next block's fresh draft if everything is accepted). After a residual
draw the denoiser at the new state is unknown; the next block is then drafted
with the (stale) value at the last accepted state and the round also asks for
``W_0``. The very first block is drafted with ``D_draft = 0``: any value known
before drafting is valid, and a first round spent only on ``D(y_0)`` would
never advance the chain. The final state ``y_N`` is never queried.
"""

import math
import time

import numpy as np

from .._blocksize import BlockSizer, check_block_size, check_row_cost
from .._engine import concurrently, first_accepted_in_order, run_rounds
from .._random import sample_generators
from .._result import SampleResult, build_stats
from ..schedules import Schedule, ve
from . import kernels

#: "auto" resolves to this method: the fewest rounds in benchmarks/diffusion_table.py.
AUTO_METHOD = "block"

_RULES = {"unverified": kernels.UNVERIFIED, "token": kernels.TOKEN, "block": kernels.BLOCK}
_METHODS = ("sequential", "token", "block", "srs", "unverified")


def default_schedule():
    """The schedule used when none is given: ``ve(1000, 80.0, 0.002)``."""
    return ve(1000, 80.0, 0.002)


class _Chain:
    """Schedule arrays plus helpers to build denoiser requests."""

    def __init__(self, schedule, dim):
        self.a = np.ascontiguousarray(schedule.a)
        self.b = np.ascontiguousarray(schedule.b)
        self.c = np.ascontiguousarray(schedule.c)
        self.s = schedule.s
        self.sigma = schedule.sigma
        self.init_scale = schedule.init_scale
        self.n = schedule.n_steps
        self.dim = dim

    def request(self, states, first_step):
        """Request ``(z, sigma, steps)`` for ``states`` at consecutive steps from ``first_step``."""
        steps = np.arange(first_step, first_step + states.shape[0])
        return (states / self.s[steps, None], self.sigma[steps], steps)

    def coefs(self, j, k):
        return self.a[j:j + k], self.b[j:j + k], self.c[j:j + k]


def sample_diffusion(model, *, schedule, n_samples, method, seed, block_size, row_cost=None):
    """Draw ``n_samples`` exact samples of the chain's output (see :func:`fastspec.sample`).

    ``method`` may also be ``"unverified"`` (tests only): every draft is
    accepted without verification, which is *not* exact (negative control).
    """
    t0 = time.perf_counter()
    if schedule is None:
        schedule = default_schedule()
    if not isinstance(schedule, Schedule):
        raise ValueError(
            "schedule must be a fastspec.schedules.Schedule (e.g. fastspec.schedules.ve(...)), "
            f"got {type(schedule).__name__}")
    block_size = check_block_size(block_size)
    method = AUTO_METHOD if method == "auto" else method
    if method not in _METHODS:
        raise ValueError(f"method must be one of 'auto', 'sequential', 'token', 'block', 'srs'; "
                         f"got {method!r}")
    row_cost = check_row_cost(row_cost, "block" if method == "unverified" else method, block_size)
    if method != "sequential":
        schedule.check_speculative()
    chain = _Chain(schedule, model.dim)
    n = chain.n
    rngs = sample_generators(seed, n_samples)
    tasks = []
    for rng in rngs:
        if method == "sequential":
            tasks.append(_sequential_task(chain, rng))
        elif method == "srs":
            tasks.append(_srs_task(chain, rng, BlockSizer(block_size, n, shrink_on_reject=True)))
        else:
            sizer = BlockSizer(block_size, n, row_cost=row_cost, share=1.0 / n_samples)
            tasks.append(_speculative_task(chain, rng, sizer, _RULES[method]))
    results, counter = run_rounds(model, tasks)  # (the engine pauses the GC)
    samples = np.stack([y for y, _ in results])
    stats = build_stats(method, counter, [log for _, log in results], n,
                        time.perf_counter() - t0)
    return SampleResult(samples=samples, stats=stats)


def _initial_state(chain, rng):
    return chain.init_scale * rng.standard_normal(chain.dim)


def _sequential_task(chain, rng):
    """Ancestral sampling: one round (one denoiser row) per step."""
    y = _initial_state(chain, rng)
    for j in range(chain.n):
        (den,) = yield [chain.request(y[None, :], j)]
        y = chain.a[j] * y + chain.b[j] * den[0] + chain.c[j] * rng.standard_normal(chain.dim)
    return y, []


def _verify_round(chain, j, k, w, d_draft, fresh):
    """Rows to ask for a drafted block; returns ``(request or None, lo, hi)``.

    States ``W_lo .. W_{hi-1}`` are asked: ``W_0`` only when the draft is
    stale, ``W_k`` only when the chain goes on after it.
    """
    lo = 1 if fresh else 0
    hi = k if j + k == chain.n else k + 1
    if hi <= lo:
        return None, lo, hi
    return chain.request(w[lo:hi], j + lo), lo, hi


def _fill(d_vals, d_draft, fresh, answer, lo, hi):
    if fresh:
        d_vals[0] = d_draft
    if answer is not None:
        d_vals[lo:hi] = answer


def _block_residual_noise(rng, delta, log_pi):
    """Noise of the position after the cut: ``(pi p - q)_+`` normalised, in noise units."""
    d = math.sqrt(float(delta @ delta))
    z = rng.standard_normal(delta.shape[0])
    if d == 0.0 or kernels.residual_mass(d, log_pi) <= 1e-300:
        return delta + z  # that branch has ~0 probability: draw from p itself
    while True:
        t, ok = kernels.residual_t(d, log_pi, rng.random((kernels.RESIDUAL_TRIES, 4)))
        if ok:
            return kernels.set_along(z, delta, False, t)


def _speculative_task(chain, rng, sizer, rule):
    """Token / block (or unverified) verification: one round per block."""
    y = _initial_state(chain, rng)
    d_draft = np.zeros(chain.dim)
    fresh = False
    log = []
    j = 0
    while j < chain.n:
        k = sizer.propose(chain.n - j)
        a, b, c = chain.coefs(j, k)
        xi = rng.standard_normal((k, chain.dim))
        w = kernels.draft_states(y, d_draft, a, b, c, xi)
        req, lo, hi = _verify_round(chain, j, k, w, d_draft, fresh)
        answer = None
        if req is not None:
            (answer,) = yield [req]
        d_vals = np.empty((k + 1, chain.dim))
        _fill(d_vals, d_draft, fresh, answer, lo, hi)
        log_rho, delta_norm = kernels.log_ratios(w, d_vals[:k], d_draft, a, b, c)
        tau, log_pi = kernels.decide(rule, log_rho, delta_norm, rng.random(k + 1))
        if tau == k:
            y = w[k]
            d_draft, fresh = (d_vals[k], True) if hi == k + 1 else (d_draft, False)
            j += k
        else:
            delta = b[tau] * (d_vals[tau] - d_draft) / c[tau]
            if rule == kernels.TOKEN:
                noise = kernels.set_along(xi[tau], delta, True, 0.0)
            else:
                noise = _block_residual_noise(rng, delta, log_pi)
            y = a[tau] * w[tau] + b[tau] * d_draft + c[tau] * noise
            # The denoiser at the last accepted state is a valid (stale) draft.
            d_draft, fresh = d_vals[tau], False
            j += tau + 1
        log.append((k, tau))
        sizer.update(k, tau)
    return y, log


# -- speculative rejection sampling ---------------------------------------------------

class _ProposalRate:
    """Running acceptance rate of residual proposals (an estimate of the block TV)."""

    def __init__(self):
        self.tried = 0
        self.accepted = 0

    def parallelism(self):
        tv = (self.accepted + 1) / (self.tried + 2)
        return int(min(64, max(2, math.ceil(2.0 / tv))))


def _srs_task(chain, rng, sizer):
    y = _initial_state(chain, rng)
    d_draft = np.zeros(chain.dim)
    fresh = False
    rates = {}  # proposal acceptance rate per block length (the TV differs by length)
    log = []
    j = 0
    while j < chain.n:
        k = sizer.propose(chain.n - j)
        path, d_vals, end_known, whole = yield from _srs_block(
            chain, j, k, y, d_draft, fresh, rng, rates)
        y = path[k]
        d_draft, fresh = (d_vals[k], True) if end_known else (d_vals[k - 1], False)
        log.append((k, k if whole else 0))
        sizer.update(k, k if whole else 0)
        j += k
    return y, log


def _srs_block(chain, j, k, y, d_draft, fresh, rng, rates):
    """Exact draw of steps ``j .. j+k-1`` from ``y`` by speculative rejection sampling.

    Returns ``(path (k+1, d), d_vals (k+1, d), end_known, accepted_whole)``:
    ``d_vals[i]`` is the denoiser at ``path[i]`` for ``i < k`` (always known:
    every step of an exact draw used it) and at ``path[k]`` if ``end_known``.
    """
    a, b, c = chain.coefs(j, k)
    xi = rng.standard_normal((k, chain.dim))
    w = kernels.draft_states(y, d_draft, a, b, c, xi)
    d_vals = np.empty((k + 1, chain.dim))
    if fresh and k == 1:  # the draft is the target itself: nothing to verify
        d_vals[0] = d_draft
        return w, d_vals, False, True
    req, lo, hi = _verify_round(chain, j, k, w, d_draft, fresh)
    (answer,) = yield [req]
    _fill(d_vals, d_draft, fresh, answer, lo, hi)
    log_rho, delta_norm = kernels.log_ratios(w, d_vals[:k], d_draft, a, b, c)
    if rng.random() < math.exp(min(0.0, float(np.sum(log_rho)))):
        return w, d_vals, hi == k + 1, True
    if k == 1:  # residual (p - q)_+ of one step: the reflection of the rejected noise
        delta = b[0] * (d_vals[0] - d_draft) / c[0]
        noise = kernels.set_along(xi[0], delta, True, 0.0)
        path = w.copy()
        path[1] = a[0] * w[0] + b[0] * d_draft + c[0] * noise
        return path, d_vals, False, False
    # Residual (mu - nu)_+ by rejection: proposals X ~ mu, accepted w.p. (1 - nu/mu)_+.
    d_here = d_vals[0]  # the denoiser at y is known now
    rate = rates.setdefault(k, _ProposalRate())
    while True:
        par = rate.parallelism()
        proposals = [_srs_proposal(chain, j, k, y, d_here, d_draft, child, rates)
                     for child in rng.spawn(par)]
        results, done = yield from concurrently(proposals, first_accepted_in_order)
        for i in range(par):
            if not done[i]:
                break
            rate.tried += 1
            accepted, path, p_vals, end_known = results[i]
            if accepted:
                rate.accepted += 1
                return path, p_vals, end_known, False


def _srs_proposal(chain, j, k, y, d_here, outer_draft, rng, rates):
    """One residual proposal: X ~ mu_B by srs on the two halves, then its accept test."""
    h = k // 2
    path1, vals1, end1, _ = yield from _srs_block(chain, j, h, y, d_here, True, rng, rates)
    # Without the denoiser at path1[h], the one at path1[h-1] is the second half's draft.
    draft2 = vals1[h] if end1 else vals1[h - 1]
    path2, vals2, end2, _ = yield from _srs_block(
        chain, j + h, k - h, path1[h], draft2, end1, rng, rates)
    path = np.concatenate([path1[:h], path2])
    vals = np.concatenate([vals1[:h], vals2])
    a, b, c = chain.coefs(j, k)
    log_rho, _ = kernels.log_ratios(path, vals[:k], outer_draft, a, b, c)
    log_r = float(np.sum(log_rho))  # log mu_B(X) - log nu_B(X)
    accepted = rng.random() < -math.expm1(min(0.0, -log_r))
    return accepted, path, vals, end2
