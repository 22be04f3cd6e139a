"""Peak memory of a call (issues 8 and 18).

Each case runs in a fresh interpreter so that its peak resident set size
(``ru_maxrss``) is its own, and reports it above the interpreter's own RSS after
the imports and small warm-up calls (compilation of the serial and the parallel
kernels: a cold numba cache would otherwise compile the parallel ones inside the
measured call), with the call's wall-clock and any compilation left in it.

* :func:`measure` (issue 8): one sample of an AR model with ``n = 512``,
  ``q = 1000`` (a numba mixture of 4 product laws, whose oracle allocates
  exactly its answer), method "block", with and without ``max_rows``.
* :func:`measure_case` (issue 18), default settings (``max_rows="auto"``):
  diffusion on ``N(0, I)`` data (affine denoiser) with ``ve(1000)``, 2000
  samples at ``d = 64`` and 64 images at ``d = 3 x 32 x 32``; an AR float32
  softmax oracle (logits: a fixed random table plus a large bonus on the
  successor of the previous position's symbol when it is pinned), dense or
  answering the positions protocol (only the listed positions: the padding of a
  call's narrower rows is left at zero, untouched).
"""

import json
import os
import subprocess
import sys

from .files import write_csv

_SCRIPT = r"""
import json, resource, sys
import fastspec
from fastspec.models import MixtureOfProducts
max_rows = json.loads(sys.argv[1])
inner = MixtureOfProducts.random(512, q=1000, n_components=4, seed=0)
largest = [0]
def marginals(ctx):
    out = inner.marginals(ctx)
    largest[0] = max(largest[0], out.nbytes)
    return out
model = fastspec.ARModel(marginals, n=512, q=1000)
fastspec.sample(model, n_samples=1, method="block", seed=1, max_rows=8)     # compile
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
largest[0] = 0
res = fastspec.sample(model, n_samples=1, method="block", seed=0, max_rows=max_rows)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(max_rows=max_rows, rounds=res.stats.rounds, calls=res.stats.oracle_calls,
                      rows=res.stats.contexts, largest_answer_mib=largest[0] / 2**20,
                      rss_before_mib=before, peak_mib=peak)))
"""


def measure(max_rows):
    """One case in a fresh interpreter; returns its figures (MiB)."""
    out = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(max_rows)], check=True,
                         capture_output=True, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    row["peak_over_largest_answer"] = row["peak_mib"] / row["largest_answer_mib"]
    return row


_CASE = r"""
import json, resource, sys, time
import numpy as np
import fastspec
from fastspec import schedules
from fastspec._jit import CompileTimer
from fastspec.api import _sample
case = json.loads(sys.argv[1])
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
largest = [0]
if case["kind"] == "diffusion":
    d = case["d"]
    def denoise(z, sigma):
        out = z / (1.0 + sigma[:, None] ** 2)
        largest[0] = max(largest[0], out.nbytes)
        return out
    model = fastspec.DiffusionModel(denoise, dim=d)
    kw = dict(schedule=schedules.ve(case["steps"], 80.0, 0.002))
    for parallel in (False, True):            # compile both twins (fastspec._jit)
        _sample(model, n_samples=2, method=case["method"], seed=1,
                schedule=schedules.ve(20, 80.0, 0.002), _parallel=parallel)
else:
    n, q = case["n"], case["q"]
    rng = np.random.default_rng(0)
    table = rng.standard_normal((n, q)).astype(np.float32)
    def logits_at(ctx, pos):
        # A fixed random table, plus 12 on symbol (x_{i-1} + 1) mod q when x_{i-1} is
        # pinned: about 0.75 of the mass, so a draft that misses it is often cut.
        logits = table[pos]
        prev = np.take_along_axis(ctx, np.maximum(pos - 1, 0), axis=1)
        r, j = np.nonzero((pos > 0) & (prev >= 0))
        logits[r, j, (prev[r, j] + 1) % q] += np.float32(12.0)
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        largest[0] = max(largest[0], logits.nbytes)
        return logits
    def dense(ctx):
        return logits_at(ctx, np.broadcast_to(np.arange(n), ctx.shape))
    def sparse(ctx, positions):
        # As a positions oracle should: the listed positions only, not the -1 padding of
        # the narrower rows (a call's answer is as wide as its widest row).
        out = np.zeros(positions.shape + (q,), dtype=np.float32)
        r, w = np.nonzero(positions >= 0)
        for lo in range(0, r.size, 256):
            rows, cols = r[lo:lo + 256], w[lo:lo + 256]
            out[rows, cols] = logits_at(ctx[rows], positions[rows, cols][:, None])[:, 0]
        largest[0] = max(largest[0], out.nbytes)
        return out
    positions = case["positions"]
    model = fastspec.ARModel(sparse if positions else dense, n=n, q=q, positions=positions)
    kw = {}
    small = fastspec.ARModel(
        lambda c, *p: np.full(((c.shape[0], p[0].shape[1]) if p else c.shape) + (3,), 1 / 3,
                              dtype=np.float32), n=8, q=3, positions=positions)
    for parallel in (False, True):            # compile both twins (fastspec._jit)
        for method in (case["method"], "sequential"):
            _sample(small, n_samples=2, method=method, seed=1, _parallel=parallel)
before = rss()
largest[0] = 0
t0 = time.perf_counter()
with CompileTimer() as compiling:         # (what the warm-up missed; 0 when it did not)
    res = fastspec.sample(model, n_samples=case["n_samples"], method=case["method"], seed=0,
                          max_rows=case.get("max_rows", "auto"), **kw)
seconds = time.perf_counter() - t0
st = res.stats
print(json.dumps(dict(case, rounds=st.rounds, calls=st.oracle_calls, rows=st.contexts,
                      positions_per_sample=st.positions / case["n_samples"],
                      largest_answer_mib=largest[0] / 2**20, rss_before_mib=before,
                      peak_above_mib=rss() - before, seconds=seconds,
                      compile_seconds=compiling.seconds)))
"""

