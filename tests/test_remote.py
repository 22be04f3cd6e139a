"""fastspec.remote through a real KServe server on 127.0.0.1 (issue 22).

One server per module serves a small enumerable Markov chain, a Gaussian
mixture and the shipped digits AR model. Through it: the samples equal the
local model's bit for bit (float64 on the wire), every method passes the
chi-square test against the enumerated law while unverified drafts fail it,
``max_in_flight`` changes nothing in the samples, and every failure (down
server, wrong shape or dtype, 503s, a server killed mid-call) ends in a short
RemoteError naming the URL, the model and the round, within the timeout.
"""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("kserve")

import httpx  # noqa: E402

import fastspec  # noqa: E402
import fastspec.remote as fr  # noqa: E402
from fastspec._rules import CONCRETE_METHODS, SPECULATIVE_METHODS, UNVERIFIED  # noqa: E402
from fastspec.api import _sample  # noqa: E402
from fastspec.models import TableModel  # noqa: E402
from fastspec.remote.protocol import encode_request  # noqa: E402
from fastspec.remote.server import (_gaussian_mixture, _markov3, ar_answer,  # noqa: E402
                                    keep_freed_heap, start_server)
from lawcheck import chisquare_pvalue, empirical_counts  # noqa: E402

METHODS = CONCRETE_METHODS
N_SAMPLES = 20_000     # as tests/test_ar_exactness.py
PASS_P, FAIL_P = 1e-3, 1e-6


@pytest.fixture(scope="module")
def server():
    with start_server(["markov3", "gaussian_mixture", "digits_ar"], timeout=60) as s:
        yield s


@pytest.fixture(scope="module")
def markov(server):
    model = fr.ar_model(server.url, "markov3", n=6, q=3, timeout=20)
    yield model
    model.marginals.close()


@pytest.fixture(scope="module")
def joint():
    return TableModel.from_model(_markov3()).joint


def _error_text(exc):
    return str(exc) + " " + " ".join(getattr(exc, "__notes__", []))


def test_server_listens_on_loopback(server):
    assert server.url.startswith("127.0.0.1:")
    assert "exited" not in server.log()


@pytest.mark.parametrize("method", METHODS)
def test_remote_samples_equal_local(markov, method):
    remote = fastspec.sample(markov, n_samples=300, method=method, seed=7)
    local = fastspec.sample(_markov3(), n_samples=300, method=method, seed=7)
    np.testing.assert_array_equal(remote.samples, local.samples)
    np.testing.assert_array_equal(remote.log_prob, local.log_prob)
    assert remote.stats.rounds == local.stats.rounds


@pytest.mark.parametrize("method", METHODS)
def test_exact_through_the_server(markov, joint, method):
    res = fastspec.sample(markov, n_samples=N_SAMPLES, method=method, seed=2024)
    p = chisquare_pvalue(empirical_counts(res.samples, joint.shape), joint.reshape(-1))
    assert p > PASS_P, f"{method} through the server: chi-square p = {p:.3g}"


def test_unverified_drafts_through_the_server_fail(markov, joint):
    res = _sample(markov, n_samples=N_SAMPLES, method="block", seed=2024, _rule=UNVERIFIED)
    p = chisquare_pvalue(empirical_counts(res.samples, joint.shape), joint.reshape(-1))
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


@pytest.mark.parametrize("method", ["sequential", "block", "srs"])
def test_remote_denoiser_equals_local_in_float64(server, method):
    model = fr.diffusion_model(server.url, "gaussian_mixture", shape=(2,), dtype="FP64")
    schedule = fastspec.schedules.ve(40, 80.0, 0.002)
    remote = fastspec.sample(model, n_samples=50, method=method, seed=3, schedule=schedule)
    local = fastspec.sample(_gaussian_mixture(), n_samples=50, method=method, seed=3,
                            schedule=schedule)
    np.testing.assert_array_equal(remote.samples, local.samples)


