"""diffusers as it runs: ``schedules.from_diffusers`` and ``torch.denoiser`` against the library.

One step: at every timestep of every scheduler configuration, the mean and the
noise scale of fastspec's step (``a y + b D``, ``c``; ``D`` from the adapter given
``scheduler=``) equal ``scheduler.step``'s within 1e-5. The chain: fastspec's
samples and diffusers' own loop (``set_timesteps`` then ``step``) are compared
with two-sample KS tests, and the old ``schedules.ddpm`` chain, which is
diffusers' only with ``timestep_spacing="linspace"`` and no clipping, is the
negative control that must fail the same test. A tiny ``UNet2DModel`` built from
a config (seeded weights, no hub) runs through the adapter end to end.
"""

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import fastspec  # noqa: E402
from fastspec import schedules  # noqa: E402
from fastspec.schedules import from_diffusers  # noqa: E402
from fastspec.torch import denoiser  # noqa: E402
from fastspec._rules import CONCRETE_METHODS  # noqa: E402

torch.set_num_threads(1)

PASS_P = 1e-3
FAIL_P = 1e-6
SHAPE = (1, 4, 4)
DIM = int(np.prod(SHAPE))

# Gaussian data per pixel, near the clipping range so that clip_sample and
# thresholding change the chain
MU, SD = 0.7, 0.5


def _abar(scheduler):
    return scheduler.alphas_cumprod.double()


class GaussianPredictor(torch.nn.Module):
    """The exact eps / v / x0 prediction of data ~ N(MU, SD^2) per pixel, at integer timesteps."""

    def __init__(self, scheduler, kind):
        super().__init__()
        self.register_buffer("abar", _abar(scheduler))
        self.kind = kind
        self.timesteps = []

    def forward(self, x_t, t):
        self.timesteps.append(t.clone())
        ab = self.abar[t.round().long()].view(-1, *([1] * (x_t.dim() - 1)))
        # x_t = sqrt(ab) x0 + sqrt(1 - ab) eps: Gaussian posterior of x0 given x_t
        var = ab * SD ** 2 + (1 - ab)
        x0 = MU + torch.sqrt(ab) * SD ** 2 * (x_t - torch.sqrt(ab) * MU) / var
        eps = (x_t - torch.sqrt(ab) * x0) / torch.sqrt(1 - ab).clamp_min(1e-300)
        eps = torch.where(ab < 1, eps, torch.zeros_like(eps))
        if self.kind == "epsilon":
            return eps
        if self.kind == "v_prediction":
            return torch.sqrt(ab) * eps - torch.sqrt(1 - ab) * x0
        return x0


CONFIGS = {
    # diffusers' defaults: "leading" spacing and clip_sample=True
    "ddpm-default": (diffusers.DDPMScheduler, dict(), {}),
    "ddpm-trailing-large": (diffusers.DDPMScheduler,
                            dict(timestep_spacing="trailing", variance_type="fixed_large",
                                 clip_sample=False), {}),
    "ddpm-linspace-threshold-v": (diffusers.DDPMScheduler,
                                  dict(timestep_spacing="linspace", thresholding=True,
                                       dynamic_thresholding_ratio=0.9, sample_max_value=1.2,
                                       prediction_type="v_prediction"), {}),
    "ddpm-zero-snr": (diffusers.DDPMScheduler,
                      dict(rescale_betas_zero_snr=True, timestep_spacing="trailing",
                           prediction_type="v_prediction", clip_sample=False), {}),
    "ddpm-small-log-offset": (diffusers.DDPMScheduler,
                              dict(variance_type="fixed_small_log", steps_offset=1,
                                   prediction_type="sample"), {}),
    "ddim-eta1": (diffusers.DDIMScheduler, dict(clip_sample=False), dict(eta=1.0)),
    "ddim-eta-half-clipped": (diffusers.DDIMScheduler,
                              dict(timestep_spacing="trailing", set_alpha_to_one=False),
                              dict(eta=0.5, use_clipped_model_output=True)),
    # eta = 0.5: with eta = 1 diffusers' first step is NaN here (the square root of
    # 1 - abar_p - std**2, which is 0 up to a negative rounding error; fastspec takes 0)
    "ddim-zero-snr": (diffusers.DDIMScheduler,
                      dict(rescale_betas_zero_snr=True, timestep_spacing="trailing",
                           prediction_type="v_prediction", clip_sample=False), dict(eta=0.5)),
}


def _scheduler(name):
    cls, config, step_kw = CONFIGS[name]
    return cls(**config), step_kw


