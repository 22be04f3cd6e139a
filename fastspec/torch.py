"""PyTorch adapters: a masked language model or a diffusion network as a fastspec model.

:func:`masked_lm` turns a masked (any-order) language model, prompted through a
template of token ids, into an :class:`fastspec.ARModel`; :func:`denoiser` turns a
diffusion network (images or vectors; x0-, eps-, v- or sample-prediction, or read
from a diffusers scheduler) into a :class:`fastspec.DiffusionModel`. Both call the
network under ``torch.inference_mode()``, in chunks of at most ``max_rows`` rows,
and hand fastspec NumPy arrays. See docs/TORCH.md.

This module imports torch (the optional extra: ``pip install "fastspec[torch]"``);
``import fastspec`` alone does not.

The network must answer deterministically: a module with a sub-module left in
training mode where that makes answers random (dropout with p > 0, batch
norm) is refused with a message asking for ``module.eval()``, and every
adapter asks the network about one probe row twice when it is built and
refuses differing answers, however the network is wrapped.
"""

import math

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "fastspec.torch needs PyTorch; install it with: pip install \"fastspec[torch]\"") from exc

from . import ARModel, DiffusionModel, OracleError
from ._checks import check_callable, check_int
from .diffusion.oracle import as_shape
from .schedules import ZERO_SNR_SIGMA, _as_alphas_cumprod

__all__ = ["masked_lm", "denoiser", "PREDICTIONS"]

#: Prediction conventions accepted by :func:`denoiser`.
PREDICTIONS = ("x0", "eps", "v", "sample")


# -- shared helpers ----------------------------------------------------------------------------

def _as_max_rows(max_rows):
    return check_int("max_rows", max_rows, 1, allow_none=True)


def _check_module(module):
    check_callable("module", module, "a callable (a torch.nn.Module)")
    _check_eval(module, ValueError)


def _random_in_training(sub):
    # Dropout with p > 0 draws a fresh mask per call; batch norm in training mode
    # normalises with the batch's statistics. A dropout of p = 0 is harmless.
    if isinstance(sub, torch.nn.modules.dropout._DropoutNd):
        return sub.p > 0
    return isinstance(sub, torch.nn.modules.batchnorm._BatchNorm)


def _check_eval(module, error):
    # The samplers' exactness rests on one fixed answer per query.
    if isinstance(module, torch.nn.Module):
        for name, sub in module.named_modules():
            if sub.training and _random_in_training(sub):
                what = type(sub).__name__
                where = "module" if not name else f"sub-module {name!r} ({what}) of module"
                raise error(f"{where} is in training mode ({what} would make its answers "
                            "random, which breaks exact sampling); call module.eval() first")


def _check_deterministic(call, probe):
    """Answer one probe row in a call of two rows, then alone; refuse differing answers.

    Catches randomness however the network is wrapped (a lambda, functools.partial,
    a module in training mode whose dropout is functional): exact sampling needs
    one fixed answer per query, whatever else the call holds.
    """
    with torch.inference_mode():
        two = call(probe(2)).to("cpu", torch.float64)
        one = call(probe(1)).to("cpu", torch.float64)
    scale = float(one.abs().max()) if one.numel() else 0.0
    tol = 1e-4 * max(scale, 1.0)
    worst = float((two[0] - one[0]).abs().max()) if one.numel() else 0.0
    if not worst <= tol:
        raise ValueError(
            f"module gave different answers to the same input (largest difference {worst:.3g} "
            f"on a scale of {scale:.3g}): it is random (dropout in training mode? call "
            ".eval() on the network inside your wrapper), and exact sampling needs one fixed "
            "answer per query")
    return one


def _placement(module, device):
    """Device and floating dtype for the module's inputs.

    The first floating parameter or buffer decides (a module without any runs
    on the CPU in torch's default dtype); ``device`` overrides the device.
    The module itself is never moved.

    Raises ValueError for an unknown device, one torch cannot use here (e.g.
    ``"cuda"`` without CUDA), or a module on the ``meta`` device (no weights).
    """
    found = None
    if isinstance(module, torch.nn.Module):
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point():
                found = tensor
                break
    dtype = found.dtype if found is not None else torch.get_default_dtype()
    if found is not None and found.device.type == "meta":
        raise ValueError("module has its weights on the 'meta' device (built without data, "
                         "e.g. by init_empty_weights or device_map='meta'); load its weights "
                         "first (module.to_empty(device='cpu') then load_state_dict)")
    if device is not None:
        try:
            dev = torch.device(device)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda:0', got "
                             f"{device!r}: {exc}") from None
    else:
        dev = found.device if found is not None else torch.device("cpu")
    if dev.type == "meta":
        raise ValueError("device='meta' holds no data; pass 'cpu' or a GPU device")
    try:
        torch.empty(1, device=dev)
    except (AssertionError, RuntimeError) as exc:
        raise ValueError(f"device {str(dev)!r} cannot be used here ({exc}); pass device='cpu' "
                         "or one this torch build supports") from None
    return dev, dtype


