"""Two-sample test for the pretrained models: energy distance with a permutation p-value."""

import numpy as np
from scipy.spatial.distance import cdist


def energy_pvalue(a, b, n_permutations=999, seed=0):
    """Permutation p-value of the energy distance between samples ``a`` and ``b``.

    The energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely and Rizzo)
    is zero only when the two laws are equal, so the test has power against any
    difference given enough samples. The pooled distance matrix is computed once;
    each relabelling's statistic is a pair of quadratic forms, evaluated for all
    permutations with one matrix product.

    Parameters
    ----------
    a : array (m, d)
    b : array (k, d)
    n_permutations : int
    seed : int

    Returns
    -------
    float
        ``(1 + #{permuted statistic >= observed}) / (1 + n_permutations)``; the
        smallest possible value is ``1 / (1 + n_permutations)``.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    pooled = np.concatenate([a, b])
    D = cdist(pooled, pooled)
    N, m = len(pooled), len(a)
    k = N - m
    rng = np.random.default_rng(seed)
    in_a = np.zeros((n_permutations + 1, N))
    in_a[0, :m] = 1.0
    for r in range(1, n_permutations + 1):
        in_a[r, rng.permutation(N)[:m]] = 1.0
    in_b = 1.0 - in_a
    DA = in_a @ D
    s_aa = (DA * in_a).sum(axis=1)
    s_ab = (DA * in_b).sum(axis=1)
    s_bb = ((in_b @ D) * in_b).sum(axis=1)
    stat = 2.0 * s_ab / (m * k) - s_aa / m ** 2 - s_bb / k ** 2
    return float((1 + np.sum(stat[1:] >= stat[0])) / (1 + n_permutations))
