"""fastspec.cluster.sample on a local Dask cluster of two worker processes.

The samples (and AR orders and log-probabilities) must be bit-identical to one
``fastspec.sample`` call with the same seed, for every method, chunking and
seed type; the combined stats must agree with that call's.
"""

import functools
import os
import re
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fastspec  # noqa: E402
import fastspec._seeds  # noqa: E402
import fastspec.cluster as fd  # noqa: E402
from fastspec.models import CurieWeiss, PointCloud  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Factories are pickled by reference (this module) and built on the workers.
curie_weiss = functools.partial(CurieWeiss, n=64, J=1.0)
POINTS = np.random.default_rng(0).normal(size=(5, 4))
SCHEDULE = fastspec.schedules.ve(60, 80.0, 0.002)


def point_cloud():
    return PointCloud(POINTS)


class BrokenOracle(RuntimeError):
    """The user's own exception type, raised inside the oracle on a worker."""


def failing_on_large_rounds():
    """An oracle that fails once a round has more than 40 rows (the warm-up's are fewer)."""
    inner = CurieWeiss(n=16, J=1.0)

    def marginals(ctx):
        if ctx.shape[0] > 40:
            raise BrokenOracle(f"cannot take {ctx.shape[0]} rows")
        return inner.marginals(ctx)

    return fastspec.ARModel(marginals, n=16, q=2)


def not_a_model():
    return "not a model"


def _fastspec_file():
    return fastspec.__file__


@pytest.fixture(scope="module")
def client():
    # Worker processes are spawned with this process's sys.path, which holds the
    # worktree and tests/; PYTHONPATH is set too for any process they start.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), old)
                                               if p)
    try:
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    client = distributed.Client(cluster, set_as_default=False)
    try:
        files = client.run(_fastspec_file)
        assert len(files) == 2
        assert all(Path(f).resolve().is_relative_to(ROOT) for f in files.values()), files
        yield client
    finally:
        client.close()
        cluster.close()