def _chunks(n_rows, max_rows):
    step = max_rows if max_rows is not None else max(n_rows, 1)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _output_tensor(out, attribute, what):
    # Hugging Face models return an output object: transformers' masked LMs carry
    # `.logits`, diffusers' UNets carry `.sample`; with return_dict=False both
    # return a tuple whose first element is that tensor.
    if isinstance(out, torch.Tensor):
        return out
    inner = getattr(out, attribute, None)
    if isinstance(inner, torch.Tensor):
        return inner
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise OracleError(f"module returned {type(out).__name__}; expected {what} as a tensor, "
                      f"an object with a .{attribute} tensor, or a tuple whose first element "
                      "is that tensor")


# -- masked language models ----------------------------------------------------------------------

#: Above this many symbols (a whole vocabulary) masked_lm answers in float32: half
#: the memory of a (K, n, q) answer; the engine renormalises every marginal in float64.
FLOAT32_ABOVE = 4096


def _as_symbols(symbols, q, mask_id):
    if hasattr(symbols, "detach"):
        symbols = symbols.detach().cpu().numpy()
    sym = np.asarray(symbols)
    if sym.ndim != 1 or sym.dtype.kind not in "iu":
        raise ValueError(f"symbols must be a 1-D sequence of int token ids, got "
                         f"{sym.dtype} array of shape {sym.shape}")
    if q is not None and sym.shape[0] != q:
        raise ValueError(f"symbols must hold q = {q} token ids (one per fastspec symbol "
                         f"0..{q - 1}), got {sym.shape[0]}: {sym.tolist()}")
    if sym.shape[0] < 2:
        raise ValueError(f"symbols must hold at least 2 token ids, got {sym.tolist()}")
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


def _as_template(template, n):
    if template is None:
        if n is None:
            raise ValueError("give n (the number of free slots) or template (token ids with -1 "
                             "at the free slots)")
        return np.full(check_int("n", n, 1), -1, dtype=np.int64)
    if hasattr(template, "detach"):
        template = template.detach().cpu().numpy()
    tpl = np.asarray(template)
    if tpl.ndim != 1 or tpl.dtype.kind not in "iu" or tpl.shape[0] < 1:
        raise ValueError(f"template must be a 1-D sequence of int token ids (-1 at the free "
                         f"slots), got {tpl.dtype} array of shape {tpl.shape}")
    tpl = tpl.astype(np.int64)
    if (tpl < -1).any():
        i = int(np.flatnonzero(tpl < -1)[0])
        raise ValueError(f"template must hold token ids >= 0 or -1 (a free slot), got "
                         f"template[{i}] = {tpl[i]}")
    free = int((tpl == -1).sum())
    if free == 0:
        raise ValueError("template has no free slot; mark the slots to sample with -1")
    if n is not None and check_int("n", n, 1) != free:
        raise ValueError(f"n = {n} disagrees with template, which has {free} free slots (-1); "
                         "drop n")
    return tpl


def _as_attention_mask(attention_mask, length):
    if attention_mask is None:
        return None
    if hasattr(attention_mask, "detach"):
        attention_mask = attention_mask.detach().cpu().numpy()
    mask = np.asarray(attention_mask)
    if mask.shape != (length,) or mask.dtype.kind not in "biu" or not np.isin(mask, (0, 1)).all():
        raise ValueError(f"attention_mask must be {length} zeros and ones (one per token of the "
                         f"template), got {mask.dtype} array of shape {mask.shape}")
    return mask.astype(np.int64)


