"""The pretrained models: loading, numpy forward passes (against torch), and exact sampling.

The two-sample tests compare ``method="block"`` with ``method="sequential"`` on each
shipped model (energy distance, permutation p-value, fixed seeds). Each has a
negative control that must be rejected: samples of another law of the same kind of
data (the EM mixture of the digits; a Gaussian with the samples' own mean and
covariance; text whose free characters are drawn independently from their
first-round marginals, i.e. unverified drafts).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastspec
from fastspec.models import pretrained
from twosample import energy_pvalue

N_PERMUTATIONS = 999
#: The smallest p-value of the permutation test: the observed statistic beats all 999
#: relabellings. A positive test fails only there (a 0.1% false alarm rate under the
#: null); a negative control must get there.
P_MIN = 1.0 / (1 + N_PERMUTATIONS)


@pytest.fixture(scope="module")
def digits_ar():
    return pretrained.digits_ar()


@pytest.fixture(scope="module")
def denoiser():
    return pretrained.digits_denoiser()


@pytest.fixture(scope="module")
def text_model():
    return pretrained.text_mlm()


# -- loading ---------------------------------------------------------------------------------

def test_importing_fastspec_loads_no_weights_and_no_torch():
    code = ("import sys, fastspec, fastspec.models\n"
            "from fastspec.models import pretrained\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert pretrained.load_weights.cache_info().currsize == 0, 'weights were loaded'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_weights_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        pretrained.load_weights("digits")


def test_weight_files_are_small():
    folder = Path(pretrained.__file__).parent / "weights"
    assert sum((folder / f).stat().st_size for f in pretrained.WEIGHT_FILES.values()) < 8e6


# -- forward passes ---------------------------------------------------------------------------

def _random_contexts(rng, K, n, q, free_share):
    ctx = rng.integers(0, q, size=(K, n))
    ctx[rng.random((K, n)) < free_share] = -1
    return ctx


@pytest.mark.parametrize("name", ["digits_ar", "text_model"])
def test_ar_marginals_are_valid_and_depend_on_the_context(name, request):
    model = request.getfixturevalue(name)
    rng = np.random.default_rng(0)
    ctx = _random_contexts(rng, 40, model.n, model.q, 0.6)
    ctx[0] = -1
    probs = model.query(ctx)          # raises OracleError on an invalid row
    assert probs.shape == (40, model.n, model.q)
    assert np.allclose(probs.sum(axis=2), 1.0)
    assert np.abs(probs[1] - probs[2]).max() > 0.05


@pytest.mark.parametrize("name", ["digits_ar", "text_model"])
def test_listed_positions_are_the_dense_marginals_there(name, request):
    # The positions protocol computes less (text_mlm: the last layer for the listed
    # positions' queries only; digits_ar: the head's columns of those positions), so equal
    # up to float32 rounding; padding (-1) may sit anywhere after the listed ones.
    model = request.getfixturevalue(name)
    rng = np.random.default_rng(1)
    ctx = _random_contexts(rng, 9, model.n, model.q, 0.5)
    positions = np.stack([rng.permutation(model.n)[:12] for _ in range(9)])
    positions[:3, 7:] = -1
    got = model.marginals(ctx, positions)
    dense = np.take_along_axis(model.marginals(ctx), np.maximum(positions, 0)[:, :, None], 1)
    listed = positions >= 0
    np.testing.assert_allclose(got[listed], dense[listed], rtol=0, atol=1e-5)
    assert np.abs(got[listed][1:] - dense[listed][:-1]).max() > 0.05     # control: misaligned


def test_ar_forward_rejects_bad_contexts(digits_ar):
    with pytest.raises(ValueError, match="ctx entries must be -1"):
        digits_ar.logits(np.full((2, 64), 4))
    with pytest.raises(ValueError, match=r"ctx must be an int array \(K, n=64\)"):
        digits_ar.logits(np.zeros((2, 63), dtype=np.int64))


def test_denoiser_is_finite_with_the_right_limits(denoiser):
    rng = np.random.default_rng(0)
    sigma = np.geomspace(0.002, 300.0, 40)
    x = rng.uniform(-1.0, 1.0, size=(40, 64))
    z = x + sigma[:, None] * rng.normal(size=(40, 64))
    out = denoiser.query(z, sigma)    # raises OracleError on non-finite values
    assert out.shape == (40, 64)
    # At the smallest sigma D(z) is z up to sigma; at the largest it is the data mean.
    assert np.abs(out[0] - z[0]).max() < 0.01
    assert np.abs(out[-1] - denoiser.mean).max() < 0.05
    assert denoiser.sigma_range[0] <= 0.002 and denoiser.sigma_range[1] >= 160.0


def test_text_encode_decode_round_trip(text_model):
    text = pretrained.normalise_text("The \u201cassert\u201d statement:\n   x = 1")
    assert text_model.decode(text_model.encode(text)) == text
    assert text_model.decode([-1, text_model.encode("a")[0]]) == "_a"
    with pytest.raises(ValueError, match="outside the vocabulary, first '\u00e9'"):
        text_model.encode("caf\u00e9")


@pytest.mark.parametrize("name", ["digits_ar", "text_mlm", "digits_denoiser"])
def test_numpy_forward_matches_torch(name):
    torch = pytest.importorskip("torch")
    from fastspec.train.nets import from_weights
    arrays, config = pretrained.load_weights(name)
    module = from_weights(arrays, config)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        if name == "digits_denoiser":
            model = pretrained.digits_denoiser()
            sigma = np.geomspace(0.002, 300.0, 64)
            z = rng.uniform(-1, 1, size=(64, 64)) + sigma[:, None] * rng.normal(size=(64, 64))
            ours = model.denoise(z, sigma)
            ref = module(torch.from_numpy(z).float(), torch.from_numpy(sigma).float())
            ref = ref.double().numpy()
        else:
            model = pretrained.digits_ar() if name == "digits_ar" else pretrained.text_mlm()
            ctx = _random_contexts(rng, 64, model.n, model.q, 0.5)
            ours = model.logits(ctx)
            ref = module(torch.from_numpy(ctx)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


# -- block samples have the sequential law ---------------------------------------------------

def _standardised(a, b):
    """Features of both samples scaled by the pooled mean and sd (symmetric in a and b,
    so the permutation test stays valid)."""
    pooled = np.concatenate([a, b])
    mu, sd = pooled.mean(axis=0), pooled.std(axis=0) + 1e-12
    return (a - mu) / sd, (b - mu) / sd


@pytest.fixture(scope="module")
def digits_sequential(digits_ar):
    return fastspec.sample(digits_ar, n_samples=300, method="sequential", seed=1).samples


def _image_features(x):
    """Per 8x8 image with pixels in [-1, 1]: background pixels (< -0.9), ink pixels
    (> 0.5) and total variation. On raw pixel vectors the energy test has little power
    against the negative controls at these sample sizes (measured while writing these
    tests); on these three features it rejects them from 50 samples."""
    img = x.reshape(-1, 8, 8)
    tv = (np.abs(np.diff(img, axis=1)).sum(axis=(1, 2))
          + np.abs(np.diff(img, axis=2)).sum(axis=(1, 2)))
    return np.stack([(x < -0.9).sum(axis=1), (x > 0.5).sum(axis=1), tv], axis=1)


def _levels_features(levels, q):
    return _image_features(levels / (q - 1.0) * 2.0 - 1.0)


def test_digits_ar_block_matches_sequential(digits_ar, digits_sequential):
    res = fastspec.sample(digits_ar, n_samples=300, method="block", seed=2)
    assert res.stats.mean_rounds < 0.5 * digits_ar.n      # it did speculate
    a, b = _standardised(_levels_features(digits_sequential, digits_ar.q),
                         _levels_features(res.samples, digits_ar.q))
    assert energy_pvalue(a, b, N_PERMUTATIONS) > P_MIN


def test_digits_ar_negative_control_mixture_is_rejected(digits_ar, digits_sequential):
    other = fastspec.sample(pretrained.digits_mixture(), n_samples=300, method="sequential",
                            seed=3).samples
    a, b = _standardised(_levels_features(digits_sequential, digits_ar.q),
                         _levels_features(other, digits_ar.q))
    assert energy_pvalue(a, b, N_PERMUTATIONS) <= P_MIN


DIFFUSION_SCHEDULE = dict(n_steps=100, sigma_max=80.0, sigma_min=0.002)


@pytest.fixture(scope="module")
def denoiser_sequential(denoiser):
    sched = fastspec.schedules.ve(**DIFFUSION_SCHEDULE)
    return fastspec.sample(denoiser, schedule=sched, n_samples=300, method="sequential",
                           seed=1).samples


def test_digits_denoiser_block_matches_sequential(denoiser, denoiser_sequential):
    sched = fastspec.schedules.ve(**DIFFUSION_SCHEDULE)
    res = fastspec.sample(denoiser, schedule=sched, n_samples=300, method="block", seed=2)
    assert res.stats.mean_rounds < 0.5 * sched.n_steps
    a, b = _standardised(_image_features(denoiser_sequential), _image_features(res.samples))
    assert energy_pvalue(a, b, N_PERMUTATIONS) > P_MIN


def test_digits_denoiser_negative_control_gaussian_is_rejected(denoiser_sequential):
    # Same mean and covariance as the sequential samples: only higher moments differ.
    rng = np.random.default_rng(3)
    other = rng.multivariate_normal(denoiser_sequential.mean(axis=0),
                                    np.cov(denoiser_sequential, rowvar=False), size=300)
    a, b = _standardised(_image_features(denoiser_sequential), _image_features(other))
    assert energy_pvalue(a, b, N_PERMUTATIONS) <= P_MIN


TEXT_FREE = np.arange(24, 40)      # 16 free characters in the middle of the window
TEXT_SAMPLES = 150


@pytest.fixture(scope="module")
def text_setup(text_model):
    from fastspec.train import data
    split = data.text_split(data.python_doc_text())
    window = text_model.encode(data.text_windows(split["test"], text_model.n, text_model.n)[0])
    given = np.asarray(window, dtype=np.int64).copy()
    given[TEXT_FREE] = -1                  # infill the middle of a held-out window
    train = np.concatenate([text_model.encode(c) for c in split["train"]])
    q = text_model.q
    pair = np.bincount(train[:-1] * q + train[1:], minlength=q * q).reshape(q, q) + 1.0
    log_bigram = np.log(pair / pair.sum(axis=1, keepdims=True))
    span = np.arange(TEXT_FREE[0] - 1, TEXT_FREE[-1] + 2)       # free part and its borders

    def features(samples):
        """Bigram log-likelihood of the filled span and its count of spaces."""
        full = samples[:, span]
        ll = log_bigram[full[:, :-1], full[:, 1:]].sum(axis=1)
        spaces = (samples[:, TEXT_FREE] == text_model.encode(" ")[0]).sum(axis=1)
        return np.stack([ll, spaces], axis=1)

    sequential = fastspec.sample(text_model, n_samples=TEXT_SAMPLES, method="sequential", seed=1,
                                 given=given)
    assert np.all(sequential.samples[:, given >= 0] == given[given >= 0])
    return given, features, features(sequential.samples)


def test_text_mlm_block_matches_sequential(text_model, text_setup):
    given, features, seq = text_setup
    res = fastspec.sample(text_model, n_samples=TEXT_SAMPLES, method="block", seed=2, given=given)
    assert res.stats.mean_rounds < 0.75 * TEXT_FREE.size
    assert energy_pvalue(*_standardised(seq, features(res.samples)), N_PERMUTATIONS) > P_MIN


def test_text_mlm_negative_control_unverified_drafts_is_rejected(text_model, text_setup):
    given, features, seq = text_setup
    marg = text_model.marginals(given[None])[0, TEXT_FREE]          # (n_free, q)
    u = np.random.default_rng(3).random((TEXT_SAMPLES, TEXT_FREE.size, 1))
    drafts = np.repeat(given[None], TEXT_SAMPLES, axis=0)
    drafts[:, TEXT_FREE] = np.minimum((u > np.cumsum(marg, axis=1)[None]).sum(axis=2),
                                      text_model.q - 1)
    assert energy_pvalue(*_standardised(seq, features(drafts)), N_PERMUTATIONS) <= P_MIN


# -- data splits, benchmark and demo ---------------------------------------------------------

def test_splits_are_fixed_and_disjoint():
    from fastspec.train import data
    text_parts = data.text_split(data.python_doc_text())
    assert sum(len(v) for v in text_parts.values()) == len(data.text_chunks(data.python_doc_text()))
    assert min(len(v) for v in text_parts.values()) > 0
    pytest.importorskip("sklearn")
    split = data.digits_split()
    assert [len(split[k]) for k in ("train", "val", "test")] == [1258, 180, 359]
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(1797))
    assert all(np.array_equal(split[k], v) for k, v in data.digits_split().items())


def test_chain_log_prob_is_the_exact_log_prob_for_a_consistent_model():
    from fastspec.bench.pretrained import chain_log_prob
    mix = pretrained.digits_mixture()
    rng = np.random.default_rng(0)
    x = fastspec.sample(mix, n_samples=5, method="sequential", seed=0).samples
    orders = np.array([rng.permutation(64) for _ in range(5)])
    np.testing.assert_allclose(chain_log_prob(mix, x, orders), mix.log_probability(x), rtol=1e-9)


def test_bench_rounds_and_acceptance_write_csv(tmp_path):
    import csv
    from fastspec.bench import pretrained as study
    study.rounds(out=str(tmp_path), n_seeds=1, batch_sizes=(1,), methods=("sequential", "block"),
                 models=("digits_ar",))
    rows = list(csv.DictReader((tmp_path / "pretrained_rounds.csv").read_text().splitlines()))
    assert {r["method"] for r in rows} == {"sequential", "block"}
    assert [float(r["rounds_per_sample"]) for r in rows if r["method"] == "sequential"] == [64.0]
    study.acceptance(out=str(tmp_path), n_seeds=1, methods=("block",), models=("digits_ar",),
                     ar_sizes=(4, 16))
    rows = list(csv.DictReader((tmp_path / "pretrained_acceptance.csv").read_text().splitlines()))
    assert [int(r["block_size"]) for r in rows] == [4, 16]
    assert all(0.0 <= float(r["mean_accepted"]) <= int(r["block_size"]) for r in rows)


def test_demo_commands(tmp_path, capsys):
    from fastspec import demo
    demo.main(["--n", "64", "--samples", "2"])
    assert "rounds saved: 64 sequential rounds per sample" in capsys.readouterr().out
    demo.main(["text", "--samples", "2", "--out", str(tmp_path / "text.md")])
    out = capsys.readouterr().out
    assert "sequential: 60" in out and "continuing 'The '" in out   # 4 of 64 given
    for line in out.splitlines():
        if "rounds]" in line:
            assert line.split("] ", 1)[1].startswith("The ")
    lines = (tmp_path / "text.md").read_text().splitlines()
    assert sum(line.startswith("| ") and "`" in line for line in lines) == 2
    pytest.importorskip("matplotlib")
    demo.main(["digits", "--samples", "4", "--steps", "20", "--out", str(tmp_path / "d.png")])
    assert "sequential: 20" in capsys.readouterr().out
    assert (tmp_path / "d.png").stat().st_size > 1000
