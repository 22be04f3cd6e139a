"""Helpers for exactness tests: enumerated laws and a pooled chi-square test."""

import numpy as np
from scipy import stats


def chisquare_pvalue(counts, probs, min_expected=5.0):
    """Chi-square goodness of fit, pooling cells whose expected count is small.

    Cells are sorted by expected count and the smallest merged into one pooled
    cell until it reaches ``min_expected``; a cell of zero probability that
    was observed makes the p-value 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    total = counts.sum()
    if np.any(counts[probs <= 0] > 0):
        return 0.0
    keep = probs > 0
    counts, expected = counts[keep], probs[keep] * total
    order = np.argsort(expected)
    counts, expected = counts[order], expected[order]
    cut = np.searchsorted(np.cumsum(expected), min_expected) + 1
    pooled_c = np.concatenate([[counts[:cut].sum()], counts[cut:]])
    pooled_e = np.concatenate([[expected[:cut].sum()], expected[cut:]])
    return float(stats.chisquare(pooled_c, pooled_e).pvalue)


def empirical_counts(samples, shape):
    """Counts of each configuration of ``samples`` (S, n) in a table of ``shape``."""
    idx = np.ravel_multi_index(tuple(np.asarray(samples).T), shape)
    return np.bincount(idx, minlength=int(np.prod(shape)))
