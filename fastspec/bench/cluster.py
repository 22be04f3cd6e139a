"""Samples per second of :func:`fastspec.cluster.sample` with 1 and 2 local Dask workers.

``python -m fastspec.bench cluster`` starts a ``distributed.LocalCluster``
of 1, then 2 worker processes (one thread each, ``NUMBA_NUM_THREADS=1``), draws
the same samples on each with the default chunking, checks that they are
bit-identical, and writes one row per timed run to ``docs/distributed.csv``.
The model is ``NeuralAR(256, hidden=512, layers=2)``, whose oracle (numpy
matmuls) took 97-98 % of a 1-worker run's wall-clock (docs/DISTRIBUTED.md), so
the figure is the oracle's scaling, not the engine's.
"""

import contextlib
import functools
import os
import time

import numpy as np
from .files import write_csv as _write_csv

# Set in this process before the clusters start, so that the worker processes
# inherit them at start-up (numba reads NUMBA_NUM_THREADS when it is imported).
# Dask's nanny sets the three BLAS/OpenMP ones for its workers anyway.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}


@contextlib.contextmanager
def _environ(values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_threads():
    import numba
    return int(numba.config.NUMBA_NUM_THREADS)


def measure(client, factory, n_samples, *, method="block", repeats=2, seed=0, label=""):
    """Time ``fastspec.cluster.sample`` on ``client``; one dict per run.

    Every worker builds the model and loads the kernels first (one untimed call
    with a chunk per worker thread), so the timed runs measure sampling only.
    """
    import fastspec.cluster as fd

    threads = sum(client.nthreads().values())
    numba_threads = sorted(set(client.run(_worker_threads).values()))
    fd.sample(factory, n_samples=threads, seed=seed + 1, client=client, chunk_size=1,
              method=method)
    rows, first = [], None
    for r in range(repeats):
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        res = fd.sample(factory, n_samples=n_samples, seed=seed, client=client, method=method)
        seconds = time.perf_counter() - t
        if first is None:
            first = res.samples
        elif not np.array_equal(first, res.samples):
            raise AssertionError("two runs with one seed gave different samples")
        chunk = fd.default_chunk_size(n_samples, threads)
        rows.append(dict(
            config=label, workers=len(client.nthreads()), threads=threads,
            numba_threads_per_worker="/".join(map(str, numba_threads)), method=method,
            n_samples=n_samples, chunk_size=chunk, chunks=-(-n_samples // chunk), repeat=r,
            seconds=seconds, samples_per_second=n_samples / seconds,
            rounds_max_over_chunks=res.stats.rounds, rows=res.stats.contexts,
            oracle_seconds_summed=res.stats.oracle_seconds,
            load_1min_before=load_before, load_1min_after=os.getloadavg()[0]))
        print(f"{label:10s} run {r}: {n_samples} samples in {seconds:6.2f} s = "
              f"{n_samples / seconds:7.1f} samples/s  (rounds {res.stats.rounds}, "
              f"oracle {res.stats.oracle_seconds:.1f} s summed over workers, "
              f"load {load_before:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)
    return rows, first


def write_csv(rows, path):
    """Write ``rows`` (dicts with one set of keys) to ``path``, adding the speedup column."""
    base = np.median([r["samples_per_second"] for r in rows if r["workers"] == 1] or [np.nan])
    for r in rows:
        r["speedup_vs_1_worker_median"] = r["samples_per_second"] / base
    _write_csv(path, rows)


def run(out="docs", quick=False, workers=(1, 2), repeats=2):
    """The measurement of ``python -m fastspec.bench cluster``; writes ``distributed.csv``."""
    import distributed

    from fastspec.models import NeuralAR

    if quick:
        factory = functools.partial(NeuralAR, 32, hidden=32, layers=1)
        n_samples, repeats = 64, 1
    else:
        factory = functools.partial(NeuralAR, 256, hidden=512, layers=2)
        n_samples = 1536
    rows, reference = [], None
    print(f"uptime load before: {os.getloadavg()}", flush=True)
    for w in workers:
        with _environ(WORKER_ENV):
            cluster = distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                               dashboard_address=None)
        with cluster, distributed.Client(cluster, set_as_default=False) as client:
            got, samples = measure(client, factory, n_samples, repeats=repeats,
                                   label=f"{w} worker" + ("s" if w > 1 else ""))
        rows += got
        if reference is None:
            reference = samples
        elif not np.array_equal(reference, samples):
            raise AssertionError(f"{w} workers gave other samples than {workers[0]}")
    path = os.path.join(out, "distributed.csv")
    write_csv(rows, path)
    for w in workers:
        med = np.median([r["samples_per_second"] for r in rows if r["workers"] == w])
        print(f"{w} worker(s): median {med:.1f} samples/s", flush=True)
    print(f"uptime load after: {os.getloadavg()}; wrote {path}", flush=True)
    return rows
