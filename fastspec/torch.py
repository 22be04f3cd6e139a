"""PyTorch adapters: a masked language model or a diffusion network as a fastspec model.

:func:`masked_lm` turns a masked (any-order) language model into an
:class:`fastspec.ARModel`; :func:`denoiser` turns a diffusion network in the
x0-, eps- or v-prediction convention into a :class:`fastspec.DiffusionModel`.
Both call the network under ``torch.inference_mode()``, in chunks of at most
``max_rows`` rows, and hand fastspec float64 NumPy arrays.

This module imports torch (the optional extra: ``pip install "fastspec[torch]"``);
``import fastspec`` alone does not.

The network must answer deterministically: a module (or any sub-module) left
in training mode, where dropout makes answers random, is refused with a
message asking for ``module.eval()``.
"""

import numbers

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "fastspec.torch needs PyTorch; install it with: pip install \"fastspec[torch]\"") from exc

from . import ARModel, DiffusionModel, OracleError
from .schedules import _as_alphas_cumprod

__all__ = ["masked_lm", "denoiser", "PREDICTIONS"]

#: Prediction conventions accepted by :func:`denoiser`.
PREDICTIONS = ("x0", "eps", "v")


# -- shared helpers ----------------------------------------------------------------------------

def _as_int(name, value, minimum):
    if (not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, bool)
            or value < minimum):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _as_max_rows(max_rows):
    return None if max_rows is None else _as_int("max_rows", max_rows, 1)


def _check_module(module):
    if not callable(module):
        raise ValueError(f"module must be a callable (a torch.nn.Module), got "
                         f"{type(module).__name__}")
    _check_eval(module, ValueError)


def _check_eval(module, error):
    # Dropout (and batch statistics) make a module in training mode answer at random;
    # the samplers' exactness rests on one fixed answer per query.
    if isinstance(module, torch.nn.Module):
        for name, sub in module.named_modules():
            if sub.training:
                where = "module" if not name else f"sub-module {name!r} of module"
                raise error(f"{where} is in training mode (dropout would make its answers "
                            "random, which breaks exact sampling); call module.eval() first")


def _placement(module, device):
    """Device and floating dtype for the module's inputs.

    The first floating parameter or buffer decides (a module without any runs
    on the CPU in torch's default dtype); ``device`` overrides the device.
    The module itself is never moved.
    """
    found = None
    if isinstance(module, torch.nn.Module):
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point():
                found = tensor
                break
    dtype = found.dtype if found is not None else torch.get_default_dtype()
    if device is not None:
        try:
            dev = torch.device(device)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda:0', got "
                             f"{device!r}: {exc}") from None
    else:
        dev = found.device if found is not None else torch.device("cpu")
    return dev, dtype


def _chunks(n_rows, max_rows):
    step = max_rows if max_rows is not None else max(n_rows, 1)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _output_tensor(out, attribute, what):
    # Hugging Face models return an output object: transformers' masked LMs carry
    # `.logits`, diffusers' UNets carry `.sample`.
    if isinstance(out, torch.Tensor):
        return out
    inner = getattr(out, attribute, None)
    if isinstance(inner, torch.Tensor):
        return inner
    raise OracleError(f"module returned {type(out).__name__}; expected {what} as a tensor or "
                      f"an object with a .{attribute} tensor")


# -- masked language models ----------------------------------------------------------------------

def _as_symbols(symbols, q, mask_id):
    if symbols is None:
        sym = np.arange(q, dtype=np.int64)
    else:
        if hasattr(symbols, "detach"):
            symbols = symbols.detach().cpu().numpy()
        sym = np.asarray(symbols)
        if sym.ndim != 1 or sym.dtype.kind not in "iu":
            raise ValueError(f"symbols must be a 1-D sequence of int token ids, got "
                             f"{sym.dtype} array of shape {sym.shape}")
        if sym.shape[0] != q:
            raise ValueError(f"symbols must hold q = {q} token ids (one per fastspec symbol "
                             f"0..{q - 1}), got {sym.shape[0]}: {sym.tolist()}")
        sym = sym.astype(np.int64)
        if (sym < 0).any():
            i = int(np.flatnonzero(sym < 0)[0])
            raise ValueError(f"symbols must be token ids >= 0, got symbols[{i}] = {sym[i]}")
        values, counts = np.unique(sym, return_counts=True)
        if (counts > 1).any():
            token = int(values[counts > 1][0])
            where = np.flatnonzero(sym == token).tolist()
            raise ValueError(f"symbols must be distinct: token id {token} appears at "
                             f"positions {where}")
    hit = np.flatnonzero(sym == mask_id)
    if hit.size:
        raise ValueError(f"mask_id = {mask_id} is also symbols[{int(hit[0])}]; the mask token "
                         "must not be one of the q symbols")
    return sym