def _diffusers_step(scheduler, step_kw, out, t, x, noise):
    """One ``scheduler.step`` with the given standard normal noise (float64 tensors)."""
    if isinstance(scheduler, diffusers.DDIMScheduler):
        return scheduler.step(out, t, x, variance_noise=noise, **step_kw).prev_sample
    # DDPMScheduler.step draws torch.randn(shape, generator, dtype): hand it that noise
    gen = torch.Generator().manual_seed(int(noise))
    return scheduler.step(out, t, x, generator=gen).prev_sample


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_step_equals_scheduler_step(name):
    scheduler, step_kw = _scheduler(name)
    n_steps = 10
    sched = from_diffusers(scheduler, n_steps, **step_kw)
    scheduler.set_timesteps(n_steps)
    kind = scheduler.config.prediction_type
    rng = np.random.default_rng(0)
    k = 6
    answers = torch.as_tensor(rng.normal(0.3, 1.5, size=(k,) + SHAPE))
    seen = []

    def module(x, t):              # a fixed prediction, whatever the input
        seen.append(t.clone())
        return answers[:x.shape[0]]

    model = denoiser(module, shape=SHAPE, scheduler=scheduler)
    assert len(scheduler.timesteps) == sched.n_steps
    for j, t in enumerate(scheduler.timesteps):
        x = torch.as_tensor(rng.normal(0.0, 1.0, size=(k,) + SHAPE))
        seen.clear()
        d = model.denoise(x.numpy() / sched.s[j], np.full(k, sched.sigma[j]))
        np.testing.assert_array_equal(seen[0].numpy(), float(t))   # the scheduler's timestep
        mean = sched.a[j] * x.numpy() + sched.b[j] * d
        if isinstance(scheduler, diffusers.DDIMScheduler):
            zero = _diffusers_step(scheduler, step_kw, answers, t, x, torch.zeros_like(x))
            ones = _diffusers_step(scheduler, step_kw, answers, t, x, torch.ones_like(x))
            got_mean, got_c = zero.numpy(), (ones - zero).numpy()
        else:
            one = _diffusers_step(scheduler, step_kw, answers, t, x, 1).numpy()
            two = _diffusers_step(scheduler, step_kw, answers, t, x, 2).numpy()
            n1 = torch.randn(x.shape, generator=torch.Generator().manual_seed(1),
                             dtype=x.dtype).numpy()
            n2 = torch.randn(x.shape, generator=torch.Generator().manual_seed(2),
                             dtype=x.dtype).numpy()
            got_c = (one - two) / (n1 - n2)
            got_mean = one - got_c * n1
        err = np.abs(mean - got_mean).max()
        assert err < 1e-5, (name, j, int(t), err)
        assert np.abs(got_c - sched.c[j]).max() < 1e-5, (name, j, int(t), got_c.ravel()[:3],
                                                        sched.c[j])
    assert kind in ("epsilon", "v_prediction", "sample")


# -- the chain's law against diffusers' own loop ---------------------------------------------------

N_LAW = 4000
PROJECTIONS = np.random.default_rng(7).normal(size=(2, DIM))
PROJECTIONS[0] = np.eye(DIM)[0]


def _diffusers_loop(scheduler, step_kw, n_steps, n, seed):
    module = GaussianPredictor(scheduler, scheduler.config.prediction_type)
    gen = torch.Generator().manual_seed(seed)
    run = scheduler.__class__.from_config(scheduler.config)
    run.set_timesteps(n_steps)
    x = torch.randn((n,) + SHAPE, generator=gen, dtype=torch.float64) * run.init_noise_sigma
    for t in run.timesteps:
        out = module(x, torch.full((n,), float(t), dtype=torch.float64))
        x = run.step(out, t, x, generator=gen, **step_kw).prev_sample
    return x.reshape(n, DIM).numpy()


def _ks_pvalue(a, b):
    """Bonferroni over KS tests of a pixel, a random projection and the largest pixel
    (where clipping to [-1, 1] shows)."""
    p = [stats.ks_2samp(a @ v, b @ v).pvalue for v in PROJECTIONS]
    p.append(stats.ks_2samp(a.max(axis=1), b.max(axis=1)).pvalue)
    return min(1.0, len(p) * min(p))


@pytest.fixture(scope="module")
def reference():
    """diffusers' own samples per configuration (computed once)."""
    cache = {}

    def get(name, n_steps):
        if (name, n_steps) not in cache:
            scheduler, step_kw = _scheduler(name)
            cache[name, n_steps] = _diffusers_loop(scheduler, step_kw, n_steps, N_LAW, seed=1)
        return cache[name, n_steps]
    return get


