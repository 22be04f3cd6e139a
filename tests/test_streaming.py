"""The batched kernels take the rules' decisions, whatever the chunking of a round.

The samplers verify each block while its rows stream in (possibly split across
oracle calls of ``max_rows`` rows). Here every block of a run is re-decided by
the plain references of tests/naive.py, from the same drafts and uniforms and
from targets the test computes itself, and the kept length must be the same;
kept drafts must be in place and the residual draw inside the residual's
support. The references are checked against exact laws in test_ar_kernels.py
and test_diffusion_kernels.py.
"""

import numpy as np
import pytest

import naive
from fastspec._driver import CallCounter
from fastspec._rules import BLOCK, TOKEN
from fastspec._seeds import SampleStreams
from fastspec.ar.sampler import ARSampler
from fastspec.diffusion.sampler import DiffusionSampler
from fastspec.models import PointCloud
from fastspec import schedules
from test_ar_exactness import LogitOracle

import fastspec

NAIVE = {TOKEN: naive.TOKEN, BLOCK: naive.BLOCK}


def _run_round(sampler, model, max_rows, parallel_chunks=None):
    rows = sampler.plan()
    if rows == 0:
        return False
    r = sampler._r
    before = dict(draft=getattr(sampler, "draft", None), x=getattr(sampler, "x", None),
                  y=getattr(sampler, "y", None), d_draft=getattr(sampler, "d_draft", None),
                  fresh=sampler.fresh.copy())
    before = {k: (v.copy() if v is not None else None) for k, v in before.items()}
    step = rows if max_rows is None else max_rows
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        sampler.consume(model.call_oracle(sampler.request(start, stop), CallCounter(), "test"),
                        start, stop, "test")
    n_before = len(sampler.log.accepted)
    sampler.finish("test")
    taus = sampler.log.accepted[-1] if len(sampler.log.accepted) > n_before else None
    return r, before, taus


@pytest.mark.parametrize("rule", [TOKEN, BLOCK])
@pytest.mark.parametrize("max_rows", [None, 1, 3, 7])
def test_ar_decisions_match_the_reference(rule, max_rows):
    oracle = LogitOracle(n=12, q=3, seed=4)
    model = fastspec.ARModel(oracle, n=12, q=3)
    sampler = ARSampler(model, SampleStreams(31, 12), method="block", block_size="auto",
                        row_cost=None, order=None, given=None, rule=rule)
    checked = cut = 0
    while True:
        out = _run_round(sampler, model, max_rows)
        if out is False:
            break
        r, before, taus = out
        spec = np.flatnonzero(r.k > 0)
        if taus is None:
            continue
        for a, tau in zip(spec, taus):
            s, k, t = r.samples[a], r.k[a], r.t[a]
            block = sampler.orders[s, t:t + k]
            ring = before["draft"]                   # by order index (fastspec.ar.kernels)
            draft_probs = ring[s, (t + np.arange(k)) % ring.shape[1]]
            W = r.W[a, :k]
            target = np.empty_like(draft_probs)
            for i in range(k):
                ctx = before["x"][s].copy()
                ctx[block[:i]] = W[:i]
                target[i] = model.query(ctx[None])[0, block[i]]
            if before["fresh"][s]:
                target[0] = draft_probs[0]    # the draft is the marginal at the context
            expect = naive.ar_tau(NAIVE[rule], target, draft_probs, W, r.u_stop[a, :k + 1])
            assert tau == expect
            assert np.array_equal(sampler.x[s, block[:tau]], W[:tau])
            if tau < k:
                law = naive.ar_residual(NAIVE[rule], target, draft_probs, W, tau)
                assert law[sampler.x[s, block[tau]]] > 0
                cut += 1
            checked += 1
    assert checked > 20 and cut > 5


@pytest.mark.parametrize("rule", [TOKEN, BLOCK])
@pytest.mark.parametrize("max_rows", [None, 2, 5])
def test_diffusion_decisions_match_the_reference(rule, max_rows):
    model = PointCloud(np.random.default_rng(0).standard_normal((6, 3)) * 2.0)
    sched = schedules.ve(40, 20.0, 0.05)
    sampler = DiffusionSampler(model, SampleStreams(8, 5), method="block", schedule=sched,
                               block_size="auto", row_cost=None, rule=rule)
    a_, b_, c_ = sched.a, sched.b, sched.c
    checked = cut = 0
    while True:
        sampler.trace = []                # the draft states, as the chunks build them
        out = _run_round(sampler, model, max_rows)
        if out is False:
            break
        r, before, taus = out
        rows = np.concatenate([w for start, w in sampler.trace if start >= 0])
        last = sampler.trace[-1][1]       # each slot's last draft state W_k
        for a, tau in zip(np.flatnonzero(r.k > 0), taus):
            s, k, j = r.samples[a], r.k[a], r.j[a]
            W = np.empty((k + 1, rows.shape[1]))
            W[0] = before["y"][s]
            mine = rows[r.row_start[a]:r.row_start[a + 1]]
            W[r.first_row[a]:r.first_row[a] + len(mine)] = mine
            W[k] = last[a]
            steps = np.arange(j, j + k)
            d_vals = model.query(W[:k] / sched.s[steps, None], sched.sigma[steps])
            d_draft = before["d_draft"][s]
            if before["fresh"][s]:
                d_vals[0] = d_draft
            log_rho, dn = naive.diffusion_log_ratios(W, d_vals, d_draft, a_[steps], b_[steps],
                                                     c_[steps])
            expect, _ = naive.diffusion_tau(NAIVE[rule], log_rho, dn, r.u_stop[a, :k + 1])
            assert tau == expect
            if tau == k:
                if sampler.progress_j[s] == j + k:   # (not moved on by a last step without a round)
                    np.testing.assert_array_equal(sampler.y[s], W[k])
            else:
                cut += 1
            checked += 1
    assert checked > 20 and cut > 5
