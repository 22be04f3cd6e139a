"""Scaling study, wall-clock story and summary table (``python -m fastspec.bench``).

Sequential rounds for AR are exactly n by construction; at sizes where running it
is not affordable they are computed and the CSV row says ``exact-by-construction``.
"""

import csv
import os
import time

import numpy as np

import fastspec
from .files import pyplot, write_csv
from .._rules import CONCRETE_METHODS

METHODS = CONCRETE_METHODS
E2 = np.exp(2.0)


def ar_models(n):
    from fastspec.models import CurieWeiss, MarkovChain, MixtureOfProducts
    return {
        "CurieWeiss(J=1)": CurieWeiss(n=n, J=1.0),
        "MarkovChain(e^2)": MarkovChain(np.array([[E2, 1.0], [1.0, E2]]) / (E2 + 1.0), n=n),
        "MixtureOfProducts(sqrt n)": MixtureOfProducts.random(n, 2, int(round(np.sqrt(n))), 0),
    }


def _run(model, method, seeds, **kw):
    rounds, rows = [], []
    for s in seeds:
        st = fastspec.sample(model, n_samples=1, method=method, seed=s, **kw).stats
        rounds.append(float(np.mean(st.rounds_per_sample)))
        rows.append(float(np.mean(st.rows_per_sample)))
    return float(np.mean(rounds)), float(np.mean(rows))


def scaling(quick=False, out="docs", n_seeds=5, ar_sizes=None, steps=None, methods=METHODS,
            seq_max=4096, plot=True):
    ar_sizes = ar_sizes or ([16, 64] if quick else [64, 256, 1024, 4096])
    steps = steps or ([10, 100] if quick else [10, 100, 1000, 10000])
    seeds = range(2 if quick else n_seeds)
    rows = []
    for n in ar_sizes:
        for name, model in ar_models(n).items():
            for m in methods:
                if m == "sequential" and n > seq_max:
                    rows.append(dict(pipeline="ar", model=name, size=n, method=m, rounds=n,
                                     rows=n, seeds=0, measured="exact-by-construction"))
                    continue
                t = time.perf_counter()
                r, w = _run(model, m, seeds)
                rows.append(dict(pipeline="ar", model=name, size=n, method=m, rounds=r, rows=w,
                                 seeds=len(seeds), measured="measured"))
                print(f"{name:28s} n={n:6d} {m:10s} rounds={r:9.1f} rows/n={w / n:6.2f}"
                      f"  ({time.perf_counter() - t:.1f}s)", flush=True)
    from fastspec.models import PointCloud
    pc = PointCloud(np.random.default_rng(0).normal(size=(16, 16)))
    for N in steps:
        sched = fastspec.schedules.ve(N, 80.0, 0.002)
        for m in methods:
            r, w = _run(pc, m, seeds, schedule=sched)
            rows.append(dict(pipeline="diffusion", model="PointCloud(d=16)", size=N, method=m,
                             rounds=r, rows=w, seeds=len(seeds), measured="measured"))
            print(f"{'PointCloud(d=16) ve':28s} N={N:6d} {m:10s} rounds={r:9.1f} rows/N={w / N:6.2f}",
                  flush=True)
    write_csv(os.path.join(out, "scaling.csv"), rows,
              ["pipeline", "model", "size", "method", "rounds", "rows", "seeds", "measured"])
    slopes = []
    for key in sorted({(r["model"], r["method"]) for r in rows}):
        pts = [(r["size"], r["rounds"]) for r in rows if (r["model"], r["method"]) == key]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slopes.append(dict(model=key[0], method=key[1], slope=float(np.polyfit(x, y, 1)[0]),
                               sizes=" ".join(str(p[0]) for p in pts)))
    write_csv(os.path.join(out, "scaling_slopes.csv"), slopes)
    for s in slopes:
        print(f"slope {s['model']:28s} {s['method']:10s} {s['slope']:.3f}")
    if plot:
        _plot(rows, os.path.join(out, "scaling.png"))
    return rows, slopes


def plot_csv(csv_path, png_path):
    """Redraw the scaling figure from a ``scaling.csv`` written by :func:`scaling`."""
    with open(csv_path, newline="") as f:
        rows = [dict(r, size=int(r["size"]), rounds=float(r["rounds"])) for r in csv.DictReader(f)]
    _plot(rows, png_path)