def _fastspec(name, n_steps, method, seed=2, sched=None):
    scheduler, step_kw = _scheduler(name)
    net = GaussianPredictor(scheduler, scheduler.config.prediction_type)
    model = denoiser(net, shape=SHAPE, scheduler=scheduler)
    sched = sched if sched is not None else from_diffusers(scheduler, n_steps, **step_kw)
    res = fastspec.sample(model, schedule=sched, n_samples=N_LAW, method=method, seed=seed)
    assert res.samples.shape == (N_LAW,) + SHAPE
    return res.samples.reshape(N_LAW, DIM)


@pytest.mark.parametrize("name, method", [
    ("ddpm-default", "block"), ("ddpm-default", "sequential"), ("ddpm-default", "token"),
    ("ddpm-default", "srs"),
    ("ddpm-trailing-large", "token"), ("ddpm-linspace-threshold-v", "block"),
    ("ddpm-zero-snr", "srs"), ("ddim-eta1", "block"), ("ddim-eta-half-clipped", "token"),
    ("ddim-zero-snr", "block"),
])
def test_chain_law_equals_diffusers_loop(reference, name, method):
    p = _ks_pvalue(_fastspec(name, 10, method), reference(name, 10))
    assert p > PASS_P, (name, method, p)


def test_old_ddpm_schedule_fails_the_same_test(reference):
    # fastspec.schedules.ddpm is "linspace" without clipping: not diffusers' default chain
    scheduler, _ = _scheduler("ddpm-default")
    old = schedules.ddpm(scheduler.alphas_cumprod, 10)
    got = _fastspec("ddpm-default", 10, "block", sched=old)
    assert _ks_pvalue(got, reference("ddpm-default", 10)) < FAIL_P


def test_ddim_eta_zero_is_sequential_only():
    scheduler = diffusers.DDIMScheduler(clip_sample=False)
    sched = from_diffusers(scheduler, 5, eta=0.0)
    assert (sched.c == 0).all() and "deterministic" in sched.name
    net = GaussianPredictor(scheduler, "epsilon")
    model = denoiser(net, shape=SHAPE, scheduler=scheduler)
    with pytest.raises(ValueError, match=r"deterministic: method='sequential' only.*"
                                         r"use method='sequential'"):
        fastspec.sample(model, schedule=sched, n_samples=2, method="block", seed=0)
    res = fastspec.sample(model, schedule=sched, n_samples=2, method="sequential", seed=0)
    assert res.samples.shape == (2,) + SHAPE


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=1.0), r"DDPMScheduler.*drop eta"),
])
def test_from_diffusers_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_diffusers(diffusers.DDPMScheduler(), 10, **kwargs)


def test_from_diffusers_refusals():
    with pytest.raises(ValueError, match=r"needs eta"):
        from_diffusers(diffusers.DDIMScheduler(), 10)
    with pytest.raises(ValueError, match=r"clip_sample=True is its default.*"
                                         r"use_clipped_model_output=True"):
        from_diffusers(diffusers.DDIMScheduler(), 10, eta=1.0)
    with pytest.raises(ValueError, match=r"variance_type = 'learned'"):
        from_diffusers(diffusers.DDPMScheduler(variance_type="learned"), 10)
    with pytest.raises(ValueError, match=r"DDPMScheduler or DDIMScheduler, got "
                                         r"EulerDiscreteScheduler.*from_sigmas"):
        from_diffusers(diffusers.EulerDiscreteScheduler(), 10)
    scheduler = diffusers.DDPMScheduler(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    model = denoiser(GaussianPredictor(scheduler, "epsilon"), shape=SHAPE, scheduler=scheduler)
    with pytest.raises(fastspec.OracleError, match=r"zero signal .* v- or sample-prediction"):
        fastspec.sample(model, schedule=from_diffusers(scheduler, 10), n_samples=2,
                        method="sequential", seed=0)


# -- a real UNet2DModel, as a user would pass it -------------------------------------------------

def _tiny_unet(seed=0):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4).eval()


@pytest.fixture(scope="module")
def unet():
    return _tiny_unet()


def test_readme_unet_example(unet):
    # the README's example, with the tiny UNet in place of a trained one
    scheduler = diffusers.DDPMScheduler()                 # diffusers' defaults
    model = fastspec.torch.denoiser(unet, scheduler=scheduler)   # shape read from unet.config
    sched = fastspec.schedules.from_diffusers(scheduler, n_steps=20)
    res = fastspec.sample(model, schedule=sched, n_samples=4, seed=0)
    assert res.samples.shape == (4, 1, 8, 8)
    assert model.shape == (1, 8, 8)