def _logits_at(module, dev, att_t, length):
    """``forward(ids, where)`` of :func:`masked_lm`: the module's logits ``(m, W, V)`` at token
    positions ``where`` ``(m, W)`` of the rows ``ids`` ``(m, L)`` (``where`` None: all ``L``).

    With transformers' ``get_output_embeddings()``, a hook on that output layer keeps only the
    hidden states at ``where`` before it, so the logits are computed there only; else the
    logits are sliced.
    """
    head = getattr(module, "get_output_embeddings", None)
    head = head() if callable(head) else None
    if not isinstance(head, torch.nn.Module):
        head = None

    def forward(ids, where=None):
        """Logits (m, W, V) at token positions ``where`` (m, W) (None: all L)."""
        batch = torch.as_tensor(ids, dtype=torch.long, device=dev)
        kwargs = {} if att_t is None else {"attention_mask": att_t.expand(batch.shape[0], -1)}
        hook = None
        if where is not None and head is not None:
            index = torch.as_tensor(where, device=dev)

            def gather(_, args):   # hidden states (m, L, H) -> (m, W, H) before the head
                h = args[0]
                picked = h[torch.arange(h.shape[0], device=h.device)[:, None],
                           index.to(h.device)]
                return (picked,) + tuple(args[1:])
            hook = head.register_forward_pre_hook(gather)
        try:
            logits = _output_tensor(module(batch, **kwargs), "logits", "logits (K, L, V)")
        finally:
            if hook is not None:
                hook.remove()
        m = batch.shape[0]
        width = length if where is None or head is None else where.shape[1]
        if logits.ndim != 3 or tuple(logits.shape[:2]) != (m, width):
            raise OracleError(f"module returned logits of shape {tuple(logits.shape)} for {m} "
                              f"rows of length {length}; expected (K, L, V) = ({m}, {length}, V)")
        if where is not None and head is None:
            logits = logits[torch.arange(m, device=logits.device)[:, None],
                            torch.as_tensor(where, device=logits.device)]
        return logits

    return forward


def _check_vocab_hint(module, mask_id, tpl, sym):
    """With transformers' ``config.vocab_size``, check the token ids before the first call."""
    hint = getattr(getattr(module, "config", None), "vocab_size", None)
    if isinstance(hint, int):
        for what, ids in (("mask_id", np.array([mask_id])), ("template", tpl),
                          ("symbols", sym if sym is not None else np.zeros(0, np.int64))):
            if ids.size and int(ids.max()) >= hint:
                raise ValueError(f"{what} must hold token ids < V = {hint} (the model's "
                                 f"config.vocab_size), got {int(ids.max())}")


def _symbols_in_vocabulary(sym, mask_id, vocab):
    """The symbols' token ids checked against the logits' vocabulary size ``vocab`` (``sym``
    None: the whole vocabulary, the mask token included, which gets probability 0)."""
    if sym is None:
        if mask_id >= vocab:
            raise ValueError(f"mask_id = {mask_id} must be < V = {vocab}, the vocabulary size "
                             "of the module's logits")
        return np.arange(vocab, dtype=np.int64)
    if int(sym.max()) >= vocab:
        raise ValueError(f"symbols must be token ids < V = {vocab} (the vocabulary size of the "
                         f"module's logits), got {int(sym.max())} (symbol "
                         f"{int(np.argmax(sym))}); pass the token ids the model uses")
    return sym


def _free_positions(free):
    """int64 ``(K, W)``: the free positions of each row of ``free`` (bool ``(K, n)``), in
    order, padded with -1 (``W`` the most free positions of a row, at least 1).

    Only the free positions are asked for: pinned rows are ignored, and a real vocabulary
    makes every logit row expensive.
    """
    k = free.shape[0]
    width = int(free.sum(axis=1).max(initial=0))
    want = np.full((k, max(width, 1)), -1, dtype=np.int64)
    order = np.argsort(~free, axis=1, kind="stable")[:, :width]
    keep = np.take_along_axis(free, order, axis=1)
    want[:, :width] = np.where(keep, order, -1)
    return want


