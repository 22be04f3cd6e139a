"""Gaussian chains for diffusion sampling (docs/ALGORITHMS.md, section 1).

A schedule fixes the chain

    y_0 ~ N(0, init_scale**2 I),
    y_{j+1} = a_j y_j + b_j D(y_j / s_j, sigma_j) + c_j xi_j,   j = 0..N-1,

where ``D(z, sigma) = E[x | x + sigma * eps = z]`` is the model's denoiser and
``xi_j ~ N(0, I)``. The samplers of :func:`fastspec.sample` draw exactly the
law of ``y_N``.

Built-in chains: :func:`ve` (variance exploding, ancestral), :func:`vp`
(DDPM ancestral), :func:`ddpm` (DDPM ancestral on a trained model's own
timesteps), :func:`from_diffusers` (a diffusers DDPM or DDIM scheduler's own
chain), :func:`from_sigmas` (k-diffusion's ``sample_euler_ancestral`` on any
sigmas) and :func:`sl` (stochastic localization, Euler-Maruyama).
Any other chain can be given as a :class:`Schedule` built from arrays.
"""

import copy
import math

import numpy as np

from ._checks import check_int, check_real

__all__ = ["Schedule", "ve", "vp", "ddpm", "from_diffusers", "from_sigmas", "sl"]


def _as_float(name, value, *, positive=False, nonnegative=False):
    value = check_real(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _as_steps(n_steps):
    return check_int("n_steps", n_steps, 1)


class Schedule:
    """A Gaussian chain ``y_{j+1} = a_j y_j + b_j D(y_j / s_j, sigma_j) + c_j xi_j``.

    Parameters
    ----------
    a, b, c, s, sigma : array_like of float, shape (N,)
        Per-step coefficients, ``j = 0..N-1``. ``c_j`` is the scale of the
        fresh noise of step ``j``; ``s_j`` and ``sigma_j`` say where the
        denoiser is evaluated: ``D(y_j / s_j, sigma_j)``.
    init_scale : float
        ``y_0 ~ N(0, init_scale**2 I)``.
    final_s, final_sigma : float or None
        Optional: the chain's output ``y_N`` is ``final_s * (x + final_sigma * eps)``
        for data ``x``; then ``model.denoise(y_N / final_s, final_sigma)``
        is the final denoised estimate (``None`` when that does not apply).
    name : str
        Shown in ``repr``.

    Raises
    ------
    TypeError
        If ``init_scale``, ``final_s`` or ``final_sigma`` is not a real number.
    ValueError
        If the arrays are not 1-D of one common length ``N >= 1``, hold a
        non-finite value, ``sigma_j <= 0``, ``s_j <= 0`` or ``c_j < 0``; the
        message names the argument, the step and the value.

    Notes
    -----
    The object is frozen: its arrays are read-only. The speculative methods
    (``"token"``, ``"block"``, ``"srs"``) need ``c_j > 0`` at every step but
    the last (the acceptance ratio divides by it; a noiseless last step is a
    function of the state before it and gets a round of its own);
    ``"sequential"`` accepts ``c_j = 0`` anywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from fastspec.schedules import Schedule
    >>> n = 4
    >>> sched = Schedule(a=np.full(n, 0.5), b=np.full(n, 0.5), c=np.full(n, 0.3),
    ...                  s=np.ones(n), sigma=np.full(n, 0.6), init_scale=1.0)
    >>> sched.n_steps
    4
    """

    __slots__ = ("a", "b", "c", "s", "sigma", "init_scale", "final_s", "final_sigma", "name")

    def __init__(self, a, b, c, s, sigma, init_scale, *, final_s=None, final_sigma=None,
                 name="custom"):
        arrays = {}
        n = None
        for key, value in (("a", a), ("b", b), ("c", c), ("s", s), ("sigma", sigma)):
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{key} must be a 1-D array of floats: {exc}") from None
            if arr.ndim != 1 or arr.shape[0] < 1:
                raise ValueError(f"{key} must be a non-empty 1-D array, got shape {arr.shape}")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValueError(
                    f"schedule arrays must have one common length: a has {n} steps, "
                    f"{key} has {arr.shape[0]}")
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                j = int(bad[0])
                raise ValueError(f"{key}[{j}] (step {j}) must be finite, got {arr[j]}")
            arrays[key] = arr
        for key, strict in (("sigma", True), ("s", True), ("c", False)):
            arr = arrays[key]
            bad = np.flatnonzero(arr <= 0 if strict else arr < 0)
            if bad.size:
                j = int(bad[0])
                rel = "> 0" if strict else ">= 0"
                raise ValueError(f"{key}[{j}] (step {j}) must be {rel}, got {arr[j]}")
        for arr in arrays.values():
            arr.setflags(write=False)
        object.__setattr__(self, "a", arrays["a"])
        object.__setattr__(self, "b", arrays["b"])
        object.__setattr__(self, "c", arrays["c"])
        object.__setattr__(self, "s", arrays["s"])
        object.__setattr__(self, "sigma", arrays["sigma"])
        object.__setattr__(self, "init_scale", _as_float("init_scale", init_scale,
                                                         nonnegative=True))
        object.__setattr__(self, "final_s", None if final_s is None else
                           _as_float("final_s", final_s, positive=True))
        object.__setattr__(self, "final_sigma", None if final_sigma is None else
                           _as_float("final_sigma", final_sigma, nonnegative=True))
        object.__setattr__(self, "name", str(name))

    def __setattr__(self, key, value):
        raise AttributeError(f"Schedule is frozen; cannot set {key!r}")

    @property
    def n_steps(self):
        """Number of chain steps N (denoiser calls of the sequential sampler)."""
        return int(self.a.shape[0])

    def check_speculative(self):
        """Raise ValueError unless every ``c_j > 0`` (needed by the acceptance ratio)."""
        bad = np.flatnonzero(self.c <= 0)
        if bad.size:
            j = int(bad[0])
            raise ValueError(
                f"c[{j}] (step {j}) of {self.name} is {self.c[j]}: the speculative methods need "
                "noise c_j > 0 at every step but the last (the acceptance ratio divides by it); "
                "use method='sequential'")

    def _head(self):
        """This chain without its last step (for a noiseless last step; n_steps >= 2)."""
        return Schedule(self.a[:-1], self.b[:-1], self.c[:-1], self.s[:-1], self.sigma[:-1],
                        self.init_scale, name=self.name)

    def __repr__(self):
        return (f"Schedule(name={self.name!r}, n_steps={self.n_steps}, "
                f"init_scale={self.init_scale:g})")

    def __eq__(self, other):
        if not isinstance(other, Schedule):
            return NotImplemented
        return (all(np.array_equal(getattr(self, k), getattr(other, k))
                    for k in ("a", "b", "c", "s", "sigma"))
                and self.init_scale == other.init_scale)

    __hash__ = None

    # Pickling (Dask sends schedules to its workers): the default for __slots__
    # restores attributes with setattr, which the frozen __setattr__ refuses.
    def __getstate__(self):
        return {key: getattr(self, key) for key in self.__slots__}

    def __setstate__(self, state):
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, key, value)


