"""Draft models against autospeculation and sequential on the shipped models (issue 20).

Three pairs (target, draft): ``digits_ar`` drafted by ``digits_mixture``,
``text_mlm`` by ``text_bigram`` and ``digits_denoiser`` by ``digits_gaussian``
(``ve(1000, 80, 0.002)``; ``ve(200, ...)`` with ``--quick``). Each runs
"sequential", "block" (autospeculation) and "block" with the draft model,
anchored on the target (the default) and plain (``_plain_drafts``), with
``SAMPLES`` samples per call over a few seeds. Reported per cell: the target's
rounds per call and rows per sample, the draft model's calls per call and rows
per sample, and the wall-clock of the call with the draft's cost included
(median over seeds), of which the target's and the draft's own seconds.
Writes ``drafts.csv``.
"""

import os

import numpy as np

from fastspec.api import _sample
from fastspec.models import pretrained
from fastspec.schedules import ve
from .files import write_csv

#: Samples per call (they share every round).
SAMPLES = 16

VARIANTS = [("sequential", None), ("block", None), ("block", "anchored"), ("block", "plain")]


def _pairs(quick):
    n_steps = 200 if quick else 1000
    return [("digits_ar", pretrained.digits_ar(), "digits_mixture", pretrained.digits_mixture(),
             {}),
            ("text_mlm", pretrained.text_mlm(), "text_bigram", pretrained.text_bigram(), {}),
            ("digits_denoiser", pretrained.digits_denoiser(), "digits_gaussian",
             pretrained.digits_gaussian(), {"schedule": ve(n_steps, 80.0, 0.002)})]


def _cell(model, draft, method, variant, seeds, kw):
    stats = [_sample(model, n_samples=SAMPLES, method=method, seed=s,
                     draft=None if variant is None else draft,
                     _plain_drafts=variant == "plain", **kw).stats for s in seeds]
    steps = stats[0].n_steps
    return dict(
        steps=steps,
        target_rounds=float(np.mean([st.rounds for st in stats])),
        rounds_per_sample=float(np.mean([st.mean_rounds for st in stats])),
        target_rows_per_step=float(np.mean([st.contexts for st in stats])) / (SAMPLES * steps),
        draft_calls=float(np.mean([st.draft_calls for st in stats])),
        draft_rows_per_step=float(np.mean([st.draft_rows for st in stats])) / (SAMPLES * steps),
        mean_accepted=float(np.mean([st.mean_accepted for st in stats])),
        wall_s=float(np.median([st.wall_seconds for st in stats])),
        target_s=float(np.median([st.oracle_seconds for st in stats])),
        draft_s=float(np.median([st.draft_seconds for st in stats])))


def run(out="docs", quick=False):
    seeds = range(2 if quick else 5)
    table = []
    for name, model, draft_name, draft, kw in _pairs(quick):
        _sample(model, n_samples=2, seed=99, draft=draft, **kw)        # warm-up: compilation
        block = None
        for method, variant in VARIANTS:
            cell = _cell(model, draft, method, variant, seeds, kw)
            if method == "block" and variant is None:
                block = cell["target_rounds"]
            row = dict(model=name, draft="-" if variant is None else f"{draft_name} ({variant})",
                       method=method, samples_per_call=SAMPLES, seeds=len(seeds), **cell)
            row["rounds_vs_block"] = (row["target_rounds"] / block) if block else float("nan")
            table.append(row)
            print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)
    write_csv(os.path.join(out, "drafts.csv"), table)
    return table
