"""The verification rules, checked alone against exact laws.

For a tiny block (k = 2, q = 3) with arbitrary drafts q_i and targets p_i
(p_2 depending on W_1), the law of what one block outputs is integrated over
the rule's stop uniforms on a midpoint grid (each decision is a threshold
test, so the grid error is at most 1/(2 * GRID) per decision) and summed
exactly over the drafts and the residual draw. The output must follow the
target: X_1 ~ p_1, and X_2 ~ p_2(. | X_1) whenever the block outputs X_2.

The rules are the plain references of tests/naive.py; tests/test_streaming.py
checks that the numba kernels take the very same decisions on the same uniforms.
"""

import itertools

import numpy as np
import pytest

import naive
from fastspec.ar import kernels

GRID = 40
Q = 3


def _setting(seed):
    rng = np.random.default_rng(seed)
    a = np.full(Q, 2.0)
    return (rng.dirichlet(a), rng.dirichlet(a), rng.dirichlet(a), rng.dirichlet(a, size=Q))


def _output_law(rule, setting):
    q1, p1, q2, p2_given = setting
    law = np.zeros((Q, Q + 1))  # [x1, x2]; x2 == Q: the block ended after x1
    us = (np.arange(GRID) + 0.5) / GRID
    grid = np.array(list(itertools.product(us, us, us)))
    draft_probs = np.array([q1, q2])
    whole = 0.0  # probability that the whole block is kept
    for w1, w2 in itertools.product(range(Q), range(Q)):
        target = np.array([p1, p2_given[w1]])
        draft = np.array([w1, w2])
        weight = q1[w1] * q2[w2] / GRID**3
        taus = naive.ar_tau(rule, target, draft_probs, draft, grid)
        law[w1, w2] += weight * np.sum(taus == 2)
        whole += weight * np.sum(taus == 2)
        for tau in (0, 1):
            mass = weight * np.sum(taus == tau)
            if mass == 0:
                continue
            resid = naive.ar_residual(rule, target, draft_probs, draft, tau)
            if tau == 0:
                law[:, Q] += mass * resid
            else:
                law[w1, :Q] += mass * resid
    return law, whole


@pytest.mark.parametrize("rule", [naive.TOKEN, naive.BLOCK])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_block_outputs_the_target_law(rule, seed):
    setting = _setting(seed)
    q1, p1, q2, p2_given = setting
    law, _ = _output_law(rule, setting)
    np.testing.assert_allclose(law.sum(axis=1), p1, atol=0.02)
    for x in range(Q):  # P(X1 = x, X2 = y, X2 output) = P(X1 = x, X2 output) p2(y | x)
        both = law[x, :Q]
        np.testing.assert_allclose(both, both.sum() * p2_given[x], atol=0.02)
    assert law[:, :Q].sum() > 0.3  # the check above is not vacuous


def test_unverified_rule_does_not_output_the_target_law():
    q1, p1, q2, p2_given = _setting(0)
    law, _ = _output_law(naive.UNVERIFIED, (q1, p1, q2, p2_given))
    assert np.abs(law.sum(axis=1) - p1).max() > 0.1


def test_block_keeps_at_least_as_much_as_token():
    # Prefix-optimal: the block rule keeps the whole block more often than token.
    setting = _setting(3)
    whole = {rule: _output_law(rule, setting)[1] for rule in (naive.TOKEN, naive.BLOCK)}
    assert whole[naive.BLOCK] > whole[naive.TOKEN] + 0.01


def test_draw_categorical_never_picks_zero_weight():
    w = np.array([0.0, 0.3, 0.0, 0.7, 0.0])
    picks = {kernels.draw_categorical(w, u) for u in np.linspace(0, 1 - 1e-12, 1001)}
    assert picks == {1, 3}