def masked_lm(module, *, mask_id, n=None, q=None, symbols=None, template=None,
              attention_mask=None, max_rows=None, device=None):
    """A masked (any-order) language model as a fastspec :class:`~fastspec.ARModel`.

    Parameters
    ----------
    module : torch.nn.Module or callable
        ``module(ids)`` (or ``module(ids, attention_mask=mask)``) with ``ids``
        a LongTensor ``(K, L)`` of token ids returns logits ``(K, L, V)``, an
        object with a ``.logits`` tensor (transformers' ``MaskedLMOutput``) or
        a tuple whose first element is the logits (``return_dict=False``).
        Free slots hold ``mask_id``, pinned ones the token of their symbol.
        It must answer deterministically (eval mode).
    mask_id : int
        Token id written at free slots (>= 0, not among ``symbols``); with
        transformers, ``tokenizer.mask_token_id``.
    n : int, optional
        Number of free slots, the fastspec sequence length (>= 1); default:
        the number of ``-1`` in ``template``.
    q : int, optional
        Number of fastspec symbols (>= 2); default ``len(symbols)``, or the
        vocabulary size ``V`` when ``symbols`` is None.
    symbols : sequence of int, optional
        ``symbols[x]`` is the token id of fastspec symbol ``x``: distinct ids
        ``>= 0`` and ``< V``. Default: ``0..q-1`` if ``q`` is given, else the
        whole vocabulary ``0..V-1`` (samples are then token ids, and the mask
        token gets probability 0).
    template : sequence of int, optional
        The model's input in token-id space, length ``L``: ``-1`` at the
        ``n`` free slots (fastspec positions ``0..n-1`` in order), any other
        entry a fixed token (CLS/SEP, a prompt, padding) that is never
        sampled. Default: ``n`` free slots and nothing else.
    attention_mask : sequence of 0/1, optional
        ``(L,)``; passed as ``module(ids, attention_mask=...)``, the same for
        every row (e.g. 0 on padding). Default: not passed.
    max_rows : int, optional
        Largest number of rows per call of ``module`` (default: all rows of
        a round in one call).
    device : str or torch.device, optional
        Where the token ids are sent (default: the device of the module's
        first parameter or buffer, else the CPU). The module is not moved.

    Returns
    -------
    ARModel
        Its oracle ``marginals(ctx)`` maps ``ctx`` int64 ``(K, n)`` (``-1`` =
        free) to ``(K, n, q)``, and ``marginals(ctx, positions)`` with
        ``positions`` int64 ``(K, W)`` (the free positions wanted per row,
        padded with ``-1``) to ``(K, W, q)``: at each position, the softmax,
        computed in float64, of the logits of the ``q`` symbol ids only (the
        mask, special tokens and every other id are dropped first). The answer
        is float64, or float32 above :data:`FLOAT32_ABOVE` symbols. Rows of
        pinned positions and padded slots are zero. The logits are computed
        only at the positions asked for: through a hook on the output layer
        when the module has transformers' ``get_output_embeddings()``, else by
        slicing the logits before the softmax.

    Raises
    ------
    TypeError
        At construction: ``module`` not callable, or ``n``, ``q``, ``mask_id``
        or ``max_rows`` not an int.
    ValueError
        At construction: ``n``, ``q``, ``mask_id``, ``symbols``,
        ``template``, ``attention_mask`` or ``max_rows`` invalid; an unknown
        or unusable ``device`` (``"cuda"`` without CUDA, ``"meta"``); a
        module in training mode with active dropout, or one that answers the
        same probe row differently (a random network, whatever wraps it). The
        module is called once at construction, on probe rows of masks.
    fastspec.OracleError
        A module that returns something other than logits ``(K, L, V)``, or a
        ``V`` too small for ``symbols``. Exceptions raised by the module
        itself pass through unchanged.

    Notes
    -----
    Any-order masked LMs (BERT-style models, masked diffusion language
    models) predict every masked slot given the unmasked ones: that forward
    pass is fastspec's marginal oracle. Each round makes one batched pass
    over its contexts (split by ``max_rows``).

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
    >>> framed = masked_lm(Flat().eval(), template=[3, -1, -1, 3], symbols=[0, 1, 2], mask_id=4)
    >>> fastspec.sample(framed, n_samples=2, seed=0).samples.shape
    (2, 2)
    """
    _check_module(module)
    mask_id = check_int("mask_id", mask_id, 0)
    tpl = _as_template(template, n)
    n = int((tpl == -1).sum())
    slots = np.flatnonzero(tpl == -1)           # token position of fastspec position i
    length = tpl.shape[0]
    att = _as_attention_mask(attention_mask, length)
    if q is not None:
        q = check_int("q", q, 2)
    whole = symbols is None and q is None
    if symbols is None and q is not None:
        symbols = np.arange(q)
    sym = None if whole else _as_symbols(symbols, q, mask_id)
    rows = _as_max_rows(max_rows)
    dev, _ = _placement(module, device)
    att_t = None if att is None else torch.as_tensor(att, device=dev)
    forward = _logits_at(module, dev, att_t, length)
    _check_vocab_hint(module, mask_id, tpl, sym)
    probe_ids = np.where(tpl >= 0, tpl, mask_id)
    first = _check_deterministic(lambda ids: forward(ids),
                                 lambda k: np.repeat(probe_ids[None], k, axis=0))
    sym = _symbols_in_vocabulary(sym, mask_id, int(first.shape[2]))
    q = sym.shape[0]
    sym_index = None if whole else torch.as_tensor(sym, device=dev)
    out_dtype = np.float32 if q > FLOAT32_ABOVE else np.float64
    # float64 softmax in pieces of about 2**23 values (64 MiB), whatever q
    piece = max(1, (1 << 23) // q)

    def marginals(ctx, positions=None):
        _check_eval(module, OracleError)
        ctx = np.asarray(ctx)
        k = ctx.shape[0]
        free = ctx < 0
        want = _free_positions(free) if positions is None else np.asarray(positions, np.int64)
        probs = np.zeros(((k, n) if positions is None else want.shape) + (q,), dtype=out_dtype)
        ids = np.repeat(np.where(tpl >= 0, tpl, mask_id)[None], k, axis=0)
        tokens = sym[np.maximum(ctx, 0)]
        ids[:, slots] = np.where(free, mask_id, tokens)
        valid = want >= 0
        where = slots[np.maximum(want, 0)]            # token positions (-1 pads read slot 0)
        with torch.inference_mode():
            for part in _chunks(k, rows):
                logits = forward(ids[part], where[part])
                if sym_index is not None:
                    if int(sym.max()) >= logits.shape[2]:
                        raise OracleError(
                            f"symbols must be token ids < V = {logits.shape[2]} (the vocabulary "
                            f"size of the module's logits), got {int(sym.max())}")
                    logits = logits.index_select(-1, sym_index.to(logits.device))
                flat = logits.reshape(-1, logits.shape[2])
                r_idx, w_idx = np.nonzero(valid[part])
                keep = torch.as_tensor(r_idx * want.shape[1] + w_idx, device=flat.device)
                for lo in range(0, keep.shape[0], piece):
                    sel = flat.index_select(0, keep[lo:lo + piece]).to(torch.float64)
                    if whole:
                        sel[:, mask_id] = -torch.inf
                    p = torch.softmax(sel, dim=-1).cpu().numpy()
                    rr = r_idx[lo:lo + piece] + part.start
                    ww = w_idx[lo:lo + piece]
                    if positions is None:
                        probs[rr, want[rr, ww]] = p
                    else:
                        probs[rr, ww] = p
        return probs

    model = ARModel(marginals, n=n, q=q, positions=True)
    model.symbols = sym
    return model


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


#: diffusers' ``prediction_type`` names and this module's.
DIFFUSERS_PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "sample"}


