"""Peak memory of a call against the largest answer its oracle returns (issue 8).

Each case runs in a fresh interpreter so that its peak resident set size
(``ru_maxrss``) is its own: one sample of an AR model with ``n = 512``, ``q = 1000``
(a numba mixture of 4 product laws, whose oracle allocates exactly its answer),
method "block", with and without ``max_rows``.
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


def run(out="docs", cases=(None, 64, 16)):
    rows = []
    for max_rows in cases:
        row = measure(max_rows)
        rows.append(row)
        print(f"max_rows={max_rows}: {row['rounds']} rounds, {row['calls']} calls, "
              f"{row['rows']} rows; largest answer {row['largest_answer_mib']:.0f} MiB; "
              f"RSS before the call {row['rss_before_mib']:.0f} MiB, peak "
              f"{row['peak_mib']:.0f} MiB = {row['peak_over_largest_answer']:.2f}x the largest "
              "answer", flush=True)
    write_csv(os.path.join(out, "memory.csv"), rows)
    return rows