#: The issue-18 cases: (label, case). Sizes as in the issue, except where noted.
CASES = (
    ("diffusion d=64", dict(kind="diffusion", d=64, steps=1000, n_samples=2000, method="block")),
    ("diffusion d=64", dict(kind="diffusion", d=64, steps=1000, n_samples=2000,
                            method="sequential")),
    ("images d=3x32x32", dict(kind="diffusion", d=3072, steps=1000, n_samples=64,
                              method="block")),
    ("images d=3x32x32", dict(kind="diffusion", d=3072, steps=1000, n_samples=64,
                              method="sequential")),
    # AR with the positions protocol at the issue's size (block: about 3.5 minutes here).
    # The dense oracle at n = 512, q = 4,000 and 4 samples: at the issue's size each dense
    # row costs this oracle about 0.1 s, and block asks about 2.2 n rows per sample (an hour).
    ("AR positions", dict(kind="ar", n=1024, q=32000, n_samples=16, method="block",
                          positions=True)),
    ("AR positions", dict(kind="ar", n=1024, q=32000, n_samples=16, method="sequential",
                          positions=True)),
    ("AR dense", dict(kind="ar", n=512, q=4000, n_samples=4, method="block", positions=False)),
    ("AR dense", dict(kind="ar", n=512, q=4000, n_samples=4, method="sequential",
                      positions=False)),
)


def same_columns(rows):
    """``rows`` with every key of any row (diffusion and AR cases differ), blank if absent."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return [{k: row.get(k, "") for k in keys} for row in rows]


def measure_case(case):
    """One issue-18 case in a fresh interpreter; returns its figures (MiB, seconds)."""
    out = subprocess.run([sys.executable, "-c", _CASE, json.dumps(case)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(out="docs", cases=(None, 64, 16), issue18=CASES):
    rows = []
    for label, case in issue18:
        row = measure_case(case)
        row["label"] = label
        rows.append(row)
        print(f"{label}, {case['method']}, {case['n_samples']} samples: {row['rounds']} rounds, "
              f"{row['calls']} calls, {row['rows']} rows, largest answer "
              f"{row['largest_answer_mib']:.1f} MiB; peak {row['peak_above_mib']:.0f} MiB above "
              f"the interpreter's {row['rss_before_mib']:.0f} MiB; {row['seconds']:.1f} s"
              + (f"; {row['positions_per_sample']:.0f} positions per sample"
                 if case["kind"] == "ar" else ""), flush=True)
    write_csv(os.path.join(out, "memory_cases.csv"), same_columns(rows))
    issue8 = []
    for max_rows in cases:
        row = measure(max_rows)
        issue8.append(row)
        print(f"max_rows={max_rows}: {row['rounds']} rounds, {row['calls']} calls, "
              f"{row['rows']} rows; largest answer {row['largest_answer_mib']:.0f} MiB; "
              f"RSS before the call {row['rss_before_mib']:.0f} MiB, peak "
              f"{row['peak_mib']:.0f} MiB = {row['peak_over_largest_answer']:.2f}x the largest "
              "answer", flush=True)
    write_csv(os.path.join(out, "memory.csv"), issue8)
    return rows, issue8