def _from_scheduler(scheduler):
    """``(prediction, alphas_cumprod, x0_fix)`` read from a diffusers scheduler's config."""
    config = getattr(scheduler, "config", None)
    abar = getattr(scheduler, "alphas_cumprod", None)
    if config is None or abar is None:
        raise ValueError(f"scheduler must be a diffusers scheduler with .config and "
                         f".alphas_cumprod (DDPMScheduler, DDIMScheduler), got "
                         f"{type(scheduler).__name__}")
    kind = config.get("prediction_type", "epsilon")
    if kind not in DIFFUSERS_PREDICTIONS:
        raise ValueError(f"scheduler.config.prediction_type = {kind!r} is not supported; "
                         f"expected one of {sorted(DIFFUSERS_PREDICTIONS)}")
    fix = None
    if config.get("thresholding", False):
        ratio = float(config.get("dynamic_thresholding_ratio", 0.995))
        top = float(config.get("sample_max_value", 1.0))
        fix = ("threshold", ratio, top)
    elif config.get("clip_sample", False):
        fix = ("clip", float(config.get("clip_sample_range", 1.0)))
    return DIFFUSERS_PREDICTIONS[kind], abar, fix


def _fix_x0(x0, fix):
    """diffusers' clipping or dynamic thresholding of an x0 estimate (K, dim), per row."""
    if fix is None:
        return x0
    if fix[0] == "clip":
        return np.clip(x0, -fix[1], fix[1])
    _, ratio, top = fix
    # _threshold_sample: s = the ratio-quantile of |x0| per sample, clamped to [1, top]
    level = np.clip(np.quantile(np.abs(x0), ratio, axis=1), 1.0, top)[:, None]
    return np.clip(x0, -level, level) / level


