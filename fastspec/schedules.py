"""Gaussian chains for diffusion sampling (docs/ALGORITHMS.md, section 1).

A schedule fixes the chain

    y_0 ~ N(0, init_scale**2 I),
    y_{j+1} = a_j y_j + b_j D(y_j / s_j, sigma_j) + c_j xi_j,   j = 0..N-1,

where ``D(z, sigma) = E[x | x + sigma * eps = z]`` is the model's denoiser and
``xi_j ~ N(0, I)``. The samplers of :func:`fastspec.sample` draw exactly the
law of ``y_N``.

Built-in chains: :func:`ve` (variance exploding, ancestral), :func:`vp`
(DDPM ancestral), :func:`ddpm` (DDPM ancestral on a trained model's own
timesteps) and :func:`sl` (stochastic localization, Euler-Maruyama).
Any other chain can be given as a :class:`Schedule` built from arrays.
"""

import math
import numbers

import numpy as np

__all__ = ["Schedule", "ve", "vp", "ddpm", "sl"]


def _as_float(name, value, *, positive=False, nonnegative=False):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _as_steps(n_steps):
    if (not isinstance(n_steps, (numbers.Integral, np.integer)) or isinstance(n_steps, bool)
            or n_steps < 1):
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    return int(n_steps)


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

    __slots__ = ("a", "b", "c", "s", "sigma", "init_scale", "final_s", "final_sigma", "name",
                 "_frozen")

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
        object.__setattr__(self, "_frozen", True)

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
    ValueError
        If ``alphas_cumprod`` is not 1-D, holds a non-finite value or one
        outside (0, 1), or does not decrease strictly; if ``n_steps`` is not
        an int in ``1..T``.

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
    betas, the coefficients equal :func:`vp`'s up to rounding.

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
