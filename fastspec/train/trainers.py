"""Training of the three pretrained models (torch; ``python -m fastspec.train``).

Every run is a fixed function of its seed: torch and numpy generators are seeded,
torch uses the thread count given (1 by default: the machine is shared), and the
number of steps is fixed (a wall-clock cap only stops a run that is far slower
than expected, and the weight file records it). The best checkpoint on the
validation split is kept; the test split is never looked at here (the
held-out scores come from ``python -m fastspec.bench pretrained``).

Weight files: 2-D weight matrices are stored as float16 (half the size; every
reported score is measured on the stored weights), vectors and buffers as float32,
and the configuration as JSON (``config_json``).
"""

import copy
import json
import math
import os
import time

import numpy as np
import torch
from torch.nn import functional as F

from ..models.pretrained import (WEIGHT_FILES, digits_to_unit, encode_text, load_weights,
                                 quantise_digits)
from . import baselines, data
from .nets import EDMDenoiser, MaskedMLP, MaskedTransformer, from_weights

#: Where the weight files go (inside the package, shipped as package data).
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "weights")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- any-order objective ----------------------------------------------------------------

def random_free_mask(batch, n, generator):
    """Free positions for the any-order objective: for each row, ``m ~ U{1..n}`` positions
    chosen uniformly. Returns a bool (batch, n) mask and ``m`` (batch,) float."""
    m = torch.randint(1, n + 1, (batch, 1), generator=generator)
    ranks = torch.rand(batch, n, generator=generator).argsort(1).argsort(1)
    return ranks < m, m[:, 0].float()


def any_order_loss(module, x, generator):
    """Per-item any-order NLL estimate (nats), shape (batch,).

    With ``m`` free positions drawn uniformly from ``1..n`` and the free set uniform,
    ``n / m * sum_{free} -log p(x_i | pinned)`` is an unbiased estimate of the
    expected ``-log p_sigma(x)`` over uniformly random orders sigma (ARDM,
    Hoogeboom et al. 2022, eq. 4).
    """
    n = x.shape[1]
    free, m = random_free_mask(x.shape[0], n, generator)
    logits = module(torch.where(free, torch.full_like(x, -1), x))
    ce = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
    return n * (ce * free).sum(1) / m


def heldout_any_order(module, x, repeats, seed, batch=512):
    """Mean of :func:`any_order_loss` over ``repeats`` passes of ``x`` with fixed masks."""
    g = torch.Generator().manual_seed(seed)
    module.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(repeats):
            for i in range(0, x.shape[0], batch):
                total += float(any_order_loss(module, x[i:i + batch], g).sum())
    module.train()
    return total / (repeats * x.shape[0])


# -- one training loop for all three -------------------------------------------------------

def fit(module, batch_loss, val_loss, *, steps, lr, weight_decay, eval_every, max_minutes,
        warmup=200):
    """AdamW with linear warm-up and cosine decay; keeps the best validation state.

    Returns
    -------
    dict
        ``best_val``, ``best_step``, ``steps_done``, ``seconds``, ``capped`` (the
        wall-clock cap stopped the run early).
    """
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)

    def lr_factor(s):
        return min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    best, best_state, best_step = math.inf, None, 0
    t0 = time.perf_counter()
    capped = False
    running, since = 0.0, 0
    for step in range(1, steps + 1):
        loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        sched.step()
        running += float(loss.detach())
        since += 1
        if step % eval_every == 0 or step == steps:
            v = val_loss()
            if v < best:
                best, best_state, best_step = v, copy.deepcopy(module.state_dict()), step
            minutes = (time.perf_counter() - t0) / 60
            log(f"step {step}/{steps}  train {running / since:.4f}  val {v:.4f}  "
                f"(best {best:.4f} at {best_step})  {minutes:.1f} min")
            running, since = 0.0, 0
            if minutes > max_minutes:
                log(f"wall-clock cap of {max_minutes} min reached: stopping at step {step}")
                capped = True
                break
    module.load_state_dict(best_state)
    return dict(best_val=best, best_step=best_step, steps_done=step,
                seconds=time.perf_counter() - t0, capped=capped)


