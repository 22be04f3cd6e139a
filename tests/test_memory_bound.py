"""A round's memory is one call's rows plus a few numbers per sample, whatever the round's size.

tracemalloc sees every numpy array (the engine's and the oracles'). The bound
is written from the design (per-sample state plus ``max_rows`` rows); the same
call with ``max_rows=None`` (one call per round) must exceed it, so the bound is
not trivially loose.
"""

import tracemalloc

import numpy as np
import pytest

import fastspec
from fastspec import schedules
from fastspec.models import MixtureOfProducts
from fastspec._rules import CONCRETE_METHODS


def _peak(fn):
    fn()                                            # compile outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", ["block", "srs"])
def test_diffusion_round_memory_is_bounded_by_max_rows(method):
    S, d, max_rows = (48 if method == "block" else 24), 512, 8
    model = fastspec.DiffusionModel(lambda z, sigma: z / (1.0 + sigma[:, None] ** 2), dim=d)
    sched = schedules.ve(120 if method == "block" else 60, 20.0, 0.05)

    def run(rows):
        return lambda: fastspec.sample(model, n_samples=S, method=method, schedule=sched, seed=3,
                                       max_rows=rows)
    # Per sample: its state, draft value and a round slot's O(d) vectors (srs: proposals,
    # at most 4 per sample, each a sample of its own); per row of a call: state, answer,
    # draft state, noise and the oracle's temporaries.
    per_sample = 8 * d * (12 if method == "block" else 60)
    bound = S * per_sample + 8 * 8 * d * max_rows + 2**20
    bounded = _peak(run(max_rows))
    whole = _peak(run(None))
    assert bounded < bound, (bounded, bound)
    assert whole > bound, (whole, bound)           # control: a whole round does not fit


def test_ar_round_memory_is_bounded_by_max_rows():
    S, n, q, max_rows = 6, 96, 40, 2
    inner = MixtureOfProducts.random(n, q=q, n_components=3, seed=0)
    model = fastspec.ARModel(inner.marginals, n=n, q=q)       # dense: (K, n, q) per call

    def run(rows):
        return lambda: fastspec.sample(model, n_samples=S, method="block", seed=3,
                                       max_rows=rows)
    row = 8 * n * q
    # Per sample: its draft marginals (n, q) and its round slot's windows; per row: answer
    # and the oracle's temporaries.
    bound = S * 4 * row + 3 * row * max_rows + 2**20
    bounded = _peak(run(max_rows))
    whole = _peak(run(None))
    assert bounded < bound, (bounded, bound)
    assert whole > bound, (whole, bound)


def test_samples_do_not_depend_on_max_rows():
    d = 16
    model = fastspec.DiffusionModel(lambda z, sigma: z / (1.0 + sigma[:, None] ** 2), dim=d)
    sched = schedules.ve(60, 20.0, 0.05)
    for method in CONCRETE_METHODS:
        ref = fastspec.sample(model, n_samples=5, method=method, schedule=sched, seed=2,
                              max_rows=None).samples
        for rows in ("auto", 1, 3):
            got = fastspec.sample(model, n_samples=5, method=method, schedule=sched, seed=2,
                                  max_rows=rows).samples
            np.testing.assert_array_equal(got, ref)
        one = fastspec.sample(model, n_samples=1, method=method, schedule=sched, seed=2,
                              max_rows=2).samples
        np.testing.assert_array_equal(one[0], ref[0])


def test_auto_keeps_each_call_under_the_budget(monkeypatch):
    import fastspec._driver as driver
    d = 32
    monkeypatch.setattr(driver, "MEMORY_BUDGET", 10 * (32 * d + 16))    # 10 diffusion rows
    sizes = []

    def denoise(z, sigma):
        sizes.append(z.shape[0])
        return z / (1.0 + sigma[:, None] ** 2)
    model = fastspec.DiffusionModel(denoise, dim=d)
    sched = schedules.ve(50, 20.0, 0.05)
    auto = fastspec.sample(model, n_samples=8, method="block", schedule=sched, seed=1)
    assert max(sizes) <= 10 and auto.stats.oracle_calls > auto.stats.rounds
    sizes.clear()
    whole = fastspec.sample(model, n_samples=8, method="block", schedule=sched, seed=1,
                            max_rows=None)
    assert max(sizes) > 10 and whole.stats.oracle_calls == whole.stats.rounds
    np.testing.assert_array_equal(auto.samples, whole.samples)


def _ring_run(monkeypatch, method, repack_bytes, spy=None):
    import fastspec.ar.sampler as ar_sampler
    from fastspec.models import MarkovChain
    rng = np.random.default_rng(4)
    model = MarkovChain(rng.dirichlet(np.full(5, 0.2), size=5), n=200)
    monkeypatch.setattr(ar_sampler, "RING_REPACK_BYTES", repack_bytes)
    if spy is not None:
        plan = ar_sampler.ARSampler.plan

        def spied(self):
            rows = plan(self)
            if self._r is not None:
                spy(self)
            return rows
        monkeypatch.setattr(ar_sampler.ARSampler, "plan", spied)
    return fastspec.sample(model, n_samples=12, method=method, seed=5).samples


@pytest.mark.parametrize("method", ["token", "block"])
def test_ar_ring_keeps_only_the_drafts_still_read(monkeypatch, method):
    # A ring kept from round to round ends up touching all C rows of every sample (C: the
    # longest window any sample had); rebuilt when at least half of it is no longer read,
    # it holds at most twice the slots' blocks (untouched rows of a fresh np.zeros take no
    # memory). Rows holding marginals are the nonzero ones.
    held, needed = {}, {}
    for repack_bytes in (2**62, 0):
        held[repack_bytes], needed[repack_bytes] = [], []

        def spy(sampler, key=repack_bytes):
            held[key].append(int((sampler.draft != 0).any(axis=2).sum()))
            needed[key].append(int(sampler._r.k.sum()))
        _ring_run(monkeypatch, method, repack_bytes, spy)
        monkeypatch.undo()
    assert needed[0] == needed[2**62]
    assert (np.array(held[0]) <= 2 * np.array(needed[0])).all()
    assert sum(held[2**62]) > 2 * sum(needed[2**62])      # control: a kept ring holds far more


@pytest.mark.parametrize("method", ["token", "block", "srs"])
def test_ar_ring_rebuilt_gives_the_same_samples(monkeypatch, method):
    kept = _ring_run(monkeypatch, method, 2**62)
    np.testing.assert_array_equal(_ring_run(monkeypatch, method, 0), kept)