def _infer_shape(module):
    config = getattr(module, "config", None)
    channels = getattr(config, "in_channels", None)
    size = getattr(config, "sample_size", None)
    if isinstance(channels, int) and size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        return (channels, *size)
    raise ValueError("give shape (the shape of one sample, e.g. (3, 32, 32)) or dim; it "
                     f"cannot be read from {type(module).__name__} (no config.in_channels and "
                     "config.sample_size)")


def _sample_shape(module, shape, dim):
    """The shape of one sample from ``shape`` or ``dim`` (see :func:`denoiser`)."""
    if shape is None and dim is None:
        shape = _infer_shape(module)
    if shape is None:
        return (check_int("dim", dim, 1),)
    shape = as_shape(shape)
    if dim is not None and check_int("dim", dim, 1) != math.prod(shape):
        raise ValueError(f"dim = {dim} disagrees with shape = {shape}; give one of them")
    return shape


def _prediction_of(prediction, alphas_cumprod, scheduler):
    """``(prediction, fix, sigmas, pure)`` of :func:`denoiser`'s arguments.

    ``fix``: the scheduler's treatment of the x0 estimate (None without one);
    ``sigmas``: float64 ``(T,)`` noise level of each trained timestep (None for
    "x0"); ``pure``: the table ends at zero terminal SNR (its last timestep,
    left out of ``sigmas``, is pure noise).
    """
    fix = None
    zero_last = False
    if scheduler is not None:
        if alphas_cumprod is not None:
            raise ValueError("give scheduler or alphas_cumprod, not both (the scheduler holds "
                             "its alphas_cumprod)")
        kind, alphas_cumprod, fix = _from_scheduler(scheduler)
        if prediction is not None and prediction != kind:
            raise ValueError(f"prediction = {prediction!r} disagrees with the scheduler's "
                             f"prediction_type (which is {kind!r} here); drop prediction")
        prediction, zero_last = kind, True
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r} "
                         "(diffusers' 'epsilon' is 'eps', its 'v_prediction' is 'v'; or pass "
                         "scheduler=)")
    if prediction == "x0":
        if alphas_cumprod is not None:
            raise ValueError("alphas_cumprod is for prediction='eps', 'v' or 'sample' (a "
                             "discrete-time model); an 'x0' module takes sigma itself: drop "
                             "alphas_cumprod")
        return prediction, fix, None, False
    if alphas_cumprod is None:
        raise ValueError(f"prediction={prediction!r} needs alphas_cumprod, the (T,) table "
                         "the model was trained on (diffusers: scheduler.alphas_cumprod), "
                         "or scheduler=")
    abar = _as_alphas_cumprod(alphas_cumprod, zero_last=zero_last)
    pure = abar[-1] == 0                       # zero terminal SNR: t = T-1 is pure noise
    table = abar[:-1] if pure else abar
    # the very expression schedules.ddpm uses, so its sigmas land on integer timesteps
    return prediction, fix, np.sqrt((1.0 - table) / table), pure


