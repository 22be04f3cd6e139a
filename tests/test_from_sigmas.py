"""``schedules.from_sigmas``: k-diffusion's ``sample_euler_ancestral`` on any decreasing sigmas.

k-diffusion cannot be installed beside this project's torch without its heavy
dependencies (``import k_diffusion`` imports torchvision, kornia, clean-fid...),
so the reference below is a line-by-line reading of ``get_ancestral_step`` and
``sample_euler_ancestral`` from k-diffusion 0.1.1.post1's ``k_diffusion/sampling.py``
(its PyPI wheel), in NumPy. When ``k_diffusion.sampling`` does import, its own
functions are used instead. One step's coefficients must match the reference to
float precision; the chain's law must match the reference loop for every method
(two-sample KS, fixed seeds), and the chain with ``eta = 0.5`` must fail the same
test against the ``eta = 1`` loop.
"""

import math

import numpy as np
import pytest
from scipy import stats

import fastspec
from fastspec.schedules import from_sigmas, ve
from fastspec._rules import CONCRETE_METHODS

try:  # pragma: no cover - only where k-diffusion and its dependencies are installed
    from k_diffusion.sampling import get_ancestral_step
except Exception:  # noqa: BLE001 - any import failure means: use the reading below
    def get_ancestral_step(sigma_from, sigma_to, eta=1.0):
        """k-diffusion's get_ancestral_step (sampling.py), as written there."""
        if not eta:
            return sigma_to, 0.0
        sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2)
                                        / sigma_from ** 2) ** 0.5)
        sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5
        return sigma_down, sigma_up

PASS_P = 1e-3
FAIL_P = 1e-6
MU, SD = 2.0, 0.3          # data ~ N(MU, SD^2) per coordinate
N_LAW = 4000


def karras(n, sigma_min, sigma_max, rho=7.0):
    """k-diffusion's get_sigmas_karras: n levels and a trailing 0."""
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return np.append((hi + ramp * (lo - hi)) ** rho, 0.0)


def exponential(n, sigma_min, sigma_max):
    """k-diffusion's get_sigmas_exponential without its trailing 0."""
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))


def denoise(z, sigma):
    """E[x | x + sigma eps = z] for x ~ N(MU, SD^2) per coordinate."""
    s2 = sigma[:, None] ** 2
    return (MU * s2 + SD ** 2 * z) / (SD ** 2 + s2)


def euler_ancestral(sigmas, n, d, eta, rng):
    """k-diffusion's sample_euler_ancestral with the model ``denoise``, as written there."""
    x = rng.standard_normal((n, d)) * sigmas[0]
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, np.full(n, sigmas[i]))
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        d_ = (x - denoised) / sigmas[i]          # to_d
        dt = sigma_down - sigmas[i]
        x = x + d_ * dt
        if sigmas[i + 1] > 0:
            x = x + rng.standard_normal((n, d)) * sigma_up
    return x


SIGMAS = {"karras": karras(6, 0.05, 10.0), "exponential": exponential(6, 0.05, 10.0)}


@pytest.mark.parametrize("name", list(SIGMAS))
@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_one_step_equals_euler_ancestral(name, eta):
    sig = SIGMAS[name]
    sched = from_sigmas(sig, eta=eta)
    rng = np.random.default_rng(0)
    for i in range(len(sig) - 1):
        x, den = rng.normal(size=5), rng.normal(size=5)
        sigma_down, sigma_up = get_ancestral_step(sig[i], sig[i + 1], eta=eta)
        mean = x + (x - den) / sig[i] * (sigma_down - sig[i])
        np.testing.assert_allclose(sched.a[i] * x + sched.b[i] * den, mean, rtol=1e-12,
                                   atol=1e-12)
        assert math.isclose(sched.c[i], sigma_up if sig[i + 1] > 0 else 0.0, rel_tol=1e-12)
        assert sched.s[i] == 1.0 and sched.sigma[i] == sig[i]
    assert sched.init_scale == sig[0] and sched.final_sigma == sig[-1]


@pytest.fixture(scope="module")
def reference():
    return {name: euler_ancestral(sig, N_LAW, 2, 1.0, np.random.default_rng(1))
            for name, sig in SIGMAS.items()}


@pytest.mark.parametrize("name", list(SIGMAS))
@pytest.mark.parametrize("method", CONCRETE_METHODS)
def test_chain_law_equals_euler_ancestral(reference, name, method):
    model = fastspec.DiffusionModel(denoise, dim=2)
    got = fastspec.sample(model, schedule=from_sigmas(SIGMAS[name]), n_samples=N_LAW,
                          method=method, seed=2).samples
    ref = reference[name]
    p = min(1.0, 2 * min(stats.ks_2samp(got[:, 0], ref[:, 0]).pvalue,
                         stats.ks_2samp(got.sum(axis=1), ref.sum(axis=1)).pvalue))
    assert p > PASS_P, (name, method, p)


def test_another_eta_fails_the_same_test(reference):
    model = fastspec.DiffusionModel(denoise, dim=2)
    got = fastspec.sample(model, schedule=from_sigmas(SIGMAS["karras"], eta=0.5),
                          n_samples=N_LAW, method="block", seed=2).samples
    ref = reference["karras"]
    p = min(1.0, 2 * min(stats.ks_2samp(got[:, 0], ref[:, 0]).pvalue,
                         stats.ks_2samp(got.sum(axis=1), ref.sum(axis=1)).pvalue))
    assert p < FAIL_P


def test_ve_is_from_sigmas_on_geometric_sigmas():
    n, hi, lo = 50, 80.0, 0.002
    geometric = hi * (lo / hi) ** (np.arange(n + 1) / n)
    a, b = from_sigmas(geometric), ve(n, hi, lo)
    for key in ("a", "b", "c", "s", "sigma"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-12, atol=1e-15)
    assert a.init_scale == b.init_scale


def test_torch_sigmas_are_accepted():
    torch = pytest.importorskip("torch")
    sig = torch.tensor(SIGMAS["karras"], dtype=torch.float32)
    assert from_sigmas(sig) == from_sigmas(sig.double().numpy())


@pytest.mark.parametrize("sigmas, kwargs, match", [
    ([5.0], {}, r"at least 2 noise levels"),
    ([5.0, 1.0, 2.0], {}, r"strictly decreasing, got sigmas\[1\] = 1.0 and sigmas\[2\] = 2.0"),
    ([5.0, 0.0, 0.0], {}, r"strictly decreasing"),
    ([5.0, -1.0], {}, r"sigmas\[1\] must be finite and >= 0, got -1.0"),
    ([np.inf, 1.0], {}, r"sigmas\[0\] must be finite"),
    ([[5.0, 1.0]], {}, r"1-D array"),
    ([5.0, 1.0], dict(eta=1.5), r"eta must be in \[0, 1\], got 1.5"),
])
def test_from_sigmas_errors(sigmas, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_sigmas(sigmas, **kwargs)
