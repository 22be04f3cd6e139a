"""srs against block: rounds and oracle rows per sample (issue 12).

CurieWeiss(J=1) and MarkovChain ~[[e^2, 1], [1, e^2]] at n = 64 .. 4096 with 1 and
4 samples per call, and the PointCloud chain ``ve(1000)``; 5 seeds each. Also
the log-log slope of srs rounds over n and, per model, the whole-block acceptance
of srs and the acceptance rate of its residual proposals (an estimate of the
blocks' total variation).
"""

import os

import numpy as np

import fastspec
from .study import ar_models
from .files import write_csv


def _cell(model, method, n_samples, seeds, **kw):
    rounds, rows, whole = [], [], []
    for s in seeds:
        st = fastspec.sample(model, n_samples=n_samples, method=method, seed=s, **kw).stats
        rounds.append(st.rounds)
        rows.append(float(np.mean(st.rows_per_sample)))
        whole.append(float(np.mean(st.accepted == st.block_sizes)) if st.block_sizes.size else 1.0)
    return float(np.mean(rounds)), float(np.mean(rows)), float(np.mean(whole))


def run(out="docs", quick=False):
    sizes = (64, 256) if quick else (64, 256, 1024, 4096)
    seeds = range(2 if quick else 5)
    table = []
    for name in ("CurieWeiss(J=1)", "MarkovChain(e^2)"):
        for n in sizes:
            model = ar_models(n)[name]
            for n_samples in (1, 4):
                cells = {m: _cell(model, m, n_samples, seeds) for m in ("block", "srs")}
                table.append(dict(model=name, size=n, samples_per_call=n_samples,
                                  block_rounds=cells["block"][0], srs_rounds=cells["srs"][0],
                                  ratio=cells["srs"][0] / cells["block"][0],
                                  block_rows_per_n=cells["block"][1] / n,
                                  srs_rows_per_n=cells["srs"][1] / n,
                                  srs_whole_block_acceptance=cells["srs"][2]))
                print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in table[-1].items()), flush=True)
    cloud = fastspec.models.PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
    sched = fastspec.schedules.ve(100 if quick else 1000, 80.0, 0.002)
    for n_samples in (1, 4):
        cells = {m: _cell(cloud, m, n_samples, seeds, schedule=sched) for m in ("block", "srs")}
        table.append(dict(model="PointCloud(d=16) ve", size=sched.n_steps,
                          samples_per_call=n_samples, block_rounds=cells["block"][0],
                          srs_rounds=cells["srs"][0], ratio=cells["srs"][0] / cells["block"][0],
                          block_rows_per_n=cells["block"][1] / sched.n_steps,
                          srs_rows_per_n=cells["srs"][1] / sched.n_steps,
                          srs_whole_block_acceptance=cells["srs"][2]))
        print(table[-1], flush=True)
    for name in ("CurieWeiss(J=1)", "MarkovChain(e^2)"):
        pts = [(r["size"], r["srs_rounds"]) for r in table
               if r["model"] == name and r["samples_per_call"] == 1]
        slope = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0]
        print(f"slope of srs rounds over n, {name}: {slope:.2f}")
    write_csv(os.path.join(out, "srs.csv"), table)
    return table
