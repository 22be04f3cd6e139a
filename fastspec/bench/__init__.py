"""Measurements behind docs/BENCHMARKS.md; run them with ``python -m fastspec.bench``.

Each study lives in its own module (:mod:`fastspec.bench.study`: scaling,
wall-clock, engine overhead; :mod:`fastspec.bench.peers`: fastspec against the
approximate samplers of :mod:`fastspec.bench.peer_samplers`, errors from
:mod:`fastspec.bench.peer_errors`). The commands are listed by
``python -m fastspec.bench --help``.
"""

from .study import (ar_models, engine_shares, fit_row_cost, oracle_profile, overhead,
                    plot_csv, scaling, table, wallclock)

__all__ = ["ar_models", "engine_shares", "fit_row_cost", "oracle_profile", "overhead",
           "plot_csv", "scaling", "table", "wallclock"]
