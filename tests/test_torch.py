"""``fastspec.torch``: PyTorch masked LMs and diffusion networks as exact fastspec models.

Laws: a masked LM built from an enumerated table reproduces the table for every
method (chi-square, 20,000 samples, fixed seeds), and exact eps- and
v-predictors of Gaussian data reproduce the closed-form output law of ``ddpm``
chains for every method; each has a negative control that must fail the same
test. Formulas: the x0 conversions, the sigma -> timestep map and the call
conventions are checked to float precision.
"""

import types

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

import fastspec  # noqa: E402
from fastspec import schedules  # noqa: E402
from fastspec.models import Gaussian, MarkovChain, TableModel  # noqa: E402
from fastspec.torch import denoiser, masked_lm  # noqa: E402
from lawcheck import chisquare_pvalue, empirical_counts  # noqa: E402
from fastspec._rules import CONCRETE_METHODS  # noqa: E402

# torch's own thread pool would compete with numba's for the same cores
torch.set_num_threads(1)

N_SAMPLES = 20_000
METHODS = CONCRETE_METHODS
PASS_P = 1e-3   # fixed seeds: a correct sampler fails with probability about 1e-3
FAIL_P = 1e-6


# -- a masked LM whose conditionals are an enumerated table ----------------------------------------

VOCAB = 9
SYMBOLS = (6, 2, 4)        # token ids of fastspec symbols 0, 1, 2
MASK_ID = 8
SPECIAL_ID = 0             # a padding / special token with a junk logit


def _markov_table():
    # q^n = 729; a sticky 3-state chain with a non-stationary start (as test_ar_exactness)
    chain = MarkovChain([[6.0, 1.0, 0.5], [1.0, 6.0, 1.0], [0.5, 1.0, 6.0]],
                        initial=[0.6, 0.3, 0.1], n=6)
    return TableModel.from_model(chain)


class TableMaskedLM(torch.nn.Module):
    """Token ids -> logits (K, n, VOCAB) whose softmax over SYMBOLS is the table's conditional.

    Every other id gets a junk logit, large on the mask and special tokens, so
    an adapter that let them into the softmax would be far off. Returns a
    Hugging Face style object with ``.logits``.
    """

    def __init__(self, table, symbols=SYMBOLS, mask_id=MASK_ID, hf_output=True):
        super().__init__()
        self.table = table
        lookup = np.full(VOCAB, -2, dtype=np.int64)
        lookup[list(symbols)] = np.arange(len(symbols))
        lookup[mask_id] = -1
        self.register_buffer("lookup", torch.as_tensor(lookup))
        junk = np.random.default_rng(3).normal(0.0, 1.0, VOCAB)
        junk[mask_id] += 6.0
        junk[SPECIAL_ID] += 4.0
        self.register_buffer("junk", torch.as_tensor(junk))
        self.symbols = list(symbols)
        self.hf_output = hf_output
        self.calls = []

    def forward(self, ids):
        ctx = self.lookup[ids]
        assert (ctx >= -1).all(), "the adapter wrote an id that is neither a symbol nor the mask"
        self.calls.append((tuple(ids.shape), torch.is_inference_mode_enabled()))
        probs = self.table.marginals(ctx.numpy())
        logits = self.junk.expand(ids.shape + (VOCAB,)).clone()
        # one offset per position: softmax over the symbols ignores it, the junk does not
        logits[..., self.symbols] = torch.as_tensor(np.log(np.maximum(probs, 1e-300))) + 1.5
        return types.SimpleNamespace(logits=logits) if self.hf_output else logits


@pytest.fixture(scope="module")
def table():
    return _markov_table()


def _law_pvalue(model, table, method, seed):
    res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, seed=seed)
    return chisquare_pvalue(empirical_counts(res.samples, table.joint.shape),
                            table.joint.reshape(-1))


