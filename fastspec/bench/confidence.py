"""Rounds of ``order="confidence"`` against its sequential sampler (issue 20, part 2).

``python -m fastspec.bench confidence [--quick] [--out DIR]`` samples the
character Markov chain (:meth:`fastspec.models.MarkovChain.characters`, n = 32 and
128) and the shipped character masked LM (:func:`fastspec.models.pretrained.text_mlm`,
n = 64) in confidence order with each method, and, for reference, with the block
method in a uniformly random order. It writes ``confidence.csv``
(:data:`CSV_COLUMNS`): mean rounds and rows per sample, the ratio of sequential's
rounds to the method's, the mean drafted block length and the mean pairs kept per
block, and the wall-clock of the call.
"""

import os
import time

import numpy as np

import fastspec
from .files import write_csv

__all__ = ["CSV_COLUMNS", "CASES", "run"]

CSV_COLUMNS = ("model", "n", "order", "method", "n_samples", "seed", "rounds_per_sample",
               "rows_per_n", "speedup_vs_sequential", "mean_block", "mean_kept", "seconds")

#: (model name, builder); the builders import lazily (text_mlm loads its weights).
CASES = (
    ("characters", lambda: fastspec.models.MarkovChain.characters(32)),
    ("characters", lambda: fastspec.models.MarkovChain.characters(128)),
    ("text_mlm", lambda: fastspec.models.pretrained.text_mlm()),
)

RUNS = (("confidence", "sequential"), ("confidence", "token"), ("confidence", "block"),
        ("random", "block"))


def run(out, quick=False, n_samples=16, seed=0):
    """Measure every case of :data:`CASES` and write ``out/confidence.csv``.

    ``quick``: the character chain at n = 32 only, 4 samples.
    """
    cases = CASES[:1] if quick else CASES
    n_samples = 4 if quick else n_samples
    rows = []
    for name, build in cases:
        model = build()
        sequential = None
        for order, method in RUNS:
            t0 = time.perf_counter()
            res = fastspec.sample(model, n_samples=n_samples, method=method, seed=seed,
                                  order="confidence" if order == "confidence" else None)
            seconds = time.perf_counter() - t0
            rounds = res.stats.mean_rounds
            if method == "sequential":
                sequential = rounds
            row = dict(model=name, n=model.n, order=order, method=method, n_samples=n_samples,
                       seed=seed, rounds_per_sample=round(rounds, 2),
                       rows_per_n=round(float(np.mean(res.stats.rows_per_sample)) / model.n, 3),
                       speedup_vs_sequential=round(sequential / rounds, 2),
                       mean_block=round(res.stats.mean_block_size, 2),
                       mean_kept=round(res.stats.mean_accepted, 2), seconds=round(seconds, 3))
            print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
            rows.append(row)
    write_csv(os.path.join(out, "confidence.csv"), rows, CSV_COLUMNS)
    return rows
