"""fastspec against the loop a user would write instead, on the same numpy oracles.

The plain loop is batched ancestral sampling over all samples at once: one call
of the oracle per step with every sample's row, numpy arithmetic for the step
(AR: a random order per sample, inverse-CDF draws; diffusion: the schedule's
``a, b, c, s, sigma`` arrays). fastspec's "sequential" asks for exactly the same
rows in the same number of calls, so the difference is the engine's own cost;
"block" asks for fewer rounds. ``python -m fastspec.bench plain`` times all of
them in one run and prints medians and ratios; ``benchmarks/bench_plain.py``
holds the same cases for asv.
"""

import os
import time

import numpy as np

import fastspec
from .files import write_csv


def point_cloud_denoiser(points):
    """Numpy denoiser of the uniform law on ``points`` (P, d): E[x | x + sigma eps = z]."""
    points = np.asarray(points, dtype=np.float64)

    def denoise(z, sigma):
        d2 = ((z[:, None, :] - points[None]) ** 2).sum(axis=-1)      # (K, P)
        logits = -0.5 * d2 / sigma[:, None] ** 2
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        return w @ points
    return denoise


class MixtureMarginals:
    """Numpy marginals of a mixture of ``C`` product laws on ``{0..q-1}^n``.

    Vectorised over contexts: the posterior over components given the pinned
    entries, then the mixture of the components' position laws.
    """

    def __init__(self, n, q=2, n_components=16, seed=0):
        rng = np.random.default_rng(seed)
        self.probs = np.clip(rng.dirichlet(np.full(q, 0.5), size=(n_components, n)), 1e-3, None)
        self.probs /= self.probs.sum(axis=-1, keepdims=True)
        self.log_probs = np.log(self.probs)
        self.n, self.q = n, q

    def __call__(self, ctx):
        pinned = ctx >= 0
        ll = self.log_probs[:, np.arange(self.n)[None, :], np.where(pinned, ctx, 0)]  # (C, K, n)
        ll = np.where(pinned[None], ll, 0.0).sum(axis=-1)                           # (C, K)
        ll -= ll.max(axis=0, keepdims=True)
        post = np.exp(ll)
        post /= post.sum(axis=0, keepdims=True)
        return np.einsum("ck,cnq->knq", post, self.probs)


def plain_diffusion(denoise, schedule, n_samples, dim, seed=0):
    """Batched ancestral sampling of the chain, the loop a user would write."""
    rng = np.random.default_rng(seed)
    y = schedule.init_scale * rng.standard_normal((n_samples, dim))
    for j in range(schedule.n_steps):
        d = denoise(y / schedule.s[j], np.full(n_samples, schedule.sigma[j]))
        y = schedule.a[j] * y + schedule.b[j] * d + schedule.c[j] * rng.standard_normal(y.shape)
    return y


def plain_ar(marginals, n, q, n_samples, seed=0):
    """Batched ancestral sampling in a random order per sample, the loop a user would write."""
    rng = np.random.default_rng(seed)
    x = np.full((n_samples, n), -1, dtype=np.int64)
    orders = rng.permuted(np.tile(np.arange(n), (n_samples, 1)), axis=1)
    rows = np.arange(n_samples)
    for t in range(n):
        pos = orders[:, t]
        cdf = np.cumsum(marginals(x)[rows, pos], axis=1)
        u = rng.random(n_samples)[:, None] * cdf[:, -1:]
        x[rows, pos] = np.minimum((cdf <= u).sum(axis=1), q - 1)
    return x


def cases():
    """The comparisons of issue 8: name -> (plain loop, fastspec model, sample kwargs)."""
    cloud = np.random.default_rng(0).standard_normal((16, 16))
    denoise = point_cloud_denoiser(cloud)
    out = {}
    for steps, n_samples in ((100, 5000), (1000, 16)):
        sched = fastspec.schedules.ve(steps, 80.0, 0.002)
        out[f"diffusion ve({steps}) x{n_samples}"] = (
            lambda seed, s=sched, m=n_samples: plain_diffusion(denoise, s, m, 16, seed),
            fastspec.DiffusionModel(denoise, dim=16), dict(schedule=sched, n_samples=n_samples))
    for n, n_samples in ((64, 3000), (256, 16)):
        marg = MixtureMarginals(n, 2, 16, seed=1)
        out[f"ar mixture n={n} x{n_samples}"] = (
            lambda seed, f=marg, n=n, m=n_samples: plain_ar(f, n, 2, m, seed),
            fastspec.ARModel(marg, n=n, q=2), dict(n_samples=n_samples))
    return out


def compare(repeats=5, methods=("sequential", "block"), only=None):
    """Median seconds of the plain loop and of fastspec per case; prints ratios."""
    results = []
    for name, (plain, model, kwargs) in cases().items():
        if only and only not in name:
            continue
        for m in methods:                                    # compile and warm up
            fastspec.sample(model, method=m, seed=99, **kwargs)
        times = {"plain": []}
        shares = {m: [] for m in methods}
        for rep in range(repeats):                           # interleaved: same load for all
            t0 = time.perf_counter()
            plain(rep)
            times["plain"].append(time.perf_counter() - t0)
            for m in methods:
                t0 = time.perf_counter()
                res = fastspec.sample(model, method=m, seed=rep, **kwargs)
                times.setdefault(m, []).append(time.perf_counter() - t0)
                shares[m].append(res.stats.engine_share)
        med = {k: float(np.median(v)) for k, v in times.items()}
        row = dict(case=name, plain_s=med["plain"])
        for m in methods:
            row[f"{m}_s"] = med[m]
            row[f"{m}_vs_plain"] = med[m] / med["plain"]
            row[f"{m}_engine_share"] = float(np.median(shares[m]))
        results.append(row)
        print(f"{name:28s} plain {med['plain']:.3f}s  " + "  ".join(
            f"{m} {med[m]:.3f}s = {med[m] / med['plain']:.2f}x (engine {row[f'{m}_engine_share']:.0%})"
            for m in methods), flush=True)
    return results


def run(out="docs", quick=False):
    """``python -m fastspec.bench plain``: :func:`compare`, written to ``out/plain.csv``."""
    rows = compare(repeats=3 if quick else 7)
    write_csv(os.path.join(out, "plain.csv"), rows)
    return rows