@pytest.mark.parametrize("method", METHODS)
def test_masked_lm_matches_the_table(table, method):
    model = masked_lm(TableMaskedLM(table).eval(), n=table.n, q=table.q, mask_id=MASK_ID,
                      symbols=SYMBOLS)
    p = _law_pvalue(model, table, method, seed=2024)
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_wrong_symbol_mapping_fails_the_same_test(table):
    # negative control: symbols 0 and 1 swapped, everything else as above
    swapped = (SYMBOLS[1], SYMBOLS[0], SYMBOLS[2])
    model = masked_lm(TableMaskedLM(table).eval(), n=table.n, q=table.q, mask_id=MASK_ID,
                      symbols=swapped)
    p = _law_pvalue(model, table, "block", seed=2024)
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


def test_junk_logits_would_matter(table):
    """The junk ids hold most of the full-vocabulary mass, so dropping them is tested."""
    module = TableMaskedLM(table).eval()
    ids = torch.full((1, table.n), MASK_ID)
    full = torch.softmax(module(ids).logits.double(), dim=-1)
    assert float(full[..., list(SYMBOLS)].sum(-1).max()) < 0.5


def test_masked_lm_oracle_is_the_table_conditional(table):
    module = TableMaskedLM(table, hf_output=False).eval()
    model = masked_lm(module, n=table.n, q=table.q, mask_id=MASK_ID, symbols=SYMBOLS,
                      max_rows=3)
    assert [c[0][0] for c in module.calls] == [2, 1]     # the determinism probe
    module.calls.clear()
    ctx = np.random.default_rng(0).integers(-1, table.q, size=(10, table.n))
    got = model.marginals(ctx)
    want = table.marginals(ctx)
    free = ctx < 0
    np.testing.assert_allclose(got[free], want[free], rtol=1e-12, atol=1e-15)
    assert got.dtype == np.float64 and got.shape == (10, table.n, table.q)
    # chunks of at most 3 rows, under inference mode, pinned ids written as symbols[x]
    assert [c[0][0] for c in module.calls] == [3, 3, 3, 1]
    assert all(c[1] for c in module.calls)


def test_masked_lm_default_symbols_and_ids_written():
    seen = []

    def module(ids):
        seen.append(ids.clone())
        return torch.zeros(ids.shape + (4,))

    model = masked_lm(module, n=3, q=2, mask_id=3)
    probs = model.marginals(np.array([[-1, 0, 1], [1, -1, -1]]))
    assert len(seen) == 3      # the determinism probe, then the call
    np.testing.assert_array_equal(seen[2].numpy(), [[3, 0, 1], [1, 3, 3]])
    assert seen[2].dtype == torch.long
    free = np.array([[True, False, False], [False, True, True]])
    np.testing.assert_array_equal(probs[free], 0.5)     # pinned rows are left at zero
    np.testing.assert_array_equal(probs[~free], 0.0)


# -- masked LM: argument checks --------------------------------------------------------------------

def _flat(ids):
    return torch.zeros(ids.shape + (VOCAB,))


@pytest.mark.parametrize("kwargs, match", [
    (dict(symbols=(1, 2)), r"symbols must hold q = 3 token ids .* got 2: \[1, 2\]"),
    (dict(symbols=(1, 2, 1)), r"symbols must be distinct: token id 1 appears at positions \[0, 2\]"),
    (dict(symbols=(1, 2, 8)), r"mask_id = 8 is also symbols\[2\]"),
    (dict(symbols=(1.0, 2.0, 3.0)), r"symbols must be a 1-D sequence of int token ids"),
    (dict(symbols=(1, -2, 3)), r"symbols\[1\] = -2"),
    (dict(mask_id=-1), r"mask_id must be an int >= 0, got -1"),
    (dict(q=1), r"q must be an int >= 2, got 1"),
    (dict(n=0), r"n must be an int >= 1, got 0"),
    (dict(max_rows=0), r"max_rows must be None or an int >= 1, got 0"),
    (dict(device="nowhere"), r"device must name a torch device .* 'nowhere'"),
])
def test_masked_lm_argument_errors(kwargs, match):
    args = dict(n=4, q=3, mask_id=MASK_ID)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        masked_lm(_flat, **args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask_id=True), r"mask_id must be an int >= 0, got True"),
    (dict(max_rows=2.0), r"max_rows must be None or an int >= 1, got 2.0"),
])
def test_masked_lm_argument_type_errors(kwargs, match):
    args = dict(n=4, q=3, mask_id=MASK_ID)
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        masked_lm(_flat, **args)