def fit_config(module, batch_loss, val_loss, cfg, max_minutes, *, seed, threads, objective):
    """:func:`fit` with the settings of a trainer's ``cfg``; its record also holds the
    seed, threads, torch's version, ``cfg`` and what the validation loss measures."""
    rec = fit(module, batch_loss, val_loss, steps=cfg["steps"], lr=cfg["lr"],
              weight_decay=cfg["weight_decay"], eval_every=cfg["eval_every"],
              max_minutes=max_minutes)
    rec.update(seed=seed, threads=threads, torch=torch.__version__, config=cfg,
               objective=objective)
    return rec


def save_weights(name, module, arch, kwargs, train, extra_config=None, out_dir=WEIGHTS_DIR):
    """Write ``module``'s state as ``out_dir/WEIGHT_FILES[name]``; returns the path."""
    arrays = {}
    for key, value in module.state_dict().items():
        v = value.detach().cpu().numpy()
        is_matrix = v.ndim == 2 and key not in ("pos",) and not key.endswith("mean")
        arrays[key] = v.astype(np.float16 if is_matrix else np.float32)
    config = dict(arch=arch, kwargs=kwargs, train=train, **(extra_config or {}))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, WEIGHT_FILES[name])
    np.savez_compressed(path, config_json=np.array(json.dumps(config)), **arrays)
    load_weights.cache_clear()
    log(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    return path


def _setup(seed, threads):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed), np.random.default_rng(seed)


def _reload(name, out_dir):
    """The torch module rebuilt from the weight file just written (float16-rounded)."""
    load_weights.cache_clear()
    path = os.path.join(out_dir, WEIGHT_FILES[name])
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    config = json.loads(str(arrays.pop("config_json")))
    return from_weights(arrays, config)


# -- digits: any-order AR model and its mixture baseline -------------------------------------

#: Architecture and schedule of the shipped digits AR model.
DIGITS_AR = dict(q=4, width=384, depth=3, dropout=0.5, steps=4000, batch=128, lr=1e-3,
                 weight_decay=0.1, eval_every=500)
#: Mixture sizes tried for the baseline (the best on the validation split is kept).
MIXTURE_COMPONENTS = (5, 10, 20, 40, 80, 160)


def train_digits_ar(seed=0, threads=1, max_minutes=30.0, out_dir=WEIGHTS_DIR, **overrides):
    """Train the any-order AR model of quantised digits and fit its mixture baseline."""
    cfg = dict(DIGITS_AR, **overrides)
    g, _ = _setup(seed, threads)
    pixels, _ = data.digits_pixels()
    split = data.digits_split()
    x = {k: torch.from_numpy(quantise_digits(pixels[idx], cfg["q"])) for k, idx in split.items()}
    kwargs = dict(n=64, q=cfg["q"], width=cfg["width"], depth=cfg["depth"])
    module = MaskedMLP(dropout=cfg["dropout"], **kwargs)
    train = x["train"]

    def batch_loss():
        idx = torch.randint(0, train.shape[0], (cfg["batch"],), generator=g)
        return any_order_loss(module, train[idx], g).mean() / 64

    def val_loss():
        return heldout_any_order(module, x["val"], repeats=8, seed=seed + 1) / 64

    log(f"digits-ar: {sum(p.numel() for p in module.parameters())} parameters, {cfg}")
    rec = fit_config(module, batch_loss, val_loss, cfg, max_minutes, seed=seed, threads=threads,
                     objective="any-order NLL per pixel (nats), validation, 8 mask draws")
    save_weights("digits_ar", module, "MaskedMLP", kwargs, rec, out_dir=out_dir)
    rec["best_val_stored_weights"] = heldout_any_order(_reload("digits_ar", out_dir), x["val"], 8,
                                                       seed + 1) / 64
    log(f"val any-order NLL per pixel: {rec['best_val']:.4f} (float32), "
        f"{rec['best_val_stored_weights']:.4f} (stored float16 weights)")
    save_weights("digits_ar", module, "MaskedMLP", kwargs, rec, out_dir=out_dir)
    fit_digits_mixture(cfg["q"], seed=seed, out_dir=out_dir)