def ve(n_steps=1000, sigma_max=80.0, sigma_min=0.002):
    """Variance-exploding ancestral sampler with geometric noise levels.

    ``sigma_i = sigma_max * (sigma_min / sigma_max)**(i / N)`` for
    ``i = 0..N``; step ``j`` goes from ``sigma_j`` to ``sigma_{j+1}`` with
    ``a = sigma_{j+1}**2 / sigma_j**2``, ``b = 1 - a``,
    ``c = sigma_{j+1} * sqrt(1 - a)`` (the exact Gaussian posterior of a
    noisier level given a cleaner estimate). ``y_0 ~ N(0, sigma_max**2 I)``.

    Parameters
    ----------
    n_steps : int
        Number of steps N (>= 1).
    sigma_max, sigma_min : float
        ``sigma_max > sigma_min > 0``.

    Returns
    -------
    Schedule
        The output ``y_N`` is data plus noise of scale ``sigma_min``
        (``final_s = 1``, ``final_sigma = sigma_min``).
    """
    n = _as_steps(n_steps)
    hi = _as_float("sigma_max", sigma_max, positive=True)
    lo = _as_float("sigma_min", sigma_min, positive=True)
    if not lo < hi:
        raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={lo}, sigma_max={hi}")
    levels = hi * (lo / hi) ** (np.arange(n + 1) / n)
    a = (levels[1:] / levels[:-1]) ** 2
    b = 1.0 - a
    c = levels[1:] * np.sqrt(b)
    return Schedule(a, b, c, np.ones(n), levels[:-1], hi, final_s=1.0, final_sigma=lo,
                    name=f"ve(n_steps={n}, sigma_max={hi:g}, sigma_min={lo:g})")