def test_masked_lm_errors_at_the_probe_call():
    # the module is called once when the model is built, so these show up there
    with pytest.raises(ValueError, match=r"token ids < V = 9 .* got 12 \(symbol 2\)"):
        masked_lm(_flat, n=4, q=3, mask_id=0, symbols=(1, 2, 12))
    with pytest.raises(fastspec.OracleError, match=r"logits of shape \(\d+, 4\).*\(K, L, V\)"):
        masked_lm(lambda ids: torch.zeros(ids.shape), n=4, q=3, mask_id=8)
    with pytest.raises(fastspec.OracleError, match=r"returned dict; expected logits"):
        masked_lm(lambda ids: {"logits": 1}, n=4, q=3, mask_id=8)


def test_training_mode_is_refused():
    net = torch.nn.Sequential(torch.nn.Dropout(0.1))
    with pytest.raises(ValueError, match=r"training mode .* module.eval\(\)"):
        masked_lm(net, n=4, q=3, mask_id=8)
    net.eval()
    net[0].train()
    with pytest.raises(ValueError, match=r"sub-module '0' \(Dropout\) of module is in training mode"):
        denoiser(net, dim=2, prediction="x0")


def test_module_exceptions_pass_through():
    class Boom(Exception):
        pass

    def module(ids):
        raise Boom("from the user's module")

    with pytest.raises(Boom, match="from the user's module"):
        masked_lm(module, n=4, q=3, mask_id=8)

    calls = []

    def later(ids):            # fails after the construction probe
        calls.append(1)
        if len(calls) > 2:
            raise Boom("from the user's module")
        return torch.zeros(ids.shape + (VOCAB,))

    model = masked_lm(later, n=4, q=3, mask_id=8)
    with pytest.raises(Boom, match="from the user's module"):
        fastspec.sample(model, n_samples=2, seed=0)


# -- diffusion: exact predictors of Gaussian data ---------------------------------------------------

MEAN = np.array([2.0, -1.0, 0.5])
STD = np.array([0.3, 0.5, 1.0])
GAUSSIAN = Gaussian(MEAN, STD)
DIRECTIONS = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0], [1.0, -2.0, 0.5]])


def _linear_abar(n_train=1000, beta_start=1e-4, beta_end=0.02):
    # DDPM's linear betas (Ho et al. 2020), as diffusers' DDPMScheduler builds them
    return np.cumprod(1.0 - np.linspace(beta_start, beta_end, n_train))


ABAR = _linear_abar()


class ExactPredictor(torch.nn.Module):
    """The exact eps or v prediction at ``(x_t, t)`` for data N(MEAN, diag(STD**2)).

    ``t`` may be fractional: its noise level is read off the table by linear
    interpolation of log sigma between the integer timesteps around it.
    """

    def __init__(self, kind, abar=ABAR):
        super().__init__()
        self.kind = kind
        sigmas = np.sqrt((1.0 - abar) / abar)
        self.register_buffer("log_sigmas", torch.as_tensor(np.log(sigmas)))
        self.register_buffer("mean", torch.as_tensor(MEAN))
        self.register_buffer("var", torch.as_tensor(STD ** 2))
        self.timesteps = []

    def forward(self, x_t, t):
        self.timesteps.append(t.clone())
        lo, hi = t.floor().long(), t.ceil().long()
        w = t - lo
        sigma = torch.exp((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi])[:, None]
        abar = 1.0 / (1.0 + sigma ** 2)
        z = x_t / abar.sqrt()                                # = x0 + sigma * eps
        x0 = self.mean + self.var / (self.var + sigma ** 2) * (z - self.mean)
        eps = (z - x0) / sigma
        if self.kind == "eps":
            return eps
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0    # v (diffusers' get_velocity)