def fit_digits_mixture(q, seed=0, out_dir=WEIGHTS_DIR):
    """Fit the mixture-of-products baseline by EM; the size is chosen on validation."""
    t0 = time.perf_counter()
    pixels, _ = data.digits_pixels()
    split = data.digits_split()
    x = {k: quantise_digits(pixels[idx], q) for k, idx in split.items()}
    best = None
    scores = {}
    for C in MIXTURE_COMPONENTS:
        for restart in range(3):
            w, p, _ = baselines.fit_mixture_of_products(x["train"], q, C, seed=seed + restart)
            val = -baselines.mixture_log_prob(x["val"], w, p).mean()
            scores[f"{C}/{restart}"] = float(val)
            if best is None or val < best[0]:
                best = (val, C, restart, w, p)
        log(f"mixture of {C} products: best val NLL per image "
            f"{min(v for k, v in scores.items() if k.startswith(f'{C}/')):.2f} nats")
    val, C, restart, w, p = best
    config = dict(arch="MixtureOfProducts", kwargs=dict(n=64, q=q, n_components=C),
                  train=dict(seed=seed + restart, val_nll_per_image=float(val), alpha=1.0,
                             val_scores=scores, seconds=time.perf_counter() - t0,
                             components_tried=list(MIXTURE_COMPONENTS), restarts=3))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, WEIGHT_FILES["digits_mixture"])
    np.savez_compressed(path, config_json=np.array(json.dumps(config)), weights=w, probs=p)
    load_weights.cache_clear()
    log(f"kept {C} components (val NLL {val:.2f} nats per image); wrote {path}")


# -- digits: EDM denoiser --------------------------------------------------------------------

#: Architecture, noise levels and schedule of the shipped digits denoiser. sigma_max = 300
#: covers vp(1000)'s largest level (about 157) as well as ve(1000, 80, 0.002).
DIGITS_DENOISER = dict(width=256, depth=3, cond_width=128, n_freq=6, dropout=0.3,
                       sigma_min=0.002, sigma_max=300.0, p_mean=-1.2, p_std=1.2,
                       steps=12000, batch=256, lr=1e-3, weight_decay=0.05, eval_every=1000)


def sample_sigmas(batch, cfg, generator):
    """Training noise levels: half from EDM's log-normal (P_mean, P_std), half log-uniform
    on [sigma_min, sigma_max] (so the ends of every sampler's range are trained too);
    all clipped to that range."""
    lo, hi = math.log(cfg["sigma_min"]), math.log(cfg["sigma_max"])
    normal = cfg["p_mean"] + cfg["p_std"] * torch.randn(batch, generator=generator)
    uniform = lo + (hi - lo) * torch.rand(batch, generator=generator)
    pick = torch.rand(batch, generator=generator) < 0.5
    return torch.exp(torch.where(pick, normal, uniform).clamp(lo, hi))


def edm_loss(module, x, sigma, noise):
    """EDM's weighted loss ``lambda(sigma) |D(x + sigma n) - x|^2`` per item, with
    ``lambda = 1 / c_out^2`` (Karras et al. 2022, eq. 8 and Table 1), averaged over pixels."""
    sd = module.sigma_data
    c_out2 = (sigma * sd) ** 2 / (sigma ** 2 + sd ** 2)
    d = module(x + sigma[:, None] * noise, sigma)
    return ((d - x) ** 2).mean(1) / c_out2


def train_digits_denoiser(seed=0, threads=1, max_minutes=30.0, out_dir=WEIGHTS_DIR, **overrides):
    """Train the EDM-preconditioned denoiser of digits in [-1, 1]."""
    cfg = dict(DIGITS_DENOISER, **overrides)
    g, _ = _setup(seed, threads)
    pixels, _ = data.digits_pixels()
    split = data.digits_split()
    x = {k: torch.from_numpy(digits_to_unit(pixels[idx]).astype(np.float32))
         for k, idx in split.items()}
    mean = x["train"].mean(0)
    sigma_data = float(((x["train"] - mean) ** 2).mean().sqrt())
    kwargs = dict(dim=64, sigma_data=sigma_data, sigma_min=cfg["sigma_min"],
                  sigma_max=cfg["sigma_max"], width=cfg["width"], depth=cfg["depth"],
                  cond_width=cfg["cond_width"], n_freq=cfg["n_freq"])
    module = EDMDenoiser(mean=mean.tolist(), dropout=cfg["dropout"], **kwargs)
    train = x["train"]
    # Fixed validation draws: 16 noise levels and noises per validation image.
    gv = torch.Generator().manual_seed(seed + 1)
    xv = x["val"].repeat(16, 1)
    sv = sample_sigmas(xv.shape[0], cfg, gv)
    nv = torch.randn(xv.shape, generator=gv)

    def batch_loss():
        idx = torch.randint(0, train.shape[0], (cfg["batch"],), generator=g)
        sigma = sample_sigmas(cfg["batch"], cfg, g)
        noise = torch.randn(cfg["batch"], 64, generator=g)
        return edm_loss(module, train[idx], sigma, noise).mean()

    def val_loss():
        module.eval()
        with torch.no_grad():
            v = float(edm_loss(module, xv, sv, nv).mean())
        module.train()
        return v

    log(f"digits-denoiser: {sum(p.numel() for p in module.parameters())} parameters, "
        f"sigma_data={sigma_data:.4f}, {cfg}")
    rec = fit_config(module, batch_loss, val_loss, cfg, max_minutes, seed=seed, threads=threads,
                     objective="EDM-weighted denoising loss, validation, 16 fixed draws per image")
    save_weights("digits_denoiser", module, "EDMDenoiser", kwargs, rec, out_dir=out_dir)
    stored = _reload("digits_denoiser", out_dir)
    with torch.no_grad():
        rec["best_val_stored_weights"] = float(edm_loss(stored, xv, sv, nv).mean())
    log(f"val loss: {rec['best_val']:.4f} (float32), {rec['best_val_stored_weights']:.4f} "
        f"(stored float16 weights)")
    save_weights("digits_denoiser", module, "EDMDenoiser", kwargs, rec, out_dir=out_dir)