def vp(n_steps=1000, beta_min=0.1, beta_max=20.0):
    """Variance-preserving (DDPM) ancestral sampler.

    ``beta_t = (beta_min + (t - 1) / (N - 1) * (beta_max - beta_min)) / N``
    for ``t = 1..N`` (the discretisation of the VP SDE, so N = 1000 gives
    DDPM's ``1e-4 .. 0.02``), ``alpha_t = 1 - beta_t``,
    ``alphabar_t = prod_{u <= t} alpha_u``. Step ``j`` goes from ``t = N - j``
    to ``t - 1`` with the posterior-mean coefficients of
    ``E[x_{t-1} | x_t, x_0]``: ``a = sqrt(alpha_t) (1 - alphabar_{t-1}) / (1 - alphabar_t)``,
    ``b = sqrt(alphabar_{t-1}) beta_t / (1 - alphabar_t)``, where ``x_0`` is
    the denoiser's estimate ``D(x_t / sqrt(alphabar_t), sqrt((1 - alphabar_t) / alphabar_t))``.
    The noise is the posterior variance
    ``c**2 = (1 - alphabar_{t-1}) / (1 - alphabar_t) beta_t`` for ``t >= 2``;
    it is zero at ``t = 1``, where (as the "clipped" variance of improved
    DDPM) the value of ``t = 2`` is used so that every ``c_j > 0``.
    ``y_0 ~ N(0, I)``.

    Parameters
    ----------
    n_steps : int
        Number of steps N (>= 1).
    beta_min, beta_max : float
        ``0 < beta_min <= beta_max``, and every ``beta_t < 1``.

    Returns
    -------
    Schedule
        The output ``y_N`` is the chain's ``x_0`` (a draw in data space).
    """
    n = _as_steps(n_steps)
    lo = _as_float("beta_min", beta_min, positive=True)
    hi = _as_float("beta_max", beta_max, positive=True)
    if hi < lo:
        raise ValueError(f"beta_max must be >= beta_min, got beta_min={lo}, beta_max={hi}")
    frac = np.arange(n) / (n - 1) if n > 1 else np.zeros(1)
    beta = (lo + frac * (hi - lo)) / n
    if beta[-1] >= 1.0:
        raise ValueError(
            f"beta_max / n_steps must be < 1 (a per-step beta), got {beta[-1]} "
            f"(beta_max={hi}, n_steps={n})")
    alpha = 1.0 - beta
    abar = np.cumprod(alpha)                     # abar[t-1] = alphabar_t
    abar_prev = np.concatenate([[1.0], abar[:-1]])  # alphabar_{t-1}
    a_t = np.sqrt(alpha) * (1.0 - abar_prev) / (1.0 - abar)
    b_t = np.sqrt(abar_prev) * beta / (1.0 - abar)
    var_t = (1.0 - abar_prev) / (1.0 - abar) * beta
    if n > 1:
        var_t[0] = var_t[1]
    else:
        var_t[0] = beta[0]
    s_t = np.sqrt(abar)
    sigma_t = np.sqrt((1.0 - abar) / abar)
    rev = slice(None, None, -1)  # step j = 0 is t = N
    return Schedule(a_t[rev], b_t[rev], np.sqrt(var_t)[rev], s_t[rev], sigma_t[rev], 1.0,
                    name=f"vp(n_steps={n}, beta_min={lo:g}, beta_max={hi:g})")


#: Zero terminal SNR (``alphas_cumprod[T-1] = 0``, pure noise) is written as this
#: signal fraction in a chain: ``s = 1e-150``, ``sigma = 1e150``, finite in float64,
#: and ``fastspec.torch.denoiser`` maps every sigma from ``ZERO_SNR_SIGMA`` up to
#: timestep T-1, where its input ``z / sqrt(1 + sigma**2)`` is ``x_t`` to rounding.
ZERO_SNR_ABAR = 1e-300
ZERO_SNR_SIGMA = 1e100