def _gaussian_law_pvalue(x, mean, var):
    """Bonferroni-corrected smallest p-value: z-tests of each mean and variance, KS on
    projections."""
    n = x.shape[0]
    z_mean = (x.mean(0) - mean) / np.sqrt(var / n)
    # var of the sample variance of a normal is 2 var^2 / (n - 1)
    z_var = (x.var(0, ddof=1) - var) / (var * np.sqrt(2.0 / (n - 1)))
    ps = list(2 * stats.norm.sf(np.abs(np.concatenate([z_mean, z_var]))))
    for u in DIRECTIONS:
        u = u / np.linalg.norm(u)
        ps.append(stats.kstest(x @ u, "norm", args=(mean @ u, np.sqrt(var @ u ** 2))).pvalue)
    return min(1.0, min(ps) * len(ps))


# 10 strided steps (about 111 timesteps apart): srs on the current engine spends most of
# the test time (measured 12-24 s for 20,000 samples on this shared 2-core machine)
DDPM_10 = schedules.ddpm(ABAR, n_steps=10)


def _chain_pvalue(model, sched, method, seed):
    mean, var = GAUSSIAN.output_law(sched)
    # srs recursion is costly in Python: a block of 2 keeps 20,000 samples cheap (as
    # test_diffusion_exact does)
    res = fastspec.sample(model, schedule=sched, n_samples=N_SAMPLES, method=method, seed=seed,
                          block_size=2 if method == "srs" else "auto")
    assert res.samples.shape == (N_SAMPLES, 3)
    return _gaussian_law_pvalue(res.samples, mean, var)


@pytest.mark.parametrize("kind", ["eps", "v"])
@pytest.mark.parametrize("method", METHODS)
def test_exact_predictor_matches_the_ddpm_output_law(kind, method):
    model = denoiser(ExactPredictor(kind).eval(), dim=3, prediction=kind, alphas_cumprod=ABAR)
    p = _chain_pvalue(model, DDPM_10, method, seed=11)
    assert p > PASS_P, f"{kind}, {method}: p = {p:.3g}"


@pytest.mark.parametrize("kind, wrong", [
    # eps: the VP input x_t taken for z (the 1 / sqrt(1 + sigma^2) scaling forgotten)
    ("eps", lambda z, sigma, eps: z / np.sqrt(1 + sigma[:, None] ** 2) - sigma[:, None] * eps),
    # v: the sign of the velocity term flipped
    ("v", lambda z, sigma, v: z / (1 + sigma[:, None] ** 2)
     + sigma[:, None] / np.sqrt(1 + sigma[:, None] ** 2) * v),
])
def test_wrong_conversion_fails_the_same_test(monkeypatch, kind, wrong):
    import fastspec.torch as ft
    monkeypatch.setattr(ft, "_x0_from_eps" if kind == "eps" else "_x0_from_v", wrong)
    model = denoiser(ExactPredictor(kind).eval(), dim=3, prediction=kind, alphas_cumprod=ABAR)
    p = _chain_pvalue(model, DDPM_10, "block", seed=11)
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


def test_fractional_timesteps_keep_the_exact_law():
    """A ve chain inside the trained range queries fractional t; the law still holds."""
    sched = schedules.ve(20, sigma_max=50.0, sigma_min=0.05)
    module = ExactPredictor("v").eval()
    model = denoiser(module, dim=3, prediction="v", alphas_cumprod=ABAR)
    p = _chain_pvalue(model, sched, "block", seed=12)
    assert p > PASS_P, f"p = {p:.3g}"
    t = torch.cat(module.timesteps).numpy()
    assert np.mean(t != np.round(t)) > 0.9