def test_remote_denoiser_in_float32_is_the_rounded_denoiser(server):
    model = fr.diffusion_model(server.url, "gaussian_mixture", shape=2)
    z = np.random.default_rng(0).normal(size=(5, 2)) * 3
    sigma = np.linspace(0.1, 10, 5)
    got = model.denoise(z, sigma)
    assert got.dtype == np.float32 and got.shape == (5, 2)
    want = _gaussian_mixture().denoise(z.astype(np.float32).astype(np.float64),
                                       sigma.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_positions_answer_equals_dense_at_those_positions(server, markov):
    rng = np.random.default_rng(1)
    ctx = np.where(rng.random((7, 6)) < 0.4, rng.integers(0, 3, (7, 6)), -1)
    positions = np.full((7, 3), -1, dtype=np.int64)
    for r in range(7):
        free = rng.permutation(np.flatnonzero(ctx[r] < 0))[:3]
        positions[r, :free.size] = free
    dense = markov.marginals(ctx)
    got = markov.marginals(ctx, positions)
    assert got.shape == (7, 3, 3)
    valid = positions >= 0
    rows = np.nonzero(valid)[0]
    np.testing.assert_array_equal(got[valid], dense[rows, positions[valid]])
    np.testing.assert_allclose(got[~valid], 1 / 3)
    # the same answer the server computes without HTTP
    np.testing.assert_array_equal(got, ar_answer(_markov3(), ctx, positions))


@pytest.mark.parametrize("method", SPECULATIVE_METHODS)
def test_positions_through_the_server_give_the_local_samples(server, method):
    model = fr.ar_model(server.url, "markov3", n=6, q=3, positions=True)
    remote = fastspec.sample(model, n_samples=200, method=method, seed=4)
    local = fastspec.sample(_markov3(), n_samples=200, method=method, seed=4)
    np.testing.assert_array_equal(remote.samples, local.samples)


@pytest.mark.parametrize("max_in_flight", [2, 4, 100])
def test_max_in_flight_gives_the_same_samples(markov, max_in_flight):
    given = np.full((30, 6), -1)
    given[::3, 2] = 1
    kwargs = dict(n_samples=30, method="block", seed=11, given=given)
    one = fr.sample(markov, max_in_flight=1, **kwargs)
    many = fr.sample(markov, max_in_flight=max_in_flight, **kwargs)
    for name in ("samples", "orders", "log_prob"):
        np.testing.assert_array_equal(getattr(many, name), getattr(one, name))
    np.testing.assert_array_equal(many.stats.rows_per_sample, one.stats.rows_per_sample)
    # the groups' positions asked add up to the one call's (fastspec.cluster._combine)
    np.testing.assert_array_equal(many.stats.positions_per_sample, one.stats.positions_per_sample)
    assert many.stats.positions == one.stats.positions > 0
    assert (many.samples[::3, 2] == 1).all()


def test_max_in_flight_checks_its_arguments(markov):
    with pytest.raises(ValueError, match="max_in_flight"):
        fr.sample(markov, n_samples=2, max_in_flight=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        fr.sample(markov, n_samples=2, max_in_flight=2, bogus=1)


def test_wrong_shape_names_url_model_and_round(server):
    model = fr.ar_model(server.url, "markov3", n=6, q=4)
    with pytest.raises(fr.RemoteError) as info:
        fastspec.sample(model, seed=0)
    text = _error_text(info.value)
    for part in (server.url, "'markov3'", "shape [1, 6, 3]", "expected [1, 6, 4]", "round 0"):
        assert part in text, text


def test_unknown_model_is_a_clear_404(server):
    model = fr.ar_model(server.url, "no_such_model", n=6, q=3)
    with pytest.raises(fr.RemoteError, match="HTTP 404.*no_such_model"):
        fastspec.sample(model, seed=0)


def test_server_down_fails_fast_and_clearly():
    from fastspec.remote.server import free_port
    url = f"127.0.0.1:{free_port()}"
    model = fr.ar_model(url, "markov3", n=6, q=3, timeout=2.0, retries=2, backoff=0.01)
    t = time.perf_counter()
    with pytest.raises(fr.RemoteError) as info:
        fastspec.sample(model, seed=0)
    assert time.perf_counter() - t < 2.0
    text = _error_text(info.value)
    assert url in text and "after 3 attempts" in text and "round 0" in text


def _mocked(model, handler):
    endpoint = model.marginals.endpoint
    endpoint._client.close()
    endpoint._client = httpx.Client(transport=httpx.MockTransport(handler), timeout=1.0)
    return endpoint


def _answer(array, datatype):
    header = (b'{"model_name": "m", "outputs": [{"name": "marginals", "datatype": "'
              + datatype.encode() + b'", "shape": ' + str(list(array.shape)).encode()
              + b', "parameters": {"binary_data_size": ' + str(array.nbytes).encode() + b'}}]}')
    return httpx.Response(200, content=header + array.tobytes(),
                          headers={"Inference-Header-Content-Length": str(len(header))})


def test_wrong_dtype_is_refused():
    model = fr.ar_model("127.0.0.1:9", "m", n=6, q=3)
    _mocked(model, lambda request: _answer(np.zeros((1, 6, 3), np.int64), "INT64"))
    with pytest.raises(fr.RemoteError, match="datatype INT64; expected FP32 or FP64"):
        fastspec.sample(model, seed=0)


def test_503_is_retried_a_bounded_number_of_times():
    seen = []

    def busy_twice(request):
        seen.append(request)
        if len(seen) <= 2:
            return httpx.Response(503, text="busy")
        return _answer(np.full((1, 6, 3), 1 / 3), "FP64")

    model = fr.ar_model("127.0.0.1:9", "m", n=6, q=3, retries=3, backoff=0.001)
    _mocked(model, busy_twice)
    assert model.marginals(np.full((1, 6), -1)).shape == (1, 6, 3)
    assert len(seen) == 3
    seen.clear()
    model = fr.ar_model("127.0.0.1:9", "m", n=6, q=3, retries=1, backoff=0.001)
    _mocked(model, lambda request: seen.append(request) or httpx.Response(503, text="busy"))
    with pytest.raises(fr.RemoteError, match="HTTP 503"):
        model.marginals(np.full((1, 6), -1))
    assert len(seen) == 2


def test_request_carries_binary_tensors():
    ctx = np.arange(12, dtype=np.int64).reshape(2, 6)
    body, headers = encode_request([("context", ctx)], ["marginals"])
    n = int(headers["Inference-Header-Content-Length"])
    assert np.array_equal(np.frombuffer(body[n:], dtype="<i8").reshape(2, 6), ctx)
    assert b'"binary_data_size": 96' in body[:n]


def _post(server, body, headers):
    return httpx.post(f"http://{server.url}/v2/models/markov3/infer", content=body,
                      headers=headers, timeout=20)


def test_server_reads_binary_json_and_truncated_requests(server):
    # Binary inputs are read as arrays (server.BinaryDataPlane), JSON data still goes
    # through KServe's own parser, and a body shorter than its header says is a 400.
    ctx = np.array([[0, -1, 2, -1, -1, 1]], dtype=np.int64)
    expected = ar_answer(_markov3(), ctx)
    body, headers = encode_request([("context", ctx)], ["marginals"])
    r = _post(server, body, headers)
    got = fr.protocol.decode_response(r.content, r.headers)["marginals"][0]
    assert np.array_equal(got, expected)
    as_json = {"inputs": [{"name": "context", "shape": [1, 6], "datatype": "INT64",
                           "data": ctx.ravel().tolist()}]}
    r = httpx.post(f"http://{server.url}/v2/models/markov3/infer", json=as_json, timeout=20)
    assert r.status_code == 200
    got = fr.protocol.decode_response(r.content, r.headers)["marginals"][0]
    assert np.array_equal(got, expected)
    r = _post(server, body[:-8], headers)
    assert r.status_code == 400 and "past the end of the request" in r.text, r.text


def test_slow_and_killed_server_give_clear_errors_within_the_timeout(server):
    slow = start_server(["markov3"], delay=5.0, timeout=60)
    try:
        impatient = fr.ar_model(slow.url, "markov3", n=6, q=3, timeout=0.5)
        t = time.perf_counter()
        with pytest.raises(fr.RemoteError, match="no answer within the timeout of 0.5 s"):
            fastspec.sample(impatient, seed=0)
        assert time.perf_counter() - t < 2.0
        model = fr.ar_model(slow.url, "markov3", n=6, q=3, timeout=10.0, backoff=0.01)
        threading.Timer(0.5, slow.kill).start()
        t = time.perf_counter()
        with pytest.raises(fr.RemoteError) as info:
            fastspec.sample(model, seed=0)
        assert time.perf_counter() - t < 5.0       # the answer would have come after 5 s
        text = _error_text(info.value)
        assert slow.url in text and "'markov3'" in text and "round 0" in text, text
    finally:
        slow.stop()
    # nothing else broke: the module's server still answers
    other = fr.ar_model(server.url, "markov3", n=6, q=3)
    assert fastspec.sample(other, seed=0).samples.shape == (1, 6)


def test_unknown_model_name_stops_the_server_with_a_message():
    with pytest.raises(RuntimeError, match="unknown model 'nope'"):
        start_server(["nope"], timeout=30)


def test_server_keeps_its_freed_heap_on_glibc(monkeypatch):
    import ctypes
    import platform
    assert keep_freed_heap() is (platform.libc_ver()[0] == "glibc")

    class NoMallopt:                     # a C library without mallopt (musl, macOS)
        def __init__(self, name):
            pass
    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert keep_freed_heap() is False


def test_import_fastspec_remote_imports_no_client_or_server_library():
    import subprocess
    import sys
    code = ("import fastspec, fastspec.remote, fastspec.remote.server, sys; "
            "loaded = [m for m in ('httpx', 'kserve', 'fastapi') if m in sys.modules]; "
            "assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_bench_table_and_speedups_from_rows():
    from fastspec.bench import remote as bench_remote
    base = dict(model="digits_ar", n_samples=1, positions=False, delay_ms=20, rounds=9,
                wall_over_round_trips=1.01, samples_per_second=1.0)
    rows = [dict(base, method="sequential", max_in_flight=1, seconds=2.0),
            dict(base, method="block", max_in_flight=1, seconds=0.25),
            dict(base, method="block", max_in_flight=4, seconds=0.125)]
    bench_remote._speedups(rows)
    assert rows[1]["speedup_vs_sequential"] == 8.0
    assert rows[2]["speedup_vs_in_flight_1"] == 2.0
    text = bench_remote.table(rows)
    assert "| digits_ar | 1 | no | 20 | 2.00 | 0.25 | 9 | 8.0x | 1.01 |" in text