def denoiser(module, *, shape=None, dim=None, prediction=None, alphas_cumprod=None,
             scheduler=None, max_rows=None, device=None):
    """A diffusion network as a fastspec :class:`~fastspec.DiffusionModel`.

    The result's ``denoise(z, sigma)`` is ``E[x | x + sigma * eps = z]``
    (fastspec's convention) computed from the network's prediction.

    Parameters
    ----------
    module : torch.nn.Module or callable
        Called as ``module(x, cond)``: ``x`` ``(K, *shape)`` in the module's
        floating dtype on its device, ``cond`` ``(K,)`` (float32 for a
        16-bit module, so that timesteps such as 999 and 257 arrive exactly;
        else the module's dtype). It returns ``(K, *shape)`` as a tensor, an
        object with a ``.sample`` tensor (diffusers' model outputs) or a tuple
        whose first element is that tensor (``return_dict=False``). What the
        call means depends on ``prediction``. It must answer
        deterministically (eval mode).
    shape : tuple of int, optional
        Shape of one sample, e.g. ``(C, H, W)``; ``res.samples`` is then
        ``(n_samples, *shape)``. Default: ``(dim,)``, or for a diffusers
        UNet ``(config.in_channels, *config.sample_size)``.
    dim : int, optional
        The same as ``shape=(dim,)``.
    prediction : {"x0", "eps", "v", "sample"}
        ``"x0"``: ``module(z, sigma)`` returns ``E[x | x + sigma * eps = z]``
        (the EDM / k-diffusion denoiser convention, fastspec's own), used
        unchanged.
        ``"eps"``, ``"v"``, ``"sample"``: a discrete-time variance-preserving
        model trained on ``alphas_cumprod``, called as ``module(x_t, t)``
        with ``x_t = z / sqrt(1 + sigma**2)`` and ``t`` the timestep whose
        ``sigma_t = sqrt((1 - abar_t) / abar_t)`` equals ``sigma``
        (fractional between trained timesteps: linear in ``log sigma``). It
        predicts the noise ``eps`` of ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``,
        the velocity ``v = sqrt(abar) eps - sqrt(1 - abar) x0``, or ``x0``
        itself (diffusers' ``"sample"``). Default: from ``scheduler``.
    alphas_cumprod : array_like (T,), optional
        For ``"eps"``, ``"v"``, ``"sample"``: the model's ``abar_t`` for
        ``t = 0..T-1``, strictly decreasing in (0, 1); a NumPy array, a list
        or a tensor. Default: from ``scheduler``.
    scheduler : diffusers scheduler, optional
        A ``DDPMScheduler`` or ``DDIMScheduler``: gives ``prediction`` (its
        ``prediction_type``), ``alphas_cumprod`` (a last value 0, zero
        terminal SNR, is allowed) and its treatment of the x0 estimate,
        ``clip_sample`` (clamp to ``clip_sample_range``) or ``thresholding``
        (dynamic thresholding), which the denoiser then applies as diffusers'
        ``step`` does. Pair it with :func:`fastspec.schedules.from_diffusers`.
    max_rows : int, optional
        Largest number of rows per call of ``module`` (default: all rows of
        a round in one call).
    device : str or torch.device, optional
        Where the inputs are sent (default: the device of the module's first
        parameter or buffer, else the CPU). The module is not moved.

    Returns
    -------
    DiffusionModel
        ``denoise(z, sigma)``: ``z`` float64 ``(K, *shape)``, ``sigma``
        float64 ``(K,)`` -> float64 ``(K, *shape)``. For ``"eps"`` the
        estimate is ``x0 = z - sigma * eps``; for ``"v"`` it is
        ``x0 = z / (1 + sigma**2) - sigma / sqrt(1 + sigma**2) * v``, both
        computed in float64 from the network's output.

    Raises
    ------
    TypeError
        At construction: ``module`` not callable, or ``shape``, ``dim`` or
        ``max_rows`` not made of ints.
    ValueError
        At construction: an unknown ``prediction``; ``alphas_cumprod``
        missing, given with ``"x0"``, or invalid (see
        :func:`fastspec.schedules.ddpm`); ``shape``, ``dim`` or ``max_rows``
        invalid; an unknown or unusable ``device`` (``"cuda"`` without CUDA,
        weights on ``"meta"``); a module in training mode with active
        dropout, or one that answers the same probe row differently (a random
        network, whatever wraps it). The module is called once at
        construction, on probe rows.
    fastspec.OracleError
        During sampling: for the discrete-time predictions, a ``sigma``
        outside ``[sigma_0, sigma_{T-1}]``, the noise levels the model was
        trained on (sample with ``fastspec.schedules.ddpm`` or
        ``from_diffusers``, which stay on them), or ``"eps"`` asked at zero
        terminal SNR, where x0 cannot be had from eps; an output of another
        shape. Exceptions raised by the module itself are left to the
        sampler.

    Notes
    -----
    Conventions and their sources:

    - The discrete-time model and its ``alphas_cumprod``, ``eps`` and ``v``
      (``get_velocity``), x0 from each prediction, ``clip_sample`` and
      ``_threshold_sample`` follow diffusers' ``DDPMScheduler.step``.
    - The map from ``sigma`` to a fractional timestep, the input scaling
      ``1 / sqrt(1 + sigma**2)`` and the eps and v wrappers follow
      k-diffusion's ``DiscreteSchedule``, ``DiscreteEpsDDPMDenoiser`` and
      ``DiscreteVDDPMDenoiser`` (``sigma_data = 1``). k-diffusion clamps a
      ``sigma`` outside the trained range to the end timestep; this adapter
      raises instead.

    Examples
    --------
    >>> import torch, fastspec
    >>> from fastspec.torch import denoiser
    >>> abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    >>> class Eps(torch.nn.Module):  # exact for data ~ N(0, I): E[eps | x_t] = sqrt(1 - abar_t) x_t
    ...     def forward(self, x_t, t):
    ...         return (1 - abar[t.round().long()]).sqrt()[:, None, None] * x_t
    >>> model = denoiser(Eps().eval(), shape=(2, 3), prediction="eps", alphas_cumprod=abar)
    >>> sched = fastspec.schedules.ddpm(abar, n_steps=50)
    >>> fastspec.sample(model, schedule=sched, n_samples=3, seed=0).samples.shape
    (3, 2, 3)
    """
    _check_module(module)
    shape = _sample_shape(module, shape, dim)
    prediction, fix, sigmas, pure = _prediction_of(prediction, alphas_cumprod, scheduler)
    if sigmas is not None:
        log_sigmas = np.log(sigmas)
        sigma_lo, sigma_hi = float(sigmas[0]), float(sigmas[-1])
    else:
        log_sigmas = None
    rows = _as_max_rows(max_rows)
    dev, dtype = _placement(module, device)
    # a 16-bit float cannot hold every timestep (999 -> 1000.0, 257 -> 256 in bf16)
    cond_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    size = math.prod(shape)

    def call(x, cond):
        pred = _output_tensor(module(torch.as_tensor(x, dtype=dtype, device=dev),
                                     torch.as_tensor(cond, dtype=cond_dtype, device=dev)),
                              "sample", "a prediction (K, *shape)")
        if tuple(pred.shape) != tuple(x.shape):
            raise OracleError(f"module returned shape {tuple(pred.shape)} for inputs of shape "
                              f"{tuple(x.shape)}; expected (K, *shape) = {tuple(x.shape)}")
        return pred

    def denoise(z, sigma):
        _check_eval(module, OracleError)
        k = z.shape[0]
        z = np.asarray(z, dtype=np.float64).reshape(k, size)
        sigma = np.asarray(sigma, dtype=np.float64)
        if prediction == "x0":
            inputs, cond = z, sigma
        else:
            top = sigma >= ZERO_SNR_SIGMA if pure else np.zeros(k, dtype=bool)
            outside = np.flatnonzero(~(((sigma >= sigma_lo) & (sigma <= sigma_hi)) | top))
            if outside.size:
                s = float(sigma[outside[0]])
                raise OracleError(
                    f"sigma = {s:.6g} is outside the noise levels the model was trained on, "
                    f"[{sigma_lo:.6g}, {sigma_hi:.6g}] (timesteps 0..{log_sigmas.shape[0] - 1}); "
                    "sample with fastspec.schedules.ddpm(alphas_cumprod) or a schedule whose "
                    "sigmas stay in that range")
            if top.any() and prediction == "eps":
                raise OracleError("timestep T-1 has zero signal (alphas_cumprod[-1] = 0), where "
                                  "an eps-prediction model gives no estimate of x0 (diffusers "
                                  "divides by 0 there); zero terminal SNR needs a v- or "
                                  "sample-prediction model")
            inputs = z / np.sqrt(1.0 + sigma ** 2)[:, None]
            cond = _sigma_to_t(np.minimum(sigma, sigma_hi), log_sigmas)
            cond[top] = log_sigmas.shape[0]       # T - 1 for the zero-SNR table
        out = np.empty_like(z)
        with torch.inference_mode():
            for part in _chunks(k, rows):
                x = inputs[part].reshape((-1,) + shape)
                out[part] = call(x, cond[part]).to("cpu", torch.float64).reshape(-1, size).numpy()
        if prediction == "eps":
            x0 = _x0_from_eps(z, sigma, out)
        elif prediction == "v":
            x0 = _x0_from_v(z, sigma, out)
        else:
            x0 = out
        return _fix_x0(x0, fix).reshape((k,) + shape)

    # one probe row, twice in a call and once alone: a random network is refused here
    probe = np.random.default_rng(0).standard_normal((1,) + shape)
    probe_cond = 1.0 if prediction == "x0" else float(log_sigmas.shape[0] // 2)
    _check_deterministic(lambda x: call(x, np.full(x.shape[0], probe_cond)),
                         lambda k: np.repeat(probe, k, axis=0))
    return DiffusionModel(denoise, shape=shape)