def test_ddpm_chain_queries_only_trained_timesteps():
    module = ExactPredictor("eps").eval()
    model = denoiser(module, dim=3, prediction="eps", alphas_cumprod=ABAR)
    module.timesteps.clear()                     # the construction probe
    fastspec.sample(model, schedule=schedules.ddpm(ABAR, n_steps=7), n_samples=2,
                    method="sequential", seed=0)
    seen = [float(t[0]) for t in module.timesteps]
    assert seen == [999.0, 832.0, 666.0, 500.0, 333.0, 166.0, 0.0]
    module.timesteps.clear()
    fastspec.sample(model, schedule=DDPM_10, n_samples=50, method="block", seed=0)
    seen = np.unique(torch.cat(module.timesteps).numpy())
    assert set(seen) <= set(schedules._ddpm_timesteps(1000, 10).astype(float))


# -- diffusion: formulas to float precision --------------------------------------------------------

class Recorder(torch.nn.Module):
    """Returns a fixed answer and records what it was called with (float64 buffer)."""

    def __init__(self, answer):
        super().__init__()
        self.register_buffer("answer", torch.as_tensor(answer, dtype=torch.float64))
        self.inputs = []

    def forward(self, x, cond):
        self.inputs.append((x.clone(), cond.clone(), torch.is_inference_mode_enabled()))
        return self.answer[:x.shape[0]]


def _noised(seed=0, k=64):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, len(ABAR), size=k)
    t[:2] = [0, len(ABAR) - 1]
    x0 = rng.normal(size=(k, 3))
    eps = rng.normal(size=(k, 3))
    ab = ABAR[t][:, None]
    x_t = np.sqrt(ab) * x0 + np.sqrt(1 - ab) * eps     # diffusers' add_noise
    sigma = np.sqrt((1.0 - ABAR[t]) / ABAR[t])
    return t, x0, eps, x_t, x_t / np.sqrt(ab), sigma


def test_x0_from_eps_and_v_to_float_precision():
    t, x0, eps, x_t, z, sigma = _noised()
    ab = ABAR[t][:, None]
    v = np.sqrt(ab) * eps - np.sqrt(1 - ab) * x0      # diffusers' get_velocity
    for kind, answer in (("eps", eps), ("v", v)):
        module = Recorder(answer).eval()
        model = denoiser(module, dim=3, prediction=kind, alphas_cumprod=ABAR)
        module.inputs.clear()                    # the construction probe
        got = model.denoise(z, sigma)
        # measured worst absolute error 1.8e-14 (z reaches |x| * 157 at t = 999)
        np.testing.assert_allclose(got, x0, rtol=0, atol=1e-12, err_msg=kind)
        x_in, t_in, inference = module.inputs[0]
        np.testing.assert_allclose(x_in.numpy(), x_t, rtol=1e-14, atol=1e-14)
        np.testing.assert_array_equal(t_in.numpy(), t.astype(np.float64))
        assert x_in.dtype == t_in.dtype == torch.float64 and inference


def test_sigma_to_t_at_fractional_points():
    rng = np.random.default_rng(1)
    i = rng.integers(0, len(ABAR) - 1, size=200)
    w = rng.uniform(0, 1, size=200)
    log_sigmas = np.log(np.sqrt((1.0 - ABAR) / ABAR))
    sigma = np.exp((1 - w) * log_sigmas[i] + w * log_sigmas[i + 1])
    module = Recorder(np.zeros((200, 3))).eval()
    model = denoiser(module, dim=3, prediction="eps", alphas_cumprod=ABAR)
    module.inputs.clear()
    model.denoise(np.ones((200, 3)), sigma)
    x_in, t_in, _ = module.inputs[0]
    # measured worst error 1.1e-13 timesteps
    np.testing.assert_allclose(t_in.numpy(), i + w, rtol=0, atol=1e-11)
    np.testing.assert_allclose(x_in.numpy(), 1 / np.sqrt(1 + sigma[:, None] ** 2) * np.ones(3),
                               rtol=1e-14)