# -- text: character masked LM -----------------------------------------------------------------

#: Architecture and schedule of the shipped text model.
TEXT_MLM = dict(n=64, d=128, depth=3, heads=4, dropout=0.1, steps=3600, batch=64, lr=1e-3,
                weight_decay=1e-2, eval_every=300)


def train_text_mlm(seed=0, threads=1, max_minutes=30.0, out_dir=WEIGHTS_DIR, **overrides):
    """Train the bidirectional character transformer on Python's documentation topics."""
    cfg = dict(TEXT_MLM, **overrides)
    g, rng = _setup(seed, threads)
    text = data.python_doc_text()
    split = data.text_split(text)
    vocab = "".join(sorted(set("".join(split["train"]))))
    n, q = cfg["n"], len(vocab)
    train = torch.from_numpy(np.array([encode_text(c, vocab) for c in split["train"]]))
    # Validation windows with a character outside the training vocabulary (none on
    # Python 3.11) are skipped.
    val_windows = torch.from_numpy(np.array(
        [encode_text(w, vocab) for w in data.text_windows(split["val"], n, n)
         if set(w) <= set(vocab)]))
    kwargs = dict(n=n, q=q, d=cfg["d"], depth=cfg["depth"], heads=cfg["heads"])
    module = MaskedTransformer(dropout=cfg["dropout"], **kwargs)
    chunk = train.shape[1]

    def batch_loss():
        rows = torch.randint(0, train.shape[0], (cfg["batch"],), generator=g)
        starts = torch.randint(0, chunk - n + 1, (cfg["batch"],), generator=g)
        xb = train[rows[:, None], starts[:, None] + torch.arange(n)]
        return any_order_loss(module, xb, g).mean() / (n * math.log(2))

    def val_loss():
        return heldout_any_order(module, val_windows, repeats=2, seed=seed + 1,
                                 batch=128) / (n * math.log(2))

    log(f"text-mlm: {len(text)} characters, vocabulary {q}: {vocab!r}; "
        f"{sum(p.numel() for p in module.parameters())} parameters, {cfg}")
    rec = fit_config(module, batch_loss, val_loss, cfg, max_minutes, seed=seed, threads=threads,
                     objective="any-order bits per character, validation windows, 2 mask draws")
    extra = dict(vocab=vocab, text_source="pydoc_data.topics", python=".".join(
        map(str, __import__("sys").version_info[:3])))
    save_weights("text_mlm", module, "MaskedTransformer", kwargs, rec, extra, out_dir=out_dir)
    rec["best_val_stored_weights"] = heldout_any_order(
        _reload("text_mlm", out_dir), val_windows, 2, seed + 1, batch=128) / (n * math.log(2))
    log(f"val bits per character: {rec['best_val']:.4f} (float32), "
        f"{rec['best_val_stored_weights']:.4f} (stored float16 weights)")
    save_weights("text_mlm", module, "MaskedTransformer", kwargs, rec, extra, out_dir=out_dir)