def _unet_loop(unet, scheduler, n_steps, n, seed):
    gen = torch.Generator().manual_seed(seed)
    run = scheduler.__class__.from_config(scheduler.config)
    run.set_timesteps(n_steps)
    x = torch.randn((n, 1, 8, 8), generator=gen)
    with torch.inference_mode():
        for t in run.timesteps:
            x = run.step(unet(x, t).sample, t, x, generator=gen).prev_sample
    return x.reshape(n, -1).double().numpy()


def test_unet_chain_law_equals_diffusers_loop(unet):
    scheduler = diffusers.DDPMScheduler()
    n, n_steps = 600, 6
    ref = _unet_loop(unet, scheduler, n_steps, n, seed=3)
    # return_dict=False: the adapter takes the tuple's first element
    model = denoiser(lambda x, t: unet(x, t, return_dict=False), shape=(1, 8, 8),
                     scheduler=scheduler)
    got = fastspec.sample(model, schedule=from_diffusers(scheduler, n_steps), n_samples=n,
                          method="block", seed=4).samples.reshape(n, -1)
    stats_ = [stats.ks_2samp(got[:, i], ref[:, i]).pvalue for i in (0, 27)]
    stats_.append(stats.ks_2samp(got.mean(axis=1), ref.mean(axis=1)).pvalue)
    assert min(1.0, 3 * min(stats_)) > PASS_P
    # negative control: the old linspace schedule without clipping, same test
    old = denoiser(unet, prediction="eps", alphas_cumprod=scheduler.alphas_cumprod)
    bad = fastspec.sample(old, schedule=schedules.ddpm(scheduler.alphas_cumprod, n_steps),
                          n_samples=n, method="block", seed=4).samples.reshape(n, -1)
    stats_ = [stats.ks_2samp(bad[:, i], ref[:, i]).pvalue for i in (0, 27)]
    stats_.append(stats.ks_2samp(bad.mean(axis=1), ref.mean(axis=1)).pvalue)
    assert min(1.0, 3 * min(stats_)) < FAIL_P


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_unet_gets_exact_timesteps(dtype):
    net = _tiny_unet().to(dtype)
    seen = []
    net.register_forward_pre_hook(lambda mod, args: seen.append(args[1].clone()))
    scheduler = diffusers.DDPMScheduler()
    model = denoiser(net, scheduler=scheduler)
    sched = from_diffusers(scheduler, 1000)
    abar = scheduler.alphas_cumprod.double().numpy()
    for t in (999, 257):
        seen.clear()
        j = 999 - t
        out = model.denoise(np.zeros((2, 1, 8, 8)), np.full(2, sched.sigma[j]))
        assert seen[0].dtype == torch.float32
        np.testing.assert_array_equal(seen[0].numpy(), float(t))   # bf16 would give 1000, 256
        assert out.dtype == np.float64 and np.isfinite(out).all()
    assert np.isclose(sched.s[0] ** 2, abar[999])


def test_devices_are_checked_when_the_model_is_built(unet):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device 'cuda' cannot be used here"):
            denoiser(unet, scheduler=diffusers.DDPMScheduler(), device="cuda")
    with torch.device("meta"):
        ghost = diffusers.UNet2DModel(
            sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
            block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4).eval()
    with pytest.raises(ValueError, match=r"'meta' device .* load its weights"):
        denoiser(ghost, scheduler=diffusers.DDPMScheduler())


def test_unet_in_training_mode_without_dropout_is_accepted(unet):
    # UNet2DModel's dropout is 0 by default: training mode changes nothing
    unet.train()
    try:
        denoiser(unet, scheduler=diffusers.DDPMScheduler())
    finally:
        unet.eval()


def test_one_noiseless_step_runs_with_every_method():
    # diffusers' "leading" spacing with one step visits t = 0 only, which adds no noise
    scheduler = diffusers.DDPMScheduler(clip_sample=False)
    sched = from_diffusers(scheduler, 1)
    assert sched.n_steps == 1 and sched.c[0] == 0
    model = denoiser(GaussianPredictor(scheduler, "epsilon"), shape=SHAPE, scheduler=scheduler)
    first = [fastspec.sample(model, schedule=sched, n_samples=3, method=m, seed=0).samples
             for m in CONCRETE_METHODS]
    for other in first[1:]:
        np.testing.assert_array_equal(other, first[0])