def test_x0_prediction_is_used_unchanged_and_chunked():
    answer = np.random.default_rng(2).normal(size=(7, 3))
    module = Recorder(answer).eval()
    model = denoiser(module, dim=3, prediction="x0", max_rows=3)
    module.inputs.clear()
    z = np.arange(21.0).reshape(7, 3)
    sigma = np.linspace(0.1, 80.0, 7)
    got = model.denoise(z, sigma)
    assert [int(x.shape[0]) for x, _, _ in module.inputs] == [3, 3, 1]
    np.testing.assert_array_equal(torch.cat([x for x, _, _ in module.inputs]).numpy(), z)
    np.testing.assert_array_equal(torch.cat([c for _, c, _ in module.inputs]).numpy(), sigma)
    np.testing.assert_array_equal(got[:3], answer[:3])


def test_module_dtype_decides_the_input_dtype():
    seen = []

    class Half(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float32))

        def forward(self, x, t):
            seen.append((x.dtype, t.dtype, x.device.type))
            return types.SimpleNamespace(sample=x * self.scale)    # diffusers-style output

    model = denoiser(Half().eval(), dim=3, prediction="eps", alphas_cumprod=ABAR, device="cpu")
    seen.clear()
    out = model.denoise(np.ones((2, 3)), np.full(2, 1.0))
    assert seen == [(torch.float32, torch.float32, "cpu")]
    assert out.dtype == np.float64


def test_ddpm_accepts_a_torch_table():
    abar32 = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    assert schedules.ddpm(abar32, 30) == schedules.ddpm(abar32.numpy(), 30)
    assert schedules.ddpm(abar32.double(), 30) == schedules.ddpm(abar32.double().numpy(), 30)


# -- diffusion: argument and range errors ----------------------------------------------------------