def _as_alphas_cumprod(alphas_cumprod, zero_last=False):
    """Checked float64 copy of a discrete-time model's ``alphas_cumprod`` (T,).

    Also used by :func:`fastspec.torch.denoiser`, so that a schedule and an
    adapter built from one table see the same noise levels to the last bit.
    ``zero_last`` allows ``alphas_cumprod[T-1] = 0`` (zero terminal SNR).
    """
    if hasattr(alphas_cumprod, "detach") and hasattr(alphas_cumprod, "double"):
        # a torch tensor, possibly on a GPU or in half precision (duck-typed: no torch import)
        alphas_cumprod = alphas_cumprod.detach().double().cpu().numpy()
    try:
        abar = np.array(alphas_cumprod, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alphas_cumprod must be a 1-D array of floats: {exc}") from None
    if abar.ndim != 1 or abar.shape[0] < 1:
        raise ValueError(f"alphas_cumprod must be a non-empty 1-D array (T,), got shape "
                         f"{abar.shape}")
    low = abar <= 0
    if zero_last and abar.shape[0] > 1 and abar[-1] == 0:
        low[-1] = False
    bad = np.flatnonzero(~np.isfinite(abar) | low | (abar >= 1))
    if bad.size:
        t = int(bad[0])
        raise ValueError(
            f"alphas_cumprod[{t}] must be finite and in (0, 1), got {abar[t]}: it is the "
            "signal fraction of timestep t (1 would mean no noise, sigma = 0, where no "
            "Gaussian step exists)" + ("; only the last one may be 0 (zero terminal SNR), "
                                      "through schedules.from_diffusers" if abar[t] == 0 else ""))
    bad = np.flatnonzero(np.diff(abar) >= 0)
    if bad.size:
        t = int(bad[0])
        raise ValueError(
            f"alphas_cumprod must be strictly decreasing (more noise at each later timestep), "
            f"got alphas_cumprod[{t}] = {abar[t]} and alphas_cumprod[{t + 1}] = {abar[t + 1]}; "
            "if the table is in reverse order, pass alphas_cumprod[::-1]")
    return abar


def _ddpm_timesteps(n_train, n_steps):
    """The kept timesteps, descending: diffusers' "linspace" spacing.

    ``round(linspace(0, T - 1, n_steps))`` reversed, so both ``T - 1`` and
    ``0`` are kept; for ``n_steps = 1`` the single step starts at ``T - 1``
    (pure noise), where diffusers' formula would give timestep 0.
    """
    if n_steps == 1:
        return np.array([n_train - 1], dtype=np.int64)
    return np.linspace(0, n_train - 1, n_steps).round()[::-1].astype(np.int64)


def ddpm(alphas_cumprod, n_steps=None):
    """DDPM ancestral sampler on a discrete-time model's own timesteps.

    A model trained on ``T`` timesteps with ``alphas_cumprod`` (``abar``,
    the signal fraction: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``)
    is queried only at noise levels it was trained on. The chain visits the
    timesteps ``t_0 > t_1 > ... > t_{N-1}``: all of ``T - 1 .. 0``, or
    ``n_steps`` of them evenly spaced from ``T - 1`` down to 0 (rounded to
    integers as diffusers' ``timestep_spacing="linspace"`` does). Step ``j``
    goes from ``t = t_j`` to the previous kept timestep ``p = t_{j+1}``
    (``abar_p = 1``, clean data, after the last one), with the strided
    one-step quantities ``alpha = abar_t / abar_p``, ``beta = 1 - alpha``
    and the posterior-mean coefficients of ``E[x_p | x_t, x_0]``:
    ``a = sqrt(alpha) (1 - abar_p) / (1 - abar_t)``,
    ``b = sqrt(abar_p) beta / (1 - abar_t)``, where ``x_0`` is the denoiser's
    estimate ``D(x_t / sqrt(abar_t), sqrt((1 - abar_t) / abar_t))``. The
    noise is the posterior variance ``c**2 = (1 - abar_p) / (1 - abar_t) beta``;
    it is zero on the last step, which takes the value of the step before
    (the "clipped" variance, as :func:`vp` does), so every ``c_j > 0``; with
    a single step, ``c**2 = beta``. ``y_0 ~ N(0, I)``.

    Parameters
    ----------
    alphas_cumprod : array_like of float, shape (T,)
        ``abar_t`` for ``t = 0..T-1``, as diffusers' ``DDPMScheduler``
        holds it (a NumPy array, a list, or a torch tensor on any device):
        finite, strictly decreasing, every value in (0, 1).
    n_steps : int, optional
        Number of chain steps N, ``1 <= N <= T``; default T (every
        timestep, the original DDPM sampler).

    Returns
    -------
    Schedule
        N steps; the output ``y_N`` is the chain's ``x_0`` (a draw in data
        space). ``sigma`` holds ``sqrt((1 - abar_t) / abar_t)`` at the kept
        timesteps, exactly the values :func:`fastspec.torch.denoiser` maps
        back to integer timesteps.

    Raises
    ------
    TypeError
        If ``n_steps`` is not an int.
    ValueError
        If ``alphas_cumprod`` is not 1-D, holds a non-finite value or one
        outside (0, 1), or does not decrease strictly; if ``n_steps`` is not
        in ``1..T``.

    Notes
    -----
    Conventions: the posterior of Ho, Jain and Abbeel's DDPM (2020, eq. 7),
    taken between kept timesteps as diffusers' ``DDPMScheduler.step`` does
    with its ``previous_timestep`` (``alpha_prod_t / alpha_prod_t_prev``
    over the stride, ``variance_type="fixed_small"``). Two differences from
    that scheduler: the last step adds the clipped variance instead of no
    noise (the speculative methods need ``c_j > 0``; improved DDPM, Nichol
    and Dhariwal 2021, clips the posterior log-variance in the same way), and
    the estimate of ``x_0`` is never clipped to ``[-1, 1]`` (diffusers'
    ``clip_sample``) or thresholded: the chain uses the denoiser as it is.
    With every timestep and ``abar`` the cumulative product of :func:`vp`'s
    betas, the coefficients equal :func:`vp`'s up to rounding. For the chain a
    diffusers scheduler runs (its default ``"leading"`` spacing, clipping,
    no noise on the last step), use :func:`from_diffusers`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastspec.schedules import ddpm
    >>> abar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))  # DDPM's linear betas
    >>> sched = ddpm(abar, n_steps=50)
    >>> sched.n_steps, round(float(sched.sigma[0]), 1), round(float(sched.sigma[-1]), 4)
    (50, 157.4, 0.01)
    """
    abar = _as_alphas_cumprod(alphas_cumprod)
    n_train = abar.shape[0]
    n = n_train if n_steps is None else _as_steps(n_steps)
    if n > n_train:
        raise ValueError(f"n_steps must be <= T = {n_train} (the model's trained timesteps), "
                         f"got {n}")
    steps = _ddpm_timesteps(n_train, n)
    abar_t = abar[steps]
    abar_p = np.concatenate([abar[steps[1:]], [1.0]])
    # abar_p - abar_t is exact when the two are within a factor 2 (Sterbenz), so beta
    # keeps full relative precision even for tiny per-step betas.
    beta = (abar_p - abar_t) / abar_p
    alpha = abar_t / abar_p
    a = np.sqrt(alpha) * (1.0 - abar_p) / (1.0 - abar_t)
    b = np.sqrt(abar_p) * beta / (1.0 - abar_t)
    var = (1.0 - abar_p) / (1.0 - abar_t) * beta
    var[-1] = var[-2] if n > 1 else beta[-1]
    return Schedule(a, b, np.sqrt(var), np.sqrt(abar_t), np.sqrt((1.0 - abar_t) / abar_t), 1.0,
                    name=f"ddpm(T={n_train}, n_steps={n})")


def _as_array(values, name):
    if hasattr(values, "detach") and hasattr(values, "double"):
        values = values.detach().double().cpu().numpy()      # a torch tensor (no torch import)
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of floats: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    return arr


def _scheduler_kind(scheduler):
    names = [cls.__name__ for cls in type(scheduler).__mro__]
    for kind in ("DDPMScheduler", "DDIMScheduler"):
        if kind in names:
            return kind
    raise ValueError(f"scheduler must be a diffusers DDPMScheduler or DDIMScheduler, got "
                     f"{type(scheduler).__name__}; for a sigma-based (k-diffusion style) "
                     "sampler pass its sigmas to fastspec.schedules.from_sigmas")


def from_diffusers(scheduler, n_steps, *, eta=None, use_clipped_model_output=False):
    """The ancestral chain a diffusers ``DDPMScheduler`` or ``DDIMScheduler`` runs.

    The timesteps are the scheduler's own: ``set_timesteps(n_steps)`` is
    called on a copy (the scheduler passed in is not changed), so every
    ``timestep_spacing`` (``"linspace"``, ``"leading"``, ``"trailing"``) and
    ``steps_offset`` gives the timesteps diffusers visits. Step ``j`` goes
    from ``t = timesteps[j]`` to the scheduler's previous timestep ``p``
    (``abar_p = 1`` past the end, or DDIM's ``final_alpha_cumprod``), and
    ``D`` is the x0 estimate (clipped or thresholded as the scheduler says,
    which :func:`fastspec.torch.denoiser` does when given ``scheduler=``).

    - DDPM (``DDPMScheduler.step``): the posterior mean
      ``a = sqrt(abar_t / abar_p) (1 - abar_p) / (1 - abar_t)``,
      ``b = sqrt(abar_p) (1 - abar_t / abar_p) / (1 - abar_t)``; noise only
      at ``t > 0``, of variance ``max((1 - abar_p) / (1 - abar_t) beta, 1e-20)``
      (``variance_type="fixed_small"`` or ``"fixed_small_log"``) or
      ``beta = 1 - abar_t / abar_p`` (``"fixed_large"``).
    - DDIM (``DDIMScheduler.step`` with ``eta``): ``std = eta sqrt(var)``,
      ``var = (1 - abar_p) / (1 - abar_t) (1 - abar_t / abar_p)``,
      ``k = sqrt(1 - abar_p - std**2)``; ``a = k / sqrt(1 - abar_t)``,
      ``b = sqrt(abar_p) - k sqrt(abar_t / (1 - abar_t))``, ``c = std``.

    ``y_0 ~ N(0, init_noise_sigma**2 I)``; the output ``y_N`` is the chain's
    ``x_0``. The last step of both adds no noise (``c = 0``): it is a
    function of the state before it, which the speculative methods handle
    with one extra round (see :class:`fastspec.DiffusionModel`).

    Parameters
    ----------
    scheduler : diffusers.DDPMScheduler or diffusers.DDIMScheduler
    n_steps : int
        ``num_inference_steps``, ``1 <= n_steps <= num_train_timesteps``.
    eta : float, optional
        DDIM only (required there): the noise weight of ``DDIMScheduler.step``,
        ``> 0`` for a stochastic chain. ``eta = 0`` is deterministic given
        ``y_0``: the schedule is returned, with ``c = 0`` at every step, for
        ``method="sequential"`` only.
    use_clipped_model_output : bool, default False
        DDIM only, as in ``DDIMScheduler.step``. With ``clip_sample`` or
        ``thresholding`` and False, diffusers mixes the clipped x0 with the
        unclipped noise estimate, which is not one denoiser: refused.

    Returns
    -------
    Schedule
        ``sigma`` holds ``sqrt((1 - abar_t) / abar_t)`` of the visited
        timesteps (``1e150`` at zero terminal SNR, ``abar_t = 0``, which
        :func:`fastspec.torch.denoiser` maps to the last timestep).

    Raises
    ------
    ValueError
        Another scheduler class; ``n_steps`` out of range (the scheduler's
        own message); ``variance_type`` ``"learned"``, ``"learned_range"``
        (the network predicts the variance) or ``"fixed_large_log"``
        (diffusers takes the square root of a log there); a DDIM without
        ``eta`` or with ``eta < 0``, or with clipping and
        ``use_clipped_model_output=False``; ``eta`` given to DDPM.

    Examples
    --------
    >>> from diffusers import DDPMScheduler  # doctest: +SKIP
    >>> sched = from_diffusers(DDPMScheduler(), 50)  # doctest: +SKIP
    >>> sched.n_steps  # doctest: +SKIP
    50
    """
    kind = _scheduler_kind(scheduler)
    n = _as_steps(n_steps)
    config = scheduler.config
    run = copy.deepcopy(scheduler)
    run.set_timesteps(n)
    steps = np.asarray(run.timesteps.cpu().numpy() if hasattr(run.timesteps, "cpu")
                       else run.timesteps, dtype=np.int64)
    abar = _as_alphas_cumprod(scheduler.alphas_cumprod, zero_last=True)
    clipping = bool(config.get("thresholding", False) or config.get("clip_sample", False))
    if kind == "DDPMScheduler":
        if eta is not None:
            raise ValueError("eta is for DDIMScheduler; a DDPMScheduler's noise is set by its "
                             "variance_type: drop eta")
        prev = np.array([int(run.previous_timestep(int(t))) for t in steps])
        abar_t = abar[steps]
        abar_p = np.where(prev >= 0, abar[np.maximum(prev, 0)], 1.0)
        beta = (abar_p - abar_t) / abar_p
        a = np.sqrt(abar_t / abar_p) * (1.0 - abar_p) / (1.0 - abar_t)
        b = np.sqrt(abar_p) * beta / (1.0 - abar_t)
        variance = config.get("variance_type", "fixed_small")
        if variance in ("fixed_small", "fixed_small_log"):
            var = np.maximum((1.0 - abar_p) / (1.0 - abar_t) * beta, 1e-20)
        elif variance == "fixed_large":
            var = beta
        else:
            raise ValueError(f"variance_type = {variance!r} is not supported: 'learned' and "
                             "'learned_range' take the variance from the network, and "
                             "diffusers' 'fixed_large_log' takes the square root of a log; use "
                             "'fixed_small' or 'fixed_large'")
        c = np.where(steps > 0, np.sqrt(var), 0.0)
        name = (f"from_diffusers(DDPMScheduler, n_steps={n}, "
                f"{config.get('timestep_spacing')}, {variance})")
    else:
        if eta is None:
            raise ValueError("a DDIMScheduler chain needs eta (the noise weight of its step): "
                             "eta > 0 for a stochastic chain")
        eta = _as_float("eta", eta, nonnegative=True)
        if clipping and not use_clipped_model_output:
            raise ValueError(
                "this DDIMScheduler clips or thresholds x0 (clip_sample=True is its default) "
                "but, with use_clipped_model_output=False, steps with the unclipped noise "
                "estimate: two different estimates in one step, not one denoiser. Pass "
                "use_clipped_model_output=True (and the same to DDIMScheduler.step), or make "
                "the scheduler with clip_sample=False")
        prev = steps - config["num_train_timesteps"] // n
        final = 1.0 if config.get("set_alpha_to_one", True) else abar[0]
        abar_t = abar[steps]
        abar_p = np.where(prev >= 0, abar[np.maximum(prev, 0)], final)
        var = (1.0 - abar_p) / (1.0 - abar_t) * (1.0 - abar_t / abar_p)
        std = eta * np.sqrt(var)
        k = np.sqrt(np.maximum(1.0 - abar_p - std ** 2, 0.0))
        a = k / np.sqrt(1.0 - abar_t)
        b = np.sqrt(abar_p) - k * np.sqrt(abar_t / (1.0 - abar_t))
        c = std
        name = (f"from_diffusers(DDIMScheduler, n_steps={n}, eta={eta:g}"
                + (", deterministic: method='sequential' only)" if eta == 0 else ")"))
    signal = np.where(abar_t > 0, abar_t, ZERO_SNR_ABAR)
    init = float(getattr(scheduler, "init_noise_sigma", 1.0))
    return Schedule(a, b, c, np.sqrt(signal), np.sqrt((1.0 - signal) / signal), init,
                    name=name)


def from_sigmas(sigmas, eta=1.0):
    """k-diffusion's ``sample_euler_ancestral`` on the noise levels ``sigmas``.

    Step ``i`` goes from ``sigma_i`` to ``sigma_{i+1}`` as k-diffusion's
    ``get_ancestral_step`` and Euler step do: ``sigma_up = min(sigma_{i+1},
    eta sigma_{i+1} sqrt(1 - sigma_{i+1}**2 / sigma_i**2))``,
    ``sigma_down = sqrt(sigma_{i+1}**2 - sigma_up**2)``, then
    ``y <- y + (y - D) / sigma_i (sigma_down - sigma_i) + sigma_up xi``, that
    is ``a = sigma_down / sigma_i``, ``b = 1 - a``, ``c = sigma_up``
    (``s = 1``, the denoiser asked at ``sigma_i``), with
    ``y_0 ~ N(0, sigma_0**2 I)``. A step to ``sigma = 0`` returns the
    denoiser's estimate and adds no noise (``a = 0``, ``b = 1``, ``c = 0``).
    With ``eta = 1`` and geometric sigmas this is :func:`ve`.

    Parameters
    ----------
    sigmas : array_like (N + 1,)
        Strictly decreasing noise levels, all > 0 except possibly the last,
        which may be 0 (k-diffusion's ``get_sigmas_karras``,
        ``get_sigmas_exponential`` and the like append it). A list, NumPy
        array or torch tensor.
    eta : float, default 1
        The ancestral noise weight (``0 < eta <= 1``; 0 is the deterministic
        Euler sampler, ``method="sequential"`` only).

    Returns
    -------
    Schedule
        N steps; ``final_sigma`` is the last sigma (0 when the chain ends in
        the denoiser's estimate). A noiseless last step (to 0) is handled by
        the speculative methods with one extra round.

    Raises
    ------
    ValueError
        ``sigmas`` not 1-D of length >= 2, non-finite, negative, not
        strictly decreasing, or 0 before the last entry; ``eta`` outside
        ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastspec.schedules import from_sigmas, ve
    >>> geometric = 80.0 * (0.002 / 80.0) ** (np.arange(11) / 10)
    >>> np.allclose(from_sigmas(geometric).a, ve(10, 80.0, 0.002).a)
    True
    """
    sig = _as_array(sigmas, "sigmas")
    eta = _as_float("eta", eta, nonnegative=True)
    if eta > 1:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    if sig.shape[0] < 2:
        raise ValueError(f"sigmas must hold at least 2 noise levels (one step), got "
                         f"{sig.tolist()}")
    bad = np.flatnonzero(~np.isfinite(sig) | (sig < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"sigmas[{i}] must be finite and >= 0, got {sig[i]}")
    bad = np.flatnonzero(np.diff(sig) >= 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"sigmas must be strictly decreasing, got sigmas[{i}] = {sig[i]} and "
                         f"sigmas[{i + 1}] = {sig[i + 1]}; if in increasing order, reverse them")
    hi, lo = sig[:-1], sig[1:]
    up = np.minimum(lo, eta * np.sqrt(lo ** 2 * (hi ** 2 - lo ** 2) / hi ** 2))
    down = np.sqrt(lo ** 2 - up ** 2)
    a = down / hi
    return Schedule(a, 1.0 - a, up, np.ones(hi.shape[0]), hi, float(sig[0]), final_s=1.0,
                    final_sigma=float(sig[-1]),
                    name=f"from_sigmas({sig[0]:g}..{sig[-1]:g}, N={hi.shape[0]}, eta={eta:g})")


def sl(n_steps=1000, t_max=10.0):
    """Stochastic localization, Euler-Maruyama.

    The process ``y_t = t x + B_t`` solves ``dy = E[x | y_t] dt + dB_t`` with
    ``E[x | y_t] = D(y_t / t, 1 / sqrt(t))``. On the grid
    ``t_j = (j + 1) h``, ``h = t_max / (N + 1)``, step ``j`` is
    ``y_{j+1} = y_j + h D(y_j / t_j, 1 / sqrt(t_j)) + sqrt(h) xi_j``
    (``a = 1``, ``b = h``, ``c = sqrt(h)``, ``s = t_j``), started from
    ``y_0 ~ N(0, h I)`` (the law of ``y_h`` up to its small signal ``h x``).

    Parameters
    ----------
    n_steps : int
        Number of steps N (>= 1).
    t_max : float
        Final time (> 0).

    Returns
    -------
    Schedule
        The output ``y_N`` is about ``t_max x + B_{t_max}``; divide by
        ``t_max`` (``final_s``) or denoise at ``final_sigma = 1 / sqrt(t_max)``
        for a data-space estimate.
    """
    n = _as_steps(n_steps)
    tm = _as_float("t_max", t_max, positive=True)
    h = tm / (n + 1)
    t = h * np.arange(1, n + 1)
    return Schedule(np.ones(n), np.full(n, h), np.full(n, math.sqrt(h)), t, 1.0 / np.sqrt(t),
                    math.sqrt(h), final_s=tm, final_sigma=1.0 / math.sqrt(tm),
                    name=f"sl(n_steps={n}, t_max={tm:g})")
