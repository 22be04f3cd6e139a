"""Property tests (hypothesis) of the AR kernels on random inputs."""

import numpy as np
from hypothesis import given, settings, strategies as st

from fastspec.ar import kernels


@st.composite
def blocks(draw):
    k = draw(st.integers(1, 6))
    q = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    alpha = draw(st.sampled_from([0.2, 1.0, 5.0]))
    target = rng.dirichlet(np.full(q, alpha), size=k)
    draft_probs = rng.dirichlet(np.full(q, alpha), size=k)
    draft_probs = np.clip(draft_probs, 1e-12, None)
    draft_probs /= draft_probs.sum(axis=1, keepdims=True)
    u = rng.random(k)
    return target, draft_probs, u, rng.random(k + 1), rng.random()


@settings(max_examples=200, deadline=None)
@given(blocks(), st.sampled_from([kernels.TOKEN, kernels.BLOCK]))
def test_verification_outputs_are_well_formed(block, rule):
    target, draft_probs, u, u_stop, u_residual = block
    k = target.shape[0]
    draft = kernels.draw_draft(draft_probs, u)
    assert np.all(draft_probs[np.arange(k), draft] > 0)
    tau, y = kernels.verify_block(rule, target, draft_probs, draft, u_stop, u_residual)
    assert 0 <= tau <= k
    if tau == k:
        assert y == -1
    else:
        assert target[tau, y] > 0  # the residual lives inside the target's support
        # a kept draft position never has target probability zero
        assert np.all(target[np.arange(tau), draft[:tau]] > 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.booleans(), st.integers(0, 2**32 - 1))
def test_contexts_pin_the_draft_prefix(n, k, skip_first, seed):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    base = np.where(rng.random(n) < 0.3, rng.integers(0, 3, n), -1)
    free = np.flatnonzero(base < 0)
    if free.size == 0:
        return
    block = rng.permutation(free)[:k]
    k = block.size
    probs = rng.dirichlet(np.ones(3), size=k)
    draft, ctx = kernels.draft_contexts(base, block, probs, rng.random(k), skip_first)
    offset = int(skip_first)
    assert ctx.shape == (k + 1 - offset, n)
    for r in range(ctx.shape[0]):
        expect = base.copy()
        expect[block[:r + offset]] = draft[:r + offset]
        assert np.array_equal(ctx[r], expect)