def assert_same(dist, local):
    """Bit-identical results, and the combined stats consistent with the local call's."""
    assert dist.samples.dtype == local.samples.dtype
    assert np.array_equal(dist.samples, local.samples)
    for name in ("orders", "log_prob"):
        a, b = getattr(dist, name), getattr(local, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert np.array_equal(a, b), name
    s, t = dist.stats, local.stats
    assert (s.method, s.n_steps) == (t.method, t.n_steps)
    # Rows and blocks of a sample do not depend on the chunking.
    assert s.contexts == t.contexts
    for name in ("rows_per_sample", "rounds_per_sample", "block_sizes", "accepted"):
        assert np.array_equal(getattr(s, name), getattr(t, name)), name
    assert int(np.max(s.rounds_per_sample)) <= s.rounds <= t.rounds
    assert s.oracle_calls >= s.rounds and s.wall_seconds > 0


@pytest.mark.parametrize("chunk_size", [1, 3, None])
@pytest.mark.parametrize("method", ["sequential", "block", "srs"])
def test_ar_bit_identical(client, method, chunk_size):
    kw = dict(n_samples=7, seed=11, method=method)
    # The local call first: it compiles the kernels into numba's on-disk cache, which the
    # workers then load instead of compiling them again, both at once.
    local = fastspec.sample(curie_weiss(), **kw)
    assert_same(fd.sample(curie_weiss, client=client, chunk_size=chunk_size, **kw), local)


@pytest.mark.parametrize("chunk_size", [1, 3, None])
@pytest.mark.parametrize("method", ["sequential", "block", "srs"])
def test_diffusion_bit_identical(client, method, chunk_size):
    kw = dict(n_samples=5, seed=12, method=method, schedule=SCHEDULE)
    local = fastspec.sample(point_cloud(), **kw)              # (first: see the AR test)
    dist = fd.sample(point_cloud, client=client, chunk_size=chunk_size, **kw)
    assert dist.orders is None and dist.log_prob is None
    assert_same(dist, local)


def test_per_sample_given_is_cut_with_the_samples(client):
    given = np.full((7, 64), -1, dtype=np.int64)
    given[np.arange(7), np.arange(7) * 3] = np.arange(7) % 2      # one pinned symbol each
    kw = dict(n_samples=7, seed=13, method="block", given=given)
    dist = fd.sample(curie_weiss, client=client, chunk_size=3, **kw)
    assert_same(dist, fastspec.sample(curie_weiss(), **kw))
    assert np.all(dist.samples[np.arange(7), np.arange(7) * 3] == np.arange(7) % 2)


def test_seed_sequence_is_used_as_given(client):
    root = np.random.SeedSequence(2024)
    dist = fd.sample(curie_weiss, n_samples=6, seed=root, client=client, chunk_size=4)
    assert root.n_children_spawned == 0
    assert_same(dist, fastspec.sample(curie_weiss(), n_samples=6, seed=root))


def test_generator_is_consumed_once_on_the_client(client):
    rng_dist, rng_local = np.random.default_rng(5), np.random.default_rng(5)
    dist = fd.sample(curie_weiss, n_samples=6, seed=rng_dist, client=client, chunk_size=2)
    assert_same(dist, fastspec.sample(curie_weiss(), n_samples=6, seed=rng_local))
    assert rng_dist.random() == rng_local.random()       # both consumed alike
    again = fd.sample(curie_weiss, n_samples=6, seed=rng_dist, client=client, chunk_size=2)
    assert not np.array_equal(again.samples, dist.samples)


def test_seed_none_draws_one_root_for_all_chunks(client, monkeypatch):
    roots = []
    original = fastspec._seeds.as_seed_sequence

    def recording(seed):
        roots.append(original(seed))
        return roots[-1]

    monkeypatch.setattr(fastspec._seeds, "as_seed_sequence", recording)
    dist = fd.sample(curie_weiss, n_samples=6, seed=None, client=client, chunk_size=2)
    assert len(roots) == 1
    monkeypatch.undo()
    assert_same(dist, fastspec.sample(curie_weiss(), n_samples=6, seed=roots[0]))


def test_current_client_is_the_default(client):
    with client.as_current():
        dist = fd.sample(curie_weiss, n_samples=4, seed=3)
    assert_same(dist, fastspec.sample(curie_weiss(), n_samples=4, seed=3))


def test_progress_bar_advances_on_the_client(client, capsys):
    dist = fd.sample(curie_weiss, n_samples=4, seed=3, client=client, chunk_size=2, progress=True)
    assert_same(dist, fastspec.sample(curie_weiss(), n_samples=4, seed=3))
    assert "4/4" in capsys.readouterr().err


def test_no_client_is_a_clear_error():
    # The fixture's client is not the default (set_as_default=False), so none is current.
    with pytest.raises(ValueError, match=r"no Dask client.*Client\(\).*tcp://scheduler:8786"):
        fd.sample(curie_weiss, n_samples=2, seed=0)


def test_user_exception_reaches_the_caller_unchanged(client):
    with pytest.raises(BrokenOracle) as info:
        fd.sample(failing_on_large_rounds, n_samples=8, seed=0, client=client, chunk_size=8)
    assert type(info.value) is BrokenOracle
    assert re.fullmatch(r"cannot take \d+ rows", str(info.value))
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1
    assert re.fullmatch(r"\(raised by the oracle in round \d+ of fastspec.sample\)", notes[0])
    # The cluster is still usable afterwards.
    assert fd.sample(curie_weiss, n_samples=2, seed=0, client=client).samples.shape == (2, 64)


def test_errors_raised_on_workers_pass_through(client):
    with pytest.raises(TypeError, match="model_factory\\(\\) must return a fastspec.ARModel"):
        fd.sample(not_a_model, n_samples=2, seed=0, client=client)
    with pytest.raises(ValueError, match="block_size"):
        fd.sample(curie_weiss, n_samples=2, seed=0, client=client, block_size=0)


def test_arguments_are_checked_on_the_client(client):
    with pytest.raises(TypeError, match="model_factory must be a callable"):
        fd.sample(curie_weiss(), n_samples=2, client=client)
    with pytest.raises(TypeError, match="pass model_factory"):
        fd.sample(curie_weiss, n_samples=2, client=client, model=curie_weiss())
    with pytest.raises(TypeError, match="unexpected keyword argument 'metod'"):
        fd.sample(curie_weiss, n_samples=2, client=client, metod="block")
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        fd.sample(curie_weiss, n_samples=0, client=client)
    with pytest.raises(ValueError, match="chunk_size must be None or an int >= 1"):
        fd.sample(curie_weiss, n_samples=2, client=client, chunk_size=0)
    with pytest.raises(ValueError, match=r"given must have shape .* n_samples = 3"):
        fd.sample(curie_weiss, n_samples=3, client=client,
                  given=np.full((2, 64), -1, dtype=np.int64))
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        fd.sample(curie_weiss, n_samples=2, client="tcp://scheduler:8786")


def test_default_chunk_size():
    assert fd.default_chunk_size(100, 2) == 25
    assert fd.default_chunk_size(101, 2) == 26
    assert fd.default_chunk_size(3, 4) == 1
    assert fd.default_chunk_size(5, 0) == 3


def test_bench_measure_writes_csv(client, tmp_path):
    import csv

    from fastspec.bench import cluster as bench
    factory = functools.partial(fastspec.models.NeuralAR, 8, hidden=8, layers=1)
    rows, samples = bench.measure(client, factory, 6, repeats=2, label="2 workers")
    assert samples.shape == (6, 8) and len(rows) == 2
    assert {r["workers"] for r in rows} == {2} and all(r["samples_per_second"] > 0 for r in rows)
    bench.write_csv(rows + [dict(rows[0], workers=1, config="1 worker")], tmp_path / "d.csv")
    got = list(csv.DictReader((tmp_path / "d.csv").read_text().splitlines()))
    assert len(got) == 3 and float(got[2]["speedup_vs_1_worker_median"]) == 1.0