def masked_lm(module, *, n, q, mask_id, symbols=None, max_rows=None, device=None):
    """A masked (any-order) language model as a fastspec :class:`~fastspec.ARModel`.

    Parameters
    ----------
    module : torch.nn.Module or callable
        ``module(ids)`` with ``ids`` a LongTensor ``(K, n)`` of token ids
        returns logits ``(K, n, V)``, or an object with a ``.logits`` tensor
        (Hugging Face's ``MaskedLMOutput``). Pinned positions hold
        ``symbols[x]``; free positions hold ``mask_id``. It must be in eval
        mode.
    n : int
        Sequence length (>= 1).
    q : int
        Number of fastspec symbols (>= 2).
    mask_id : int
        Token id written at free positions (>= 0, not among ``symbols``).
    symbols : sequence of int, optional
        ``symbols[x]`` is the token id of fastspec symbol ``x``; ``q``
        distinct ids ``>= 0`` and ``< V``. Default ``0..q-1``.
    max_rows : int, optional
        Largest number of rows per call of ``module`` (default: all rows of
        a round in one call).
    device : str or torch.device, optional
        Where the token ids are sent (default: the device of the module's
        first parameter or buffer, else the CPU). The module is not moved.

    Returns
    -------
    ARModel
        Its oracle maps ``ctx`` int64 ``(K, n)`` (``-1`` = free) to float64
        ``(K, n, q)``: at each position, the softmax, computed in float64,
        of the logits of the ``q`` symbol ids only. The logits of every other
        id (the mask, padding, special tokens, the rest of the vocabulary)
        are dropped before the softmax, so the conditional is the model's
        distribution restricted to the ``q`` symbols.

    Raises
    ------
    ValueError
        At construction: ``n``, ``q``, ``mask_id``, ``symbols`` or
        ``max_rows`` invalid (not an int, out of range, ``symbols`` of the
        wrong length, repeated, or holding ``mask_id``), an unknown
        ``device``, or a module in training mode.
    fastspec.OracleError
        During sampling: the module is in training mode, returns something
        other than a tensor ``(K, n, V)`` (or an object with ``.logits``),
        or ``V`` is too small for ``symbols``. Exceptions raised by the
        module itself pass through unchanged.

    Notes
    -----
    Any-order masked LMs (e.g. BERT-style models, masked diffusion language
    models) are trained to predict every masked position given the unmasked
    ones: that forward pass is fastspec's marginal oracle. Each round makes
    one batched pass over all its contexts (split by ``max_rows``).

    Examples
    --------
    >>> import torch, fastspec
    >>> from fastspec.torch import masked_lm
    >>> class Flat(torch.nn.Module):       # vocabulary of 5; ids 3 and 4 are special
    ...     def forward(self, ids):
    ...         return torch.zeros(ids.shape + (5,))
    >>> model = masked_lm(Flat().eval(), n=6, q=3, mask_id=4)
    >>> fastspec.sample(model, n_samples=2, seed=0).samples.shape
    (2, 6)
    """
    _check_module(module)
    n = _as_int("n", n, 1)
    q = _as_int("q", q, 2)
    mask_id = _as_int("mask_id", mask_id, 0)
    sym = _as_symbols(symbols, q, mask_id)
    rows = _as_max_rows(max_rows)
    dev, _ = _placement(module, device)
    sym_index = torch.as_tensor(sym, device=dev)
    largest = int(sym.max())

    def marginals(ctx):
        _check_eval(module, OracleError)
        ids = np.where(ctx >= 0, sym[np.maximum(ctx, 0)], mask_id)
        probs = np.empty((ctx.shape[0], n, q))
        with torch.inference_mode():
            for part in _chunks(ctx.shape[0], rows):
                batch = torch.tensor(ids[part], dtype=torch.long, device=dev)
                logits = _output_tensor(module(batch), "logits", "logits (K, n, V)")
                m = part.stop - part.start
                if logits.ndim != 3 or tuple(logits.shape[:2]) != (m, n):
                    raise OracleError(f"module returned logits of shape {tuple(logits.shape)} "
                                      f"for {m} rows of length {n}; expected (K, n, V) = "
                                      f"({m}, {n}, V)")
                if largest >= logits.shape[2]:
                    raise OracleError(
                        f"symbols must be token ids < V = {logits.shape[2]} (the vocabulary "
                        f"size of the module's logits), got {largest} (symbol "
                        f"{int(np.argmax(sym))}); pass the token ids the model uses")
                kept = logits.index_select(-1, sym_index.to(logits.device)).to(torch.float64)
                probs[part] = torch.softmax(kept, dim=-1).cpu().numpy()
        return probs

    return ARModel(marginals, n, q)