def test_sigma_outside_the_trained_range():
    model = denoiser(ExactPredictor("eps").eval(), dim=3, prediction="eps", alphas_cumprod=ABAR)
    sched = schedules.ve(20, sigma_max=80.0, sigma_min=0.002)     # 0.002 < sigma_0 = 0.01
    with pytest.raises(fastspec.OracleError,
                       match=r"sigma = 0.0098.* outside .* \[0.0100005, 157.407\] \(timesteps 0..999\); "
                             r"sample with fastspec.schedules.ddpm"):
        fastspec.sample(model, schedule=sched, n_samples=2, method="sequential", seed=0)
    with pytest.raises(fastspec.OracleError, match=r"sigma = 200 is outside"):
        model.denoise(np.zeros((1, 3)), np.array([200.0]))
    with pytest.raises(fastspec.OracleError, match=r"sigma = nan is outside"):
        model.denoise(np.zeros((1, 3)), np.array([np.nan]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(prediction="epsilon"), r"prediction must be one of .*'x0', 'eps', 'v'.*, got 'epsilon'"),
    (dict(prediction="eps"), r"prediction='eps' needs alphas_cumprod"),
    (dict(prediction="x0", alphas_cumprod=ABAR), r"drop alphas_cumprod"),
    (dict(prediction="v", alphas_cumprod=ABAR[::-1]), r"strictly decreasing"),
    (dict(prediction="x0", dim=0), r"dim must be an int >= 1, got 0"),
])
def test_denoiser_argument_errors(kwargs, match):
    args = dict(dim=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        denoiser(Recorder(np.zeros((1, 3))).eval(), **args)
    with pytest.raises(TypeError, match=r"max_rows must be None or an int >= 1, got 2.0"):
        denoiser(Recorder(np.zeros((1, 3))).eval(), dim=3, prediction="x0", max_rows=2.0)


def test_denoiser_output_shape_is_checked():
    with pytest.raises(fastspec.OracleError, match=r"returned shape \(2, 2\) for inputs of "
                                                   r"shape \(2, 3\); expected \(K, \*shape\)"):
        denoiser(lambda x, s: x[:, :2], dim=3, prediction="x0")


# -- shapes, wrappers and determinism (issue 17) ---------------------------------------------------

def test_denoiser_on_images_of_any_shape():
    shape = (2, 3, 4)

    def data_gaussian(x, sigma):      # "x0" convention: data ~ N(0, I) in every entry
        assert x.shape[1:] == shape
        return (x / (1 + sigma.view(-1, 1, 1, 1) ** 2),)       # a return_dict=False tuple

    model = denoiser(data_gaussian, shape=shape, prediction="x0")
    assert model.shape == shape and model.dim == 24
    res = fastspec.sample(model, schedule=schedules.ve(30, 20.0, 0.05), n_samples=2000,
                          method="block", seed=0)
    assert res.samples.shape == (2000,) + shape
    # a linear denoiser makes the chain Gaussian: its variance, step by step
    sched = schedules.ve(30, 20.0, 0.05)
    var = sched.init_scale ** 2
    for j in range(sched.n_steps):
        var = (sched.a[j] + sched.b[j] / (sched.s[j] * (1 + sched.sigma[j] ** 2))) ** 2 * var \
            + sched.c[j] ** 2
    flat = res.samples.reshape(2000, -1)
    flat = flat.ravel()                  # every entry is an independent draw of one law
    assert stats.kstest(flat / np.sqrt(var), "norm").pvalue > PASS_P
    assert stats.kstest(flat * 1.2 / np.sqrt(var), "norm").pvalue < FAIL_P   # negative


def test_diffusion_model_shape_argument():
    model = fastspec.DiffusionModel(lambda z, s: z, shape=(3, 2))
    assert model.dim == 6 and repr(model) == "DiffusionModel(shape=(3, 2))"
    assert fastspec.DiffusionModel(lambda z, s: z, dim=4).shape == (4,)
    assert model.query(np.ones((2, 3, 2)), np.ones(2)).shape == (2, 3, 2)
    for kwargs, match in [(dict(), r"give dim .* or shape"),
                          (dict(shape=(3, 0)), r"shape must be a non-empty tuple of ints >= 1"),
                          (dict(dim=5, shape=(2, 2)), r"dim = 5 disagrees with shape")]:
        with pytest.raises(ValueError, match=match):
            fastspec.DiffusionModel(lambda z, s: z, **kwargs)
    with pytest.raises(TypeError, match=r"shape must be a tuple of ints"):
        fastspec.DiffusionModel(lambda z, s: z, shape="abc")
    bad = fastspec.DiffusionModel(lambda z, s: z.reshape(len(z), -1), shape=(3, 2))
    with pytest.raises(fastspec.OracleError, match=r"shape \(2, 6\), expected \(K, \*shape\)"):
        bad.query(np.ones((2, 3, 2)), np.ones(2))


def test_random_denoiser_is_refused_whatever_wraps_it():
    class Net(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(p))

        def forward(self, x, sigma):
            return self.body(x)

    # Seeded: two dropout masks of 3 units agree with probability 0.58^3 = 0.2, and then the
    # probe cannot see the randomness (the unseeded test failed about one run in five).
    torch.manual_seed(3)
    net = Net(0.3).train()
    with pytest.raises(ValueError, match=r"sub-module 'body.1' \(Dropout\) .* training mode"):
        denoiser(net, dim=3, prediction="x0")
    with pytest.raises(ValueError, match=r"different answers to the same input"):
        denoiser(lambda x, s: net(x, s), dim=3, prediction="x0")
    quiet = Net(0.0).train()
    denoiser(quiet, dim=3, prediction="x0")                     # p = 0: accepted
    denoiser(lambda x, s: quiet(x, s), dim=3, prediction="x0")


def test_cuda_without_cuda_is_a_value_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=r"device 'cuda' cannot be used here"):
        denoiser(Recorder(np.zeros((2, 3))).eval(), dim=3, prediction="x0", device="cuda")
    with pytest.raises(ValueError, match=r"device 'cuda' cannot be used here"):
        masked_lm(_flat, n=4, q=3, mask_id=MASK_ID, device="cuda")
