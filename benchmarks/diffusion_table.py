"""Rounds and denoiser rows per sample, diffusion samplers (issue 3 closing note).

Plain script: ``python benchmarks/diffusion_table.py [--quick]``. Chain
``ve(N, 80, 0.002)``, PointCloud of 16 standard-normal points in d dims
(points from seed 0), method seeds 0, 1, 2. Large configurations use fewer
samples per seed (printed). Also prints the done-when check (block, N=1000,
d=16, mean over 3 seeds).
"""

import sys
import time

import numpy as np

import fastspec
from fastspec.models import PointCloud

METHODS = ("sequential", "token", "block", "srs")


def n_samples_for(method, n_steps, dim):
    if method == "srs":
        return 2 if n_steps * dim >= 1_000_000 else 4
    return 4 if n_steps * dim >= 1_000_000 else 8


def run(n_steps, dim, method, seeds=(0, 1, 2)):
    model = PointCloud(np.random.default_rng(0).standard_normal((16, dim)))
    sched = fastspec.schedules.ve(n_steps, 80.0, 0.002)
    rounds, rows, secs = [], [], 0.0
    n = n_samples_for(method, n_steps, dim)
    for seed in seeds:
        t0 = time.perf_counter()
        res = fastspec.sample(model, schedule=sched, n_samples=n, method=method, seed=seed)
        secs += time.perf_counter() - t0
        rounds.append(res.stats.mean_rounds)
        rows.append(float(np.mean(res.stats.rows_per_sample)))
    return float(np.mean(rounds)), float(np.mean(rows)), n, secs


def main():
    quick = "--quick" in sys.argv
    steps = (100, 1000) if quick else (100, 1000, 10000)
    print("| N | d | method | rounds/sample | rows/sample | rows/N | samples x seeds | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for n_steps in steps:
        for dim in (16, 256):
            for method in METHODS:
                r, w, n, secs = run(n_steps, dim, method)
                print(f"| {n_steps} | {dim} | {method} | {r:.1f} | {w:.0f} | {w / n_steps:.2f} "
                      f"| {n} x 3 | {secs:.1f} |", flush=True)
    per_seed = []
    model = PointCloud(np.random.default_rng(0).standard_normal((16, 16)))
    for seed in (0, 1, 2):
        res = fastspec.sample(model, schedule=fastspec.schedules.ve(1000, 80.0, 0.002),
                              n_samples=1, method="block", seed=seed)
        per_seed.append(res.stats.mean_rounds)
    print(f"done-when: block, ve(1000, 80, 0.002), PointCloud(16 pts), d=16, 1 sample per seed, "
          f"seeds 0,1,2: rounds {per_seed}, mean {np.mean(per_seed):.2f} (goal <= 12)")


if __name__ == "__main__":
    main()