# -- diffusion denoisers ---------------------------------------------------------------------------

def _sigma_to_t(sigma, log_sigmas):
    """Fractional timesteps of noise levels ``sigma`` (float64 (K,), within the table's range).

    Linear interpolation of ``log sigma`` between the integer timesteps whose
    ``log sigma_t`` bracket it (k-diffusion's ``DiscreteSchedule.sigma_to_t``);
    a tabulated ``sigma_t`` maps to ``t`` exactly.
    """
    return np.interp(np.log(sigma), log_sigmas, np.arange(log_sigmas.shape[0], dtype=np.float64))


def _x0_from_eps(z, sigma, eps):
    """``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)``; with ``z = x_t / sqrt(abar)`` and
    ``sigma**2 = (1 - abar) / abar`` this is ``z - sigma eps``."""
    return z - sigma[:, None] * eps


def _x0_from_v(z, sigma, v):
    """``x0 = sqrt(abar) x_t - sqrt(1 - abar) v`` for ``v = sqrt(abar) eps - sqrt(1 - abar) x0``;
    in terms of ``z`` and ``sigma``: ``z / (1 + sigma**2) - sigma / sqrt(1 + sigma**2) v``."""
    s2 = 1.0 + sigma[:, None] ** 2
    return z / s2 - sigma[:, None] / np.sqrt(s2) * v