def _plot(rows, path):
    plt = pyplot()
    if plt is None:
        return
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), squeeze=False)
    for ax, mod in zip(axes[0], models):
        for m in METHODS:
            pts = sorted((r["size"], r["rounds"]) for r in rows if r["model"] == mod and r["method"] == m)
            if pts:
                ax.loglog(*zip(*pts), "o-", label=m)
        sizes = np.array(sorted({r["size"] for r in rows if r["model"] == mod}), dtype=float)
        ax.loglog(sizes, 2 * np.sqrt(sizes), "k--", lw=0.8, label="2 sqrt(size) (goal)")
        ax.set_title(mod, fontsize=9)
        ax.set_xlabel("size (n or N)")
        ax.set_ylabel("rounds per sample")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _median_seconds(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def oracle_profile(model, rows, repeats=15, batch=64, seed=0):
    """Seconds per row of one oracle call with 1 row and with ``batch`` rows.

    ``rows(rng, K)`` returns the arguments of a ``K``-row call of ``model.query``.
    """
    rng = np.random.default_rng(seed)
    one, many = rows(rng, 1), rows(rng, batch)
    model.query(*many)                                                  # warm-up
    single = _median_seconds(lambda: model.query(*one), repeats)
    batched = _median_seconds(lambda: model.query(*many), repeats) / batch
    return single, batched


#: (method, block_size, row_cost) cases of the wall-clock study: the defaults; the
#: cost-aware block size with the oracle's measured row cost ("fit"); fixed sizes.
WALLCLOCK_CASES = (("sequential", "auto", None), ("token", "auto", None),
                   ("block", "auto", None), ("block", "auto", "fit"),
                   ("block", 8, None), ("block", 16, None), ("block", 32, None))


def fit_row_cost(single, batched, batch):
    """``row_cost = t1 / t0`` of a call costing ``t0 + K t1`` seconds for K rows.

    ``single`` is the time of a 1-row call, ``batched`` the time per row of a
    ``batch``-row call (both from :func:`oracle_profile`).
    """
    t1 = (batch * batched - single) / (batch - 1)
    t0 = single - t1
    if not (t1 > 0 and t0 > 0):
        raise ValueError(f"cannot fit t0 + K t1 to {single=} and {batched=} per row at K={batch}")
    return t1 / t0


def wallclock(out="docs", repeats=5, cases=WALLCLOCK_CASES):
    """End-to-end wall-clock with the neural oracles; writes ``wallclock.csv``.

    srs is left out: it spends 8-30 n rows per sample (see the scaling study),
    far more oracle work than token or block.
    """
    from fastspec.models.neural import NeuralAR, NeuralDenoiser
    n, N, d = 1024, 1000, 16
    ar = NeuralAR(n, q=2, seed=0)
    dm = NeuralDenoiser(d, seed=0)
    sched = fastspec.schedules.ve(N, 80.0, 0.002)

    def ar_rows(rng, K):
        ctx = rng.integers(0, 2, size=(K, n))
        ctx[:, rng.integers(0, n, size=K)[0]:] = -1                     # a prefix pinned
        return (ctx,)

    def dm_rows(rng, K):
        return rng.normal(size=(K, d)) * 10.0, np.full(K, 10.0)

    models = [(f"NeuralAR n={n}", ar, {}, ar_rows),
              (f"NeuralDenoiser d={d} N={N}", dm, {"schedule": sched}, dm_rows)]
    res = []
    for name, model, kw, rows in models:
        single, batched = oracle_profile(model, rows, batch=64)
        fitted = fit_row_cost(single, batched, 64)
        print(f"{name}: weights {model.weight_bytes / 1e6:.1f} MB; oracle {single * 1e3:.3f} ms "
              f"per row alone, {batched * 1e3:.3f} ms per row in a batch of 64 "
              f"({single / batched:.1f}x cheaper); fitted row_cost {fitted:.3f}", flush=True)
        for bs in (1, 16):
            for m, k, rc in cases:
                # row_cost is per sample's share of a call's fixed cost: bs samples share it
                rc = fitted * bs if rc == "fit" else rc
                opts = dict(method=m, block_size=k, row_cost=rc, **kw)
                fastspec.sample(model, n_samples=bs, seed=99, **opts)        # warm-up
                ts, rd, rw = [], [], []
                for s in range(repeats):
                    t = time.perf_counter()
                    r = fastspec.sample(model, n_samples=bs, seed=s, **opts)
                    ts.append(time.perf_counter() - t)
                    rd.append(r.stats.rounds)
                    rw.append(float(np.mean(r.stats.rows_per_sample)))
                res.append(dict(model=name, batch=bs, method=m, block_size=k,
                                row_cost=rc if rc is None else round(rc, 4),
                                median_seconds=float(np.median(ts)),
                                median_rounds=float(np.median(rd)),
                                median_rows_per_sample=float(np.median(rw)),
                                oracle_ms_per_row_alone=single * 1e3,
                                oracle_ms_per_row_batched=batched * 1e3))
                label = f"{m} block_size={k}" + ("" if rc is None else f" row_cost={rc:.3f}")
                print(f"{name:26s} batch={bs:2d} {label:38s} {np.median(ts):8.4f}s "
                      f"rounds={np.median(rd):7.1f} rows/sample={np.median(rw):8.1f}", flush=True)
    for r in res:
        seq = [x for x in res if x["model"] == r["model"] and x["batch"] == r["batch"]
               and x["method"] == "sequential"][0]
        r["speedup_vs_sequential"] = seq["median_seconds"] / r["median_seconds"]
    write_csv(os.path.join(out, "wallclock.csv"), res)
    return res


def engine_shares(model, n_seeds):
    """Share of wall-clock outside the oracle, one block sample per seed 0..n_seeds-1."""
    return [fastspec.sample(model, n_samples=1, method="block", seed=s).stats.engine_share
            for s in range(n_seeds)]


def overhead(n=1024, n_seeds=9):
    """Median share of one block sample's wall-clock spent outside the oracle."""
    res = {}
    for name, model in ar_models(n).items():
        fastspec.sample(model, n_samples=1, method="block", seed=99)         # warm-up / compile
        shares = engine_shares(model, n_seeds)
        res[name] = float(np.median(shares))
        print(f"{name:28s} n={n} block: engine share median {res[name]:.3f} "
              f"(min {min(shares):.3f}, max {max(shares):.3f}, {n_seeds} seeds)", flush=True)
    return res


def table(sizes=(256, 1024, 4096), n_seeds=3):
    print(f"{'model':20s} {'n':>5s} " + " ".join(f"{m:>18s}" for m in METHODS))
    for n in sizes:
        for name, model in list(ar_models(n).items())[:2]:
            cells = []
            for m in METHODS:
                r, w = _run(model, m, range(n_seeds))
                cells.append(f"{r:8.1f} / {w / n:5.2f}n")
            print(f"{name:20s} {n:5d} " + " ".join(f"{c:>18s}" for c in cells), flush=True)