def denoiser(module, *, dim, prediction, alphas_cumprod=None, max_rows=None, device=None):
    """A diffusion network as a fastspec :class:`~fastspec.DiffusionModel`.

    The result's ``denoise(z, sigma)`` is ``E[x | x + sigma * eps = z]``
    (fastspec's convention) computed from the network's prediction.

    Parameters
    ----------
    module : torch.nn.Module or callable
        Called with two tensors of the module's floating dtype, on its
        device: an input ``(K, dim)`` and a noise condition ``(K,)``. It
        returns a tensor ``(K, dim)``, or an object with a ``.sample`` tensor
        (diffusers' model outputs). What the call means depends on
        ``prediction``. It must be in eval mode.
    dim : int
        Dimension of the data (>= 1). A network on images wants its own
        shape: reshape inside a small wrapper module.
    prediction : {"x0", "eps", "v"}
        ``"x0"``: ``module(z, sigma)`` returns ``E[x | x + sigma * eps = z]``
        (the EDM / k-diffusion denoiser convention, fastspec's own); it is
        used unchanged.
        ``"eps"``, ``"v"``: a discrete-time variance-preserving model trained
        on ``alphas_cumprod``, called as ``module(x_t, t)`` with
        ``x_t = z / sqrt(1 + sigma**2)`` and ``t`` the timestep whose
        ``sigma_t = sqrt((1 - abar_t) / abar_t)`` equals ``sigma``: a float
        tensor, fractional between trained timesteps (linear interpolation of
        ``log sigma``). It predicts the noise ``eps`` of
        ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``, or the velocity
        ``v = sqrt(abar) eps - sqrt(1 - abar) x0``.
    alphas_cumprod : array_like (T,), optional
        Required for ``"eps"`` and ``"v"``, refused for ``"x0"``: the
        model's ``abar_t`` for ``t = 0..T-1`` (diffusers:
        ``scheduler.alphas_cumprod``), strictly decreasing in (0, 1); a
        NumPy array, a list or a tensor.
    max_rows : int, optional
        Largest number of rows per call of ``module`` (default: all rows of
        a round in one call).
    device : str or torch.device, optional
        Where the inputs are sent (default: the device of the module's first
        parameter or buffer, else the CPU). The module is not moved.

    Returns
    -------
    DiffusionModel
        ``denoise(z, sigma)``: ``z`` float64 ``(K, dim)``, ``sigma`` float64
        ``(K,)`` -> float64 ``(K, dim)``. For ``"eps"`` the estimate is
        ``x0 = z - sigma * eps``; for ``"v"`` it is
        ``x0 = z / (1 + sigma**2) - sigma / sqrt(1 + sigma**2) * v``, both
        computed in float64 from the network's output.

    Raises
    ------
    ValueError
        At construction: an unknown ``prediction``; ``alphas_cumprod``
        missing, given with ``"x0"``, or invalid (see
        :func:`fastspec.schedules.ddpm`); ``dim`` or ``max_rows`` not an int
        >= 1; an unknown ``device``; a module in training mode.
    fastspec.OracleError
        During sampling: for ``"eps"``/``"v"``, a ``sigma`` outside
        ``[sigma_0, sigma_{T-1}]``, the noise levels the model was trained on
        (sample with ``fastspec.schedules.ddpm(alphas_cumprod)``, which stays
        on them); a module in training mode; an output that is not a tensor
        ``(K, dim)``. Exceptions raised by the module itself are left to the
        sampler.

    Notes
    -----
    Conventions and their sources:

    - The discrete-time model and its ``alphas_cumprod``, ``eps`` and ``v``
      (``get_velocity``) follow diffusers' ``DDPMScheduler``; its
      ``prediction_type`` ``"epsilon"`` and ``"v_prediction"`` are
      ``"eps"`` and ``"v"`` here, and the x0 formulas are those of its
      ``step``.
    - The map from ``sigma`` to a fractional timestep, the input scaling
      ``1 / sqrt(1 + sigma**2)`` and the eps and v wrappers follow
      k-diffusion's ``DiscreteSchedule``, ``DiscreteEpsDDPMDenoiser`` and
      ``DiscreteVDDPMDenoiser`` (``sigma_data = 1``). One difference:
      k-diffusion clamps a ``sigma`` outside the trained range to the end
      timestep, so the network is silently asked about a noise level it never
      saw; this adapter raises instead.

    Examples
    --------
    >>> import torch, fastspec
    >>> from fastspec.torch import denoiser
    >>> abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    >>> class Eps(torch.nn.Module):  # exact for data ~ N(0, I): E[eps | x_t] = sqrt(1 - abar_t) x_t
    ...     def forward(self, x_t, t):
    ...         return (1 - abar[t.round().long()]).sqrt()[:, None] * x_t
    >>> model = denoiser(Eps().eval(), dim=4, prediction="eps", alphas_cumprod=abar)
    >>> sched = fastspec.schedules.ddpm(abar, n_steps=50)
    >>> fastspec.sample(model, schedule=sched, n_samples=3, seed=0).samples.shape
    (3, 4)
    """
    _check_module(module)
    dim = _as_int("dim", dim, 1)
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of 'x0', 'eps', 'v', got {prediction!r} "
                         "(diffusers' 'epsilon' is 'eps', its 'v_prediction' is 'v')")
    if prediction == "x0":
        if alphas_cumprod is not None:
            raise ValueError("alphas_cumprod is for prediction='eps' or 'v' (a discrete-time "
                             "model); an 'x0' module takes sigma itself: drop alphas_cumprod")
        log_sigmas = None
    else:
        if alphas_cumprod is None:
            raise ValueError(f"prediction={prediction!r} needs alphas_cumprod, the (T,) table "
                             "the model was trained on (diffusers: scheduler.alphas_cumprod)")
        abar = _as_alphas_cumprod(alphas_cumprod)
        # the very expression schedules.ddpm uses, so its sigmas land on integer timesteps
        sigmas = np.sqrt((1.0 - abar) / abar)
        log_sigmas = np.log(sigmas)
        sigma_lo, sigma_hi = float(sigmas[0]), float(sigmas[-1])
    rows = _as_max_rows(max_rows)
    dev, dtype = _placement(module, device)

    def denoise(z, sigma):
        _check_eval(module, OracleError)
        z = np.asarray(z, dtype=np.float64)
        sigma = np.asarray(sigma, dtype=np.float64)
        if prediction == "x0":
            inputs, cond = z, sigma
        else:
            outside = np.flatnonzero(~((sigma >= sigma_lo) & (sigma <= sigma_hi)))
            if outside.size:
                s = float(sigma[outside[0]])
                raise OracleError(
                    f"sigma = {s:.6g} is outside the noise levels the model was trained on, "
                    f"[{sigma_lo:.6g}, {sigma_hi:.6g}] (timesteps 0..{log_sigmas.shape[0] - 1}); "
                    "sample with fastspec.schedules.ddpm(alphas_cumprod) or a schedule whose "
                    "sigmas stay in that range")
            inputs = z / np.sqrt(1.0 + sigma ** 2)[:, None]
            cond = _sigma_to_t(sigma, log_sigmas)
        out = np.empty_like(z)
        with torch.inference_mode():
            for part in _chunks(z.shape[0], rows):
                x = torch.tensor(inputs[part], dtype=dtype, device=dev)
                c = torch.tensor(cond[part], dtype=dtype, device=dev)
                pred = _output_tensor(module(x, c), "sample", "a prediction (K, dim)")
                m = part.stop - part.start
                if tuple(pred.shape) != (m, dim):
                    raise OracleError(f"module returned shape {tuple(pred.shape)} for {m} rows; "
                                      f"expected (K, dim) = ({m}, {dim})")
                out[part] = pred.to("cpu", torch.float64).numpy()
        if prediction == "eps":
            return _x0_from_eps(z, sigma, out)
        if prediction == "v":
            return _x0_from_v(z, sigma, out)
        return out

    return DiffusionModel(denoise, dim)
