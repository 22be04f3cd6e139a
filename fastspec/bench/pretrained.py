"""Quality, rounds and acceptance of the shipped models: ``python -m fastspec.bench pretrained``.

Three studies, each writing one CSV into ``out`` (docs/ by default) and printing
markdown tables (the ones in docs/PRETRAINED.md):

* :func:`quality` -> ``pretrained_quality.csv``: held-out scores of the shipped
  weights against simple baselines (needs scikit-learn for the digits);
* :func:`rounds` -> ``pretrained_rounds.csv``: rounds and oracle rows per sample of
  ``sequential``, ``token`` and ``block``, one and 16 samples per call, per seed;
* :func:`acceptance` -> ``pretrained_acceptance.csv``: mean accepted length and
  rounds against fixed block sizes.

All randomness comes from fixed seeds, so a rerun on the same weights gives the same
numbers (wall-clock columns aside).
"""

import csv
import math
import os
import time

import numpy as np

import fastspec
from fastspec.models import pretrained
from .files import write_csv

#: Methods measured (srs is left out: docs/BENCHMARKS.md shows it behind block).
METHODS = ("sequential", "token", "block")
#: Noise levels of the denoiser's quality table.
SIGMA_GRID = (0.002, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 80.0, 160.0)


def _write(rows, path):
    write_csv(path, rows)
    print(f"wrote {path}")


def _markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# -- quality ---------------------------------------------------------------------------------

def chain_log_prob(model, x, orders, items_per_call=16):
    """Log-probability (nats) of each item under the sequential chain of ``model`` in a
    given order: ``sum_k log P(x_{o_k} | x_{o_1}, ..., x_{o_{k-1}})``.

    Parameters
    ----------
    model : fastspec.ARModel
    x : int array (N, n)
    orders : int array (N, n)
        A permutation of ``range(n)`` per item.
    items_per_call : int
        Items whose ``n`` contexts go into one oracle call.

    Returns
    -------
    ndarray (N,) float64
    """
    x = np.asarray(x, dtype=np.int64)
    orders = np.asarray(orders, dtype=np.int64)
    N, n = x.shape
    ranks = np.argsort(orders, axis=1)            # ranks[i, j]: step at which j is drawn
    out = np.empty(N)
    for s in range(0, N, items_per_call):
        xs, os_, rk = (a[s:s + items_per_call] for a in (x, orders, ranks))
        m = xs.shape[0]
        # Context of step k: positions drawn before step k pinned, the rest free.
        ctx = np.where(rk[:, None, :] < np.arange(n)[None, :, None], xs[:, None, :], -1)
        probs = model.marginals(ctx.reshape(m * n, n)).reshape(m, n, n, -1)
        i, k = np.arange(m)[:, None], np.arange(n)[None, :]
        out[s:s + m] = np.log(probs[i, k, os_, xs[i, os_]]).sum(axis=1)
    return out


def any_order_nll(model, x, n_orders, seed):
    """Per item, the mean over ``n_orders`` uniformly random orders of ``-log p_order(x)``.

    Each order's chain is a normalised distribution, so the mean over items is an
    honest held-out NLL (nats); it upper-bounds the NLL of the model's uniform mixture
    over orders, which is what ``fastspec.sample(..., order=None)`` draws from.

    Returns
    -------
    ndarray (N,) float64
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.int64)
    per_item = np.zeros(x.shape[0])
    for _ in range(n_orders):
        orders = np.array([rng.permutation(x.shape[1]) for _ in range(x.shape[0])])
        per_item -= chain_log_prob(model, x, orders) / n_orders
    return per_item


def _score(model, baseline, metric, per_item, note, sigma=""):
    """A CSV row: mean of ``per_item`` and its standard error over items."""
    per_item = np.asarray(per_item, dtype=np.float64)
    return dict(model=model, baseline=baseline, metric=metric, sigma=sigma,
                value=float(per_item.mean()),
                stderr=float(per_item.std(ddof=1) / math.sqrt(len(per_item))), note=note)


def _digits_quality(n_orders, seed):
    from fastspec.train import data
    pixels, _ = data.digits_pixels()
    split = data.digits_split()
    model = pretrained.digits_ar()
    test = pretrained.quantise_digits(pixels[split["test"]], model.q)
    train = pretrained.quantise_digits(pixels[split["train"]], model.q)
    t = time.perf_counter()
    metric = "nll_nats_per_image"
    rows = [_score("digits_ar", "", metric, any_order_nll(model, test, n_orders, seed),
                   f"any-order, {n_orders} random orders per image, {len(test)} test images")]
    print(f"digits_ar: {rows[0]['value']:.2f} nats per image ({time.perf_counter() - t:.1f}s)")
    mix = pretrained.digits_mixture()
    rows.append(_score("digits_ar", "mixture_of_products", metric, -mix.log_probability(test),
                       f"EM, {mix.weights.shape[0]} components chosen on validation; exact"))
    counts = np.bincount((train + model.q * np.arange(64)).ravel(), minlength=64 * model.q)
    marg = (counts.reshape(64, model.q) + 1.0) / (len(train) + model.q)
    rows.append(_score("digits_ar", "independent_pixels", metric,
                       -np.log(marg[np.arange(64), test]).sum(axis=1),
                       "product of per-pixel training frequencies (add-one)"))
    return rows


def _text_windows_ids(model, part):
    """Non-overlapping windows of split ``part`` as ids (K, n), and the training text's ids."""
    from fastspec.train import data
    split = data.text_split(data.python_doc_text())
    known = set(model.vocab)
    windows = [w for w in data.text_windows(split[part], model.n, model.n) if set(w) <= known]
    train_ids = np.concatenate([model.encode(c) for c in split["train"] if set(c) <= known])
    return np.array([model.encode(w) for w in windows]), train_ids


def _text_quality(n_orders, seed, max_windows):
    from fastspec.train import baselines
    model = pretrained.text_mlm()
    test, train_ids = _text_windows_ids(model, "test")
    if max_windows is not None:
        test = test[:max_windows]
    bits = model.n * math.log(2)         # nats per window -> bits per character
    metric = "bits_per_char"
    t = time.perf_counter()
    rows = [_score("text_mlm", "", metric, any_order_nll(model, test, n_orders, seed) / bits,
                   f"any-order, {n_orders} random orders per window, {len(test)} test windows")]
    print(f"text_mlm: {rows[0]['value']:.3f} bits per character ({time.perf_counter() - t:.1f}s)")
    q = model.q
    uni = baselines.unigram_log_probs(train_ids, q)
    rows.append(_score("text_mlm", "unigram", metric, -uni[test].sum(axis=1) / bits,
                       "training character frequencies (add-one)"))
    pair = np.bincount(train_ids[:-1] * q + train_ids[1:], minlength=q * q).reshape(q, q) + 1.0
    log_t = np.log(pair / pair.sum(axis=1, keepdims=True))
    lp = uni[test[:, 0]] + log_t[test[:, :-1], test[:, 1:]].sum(axis=1)
    rows.append(_score("text_mlm", "bigram", metric, -lp / bits,
                       "left-to-right character bigram of the training text (add-one)"))
    return rows


def _denoiser_quality(seed, draws=8):
    from fastspec.train import baselines, data
    pixels, _ = data.digits_pixels()
    split = data.digits_split()
    train = pretrained.digits_to_unit(pixels[split["train"]])
    test = pretrained.digits_to_unit(pixels[split["test"]])
    model = pretrained.digits_denoiser()
    candidates = {"": model.denoise,
                  "data_mean": baselines.mean_denoiser(train.mean(axis=0)),
                  "linear_gaussian": baselines.linear_denoiser(train.mean(axis=0),
                                                               np.cov(train, rowvar=False))}
    rng = np.random.default_rng(seed)
    x = np.repeat(test, draws, axis=0)
    rows = []
    for sigma in SIGMA_GRID:
        z = x + sigma * rng.normal(size=x.shape)
        s = np.full(len(z), sigma)
        for name, fn in candidates.items():
            # Mean over each image's noise draws first: the images are the independent items.
            err = ((fn(z, s) - x) ** 2).mean(axis=1).reshape(len(test), draws).mean(axis=1)
            rows.append(_score("digits_denoiser", name, "mse_per_pixel", err,
                               f"{len(test)} test images x {draws} noise draws", sigma=sigma))
    return rows


def quality(out="docs", n_orders=4, text_orders=2, seed=0, max_text_windows=None, parts=None):
    """Held-out scores of the shipped weights against the baselines.

    Parameters
    ----------
    out : str
        Folder of ``pretrained_quality.csv``.
    n_orders, text_orders : int
        Random orders per test image / text window for the any-order NLL.
    seed : int
    max_text_windows : int, optional
        Use only the first windows of the text test split (smoke runs).
    parts : iterable of {"digits_ar", "text_mlm", "digits_denoiser"}, optional
        Default: all three.

    Returns
    -------
    list of dict
        The CSV rows.
    """
    parts = set(parts or ("digits_ar", "text_mlm", "digits_denoiser"))
    rows = []
    if "digits_ar" in parts:
        rows += _digits_quality(n_orders, seed)
    if "text_mlm" in parts:
        rows += _text_quality(text_orders, seed, max_text_windows)
    if "digits_denoiser" in parts:
        rows += _denoiser_quality(seed)
    _write(rows, os.path.join(out, "pretrained_quality.csv"))
    print(quality_tables(rows))
    return rows


def quality_tables(rows):
    """Markdown tables of :func:`quality`'s rows."""
    text = []
    ar = [r for r in rows if r["metric"] != "mse_per_pixel"]
    if ar:
        header = ["model", "baseline", "metric", "held-out value", "std. error", "how"]
        text.append(_markdown(header,
                              [[r["model"], r["baseline"] or "(the model)", r["metric"],
                                f"{r['value']:.3f}", f"{r['stderr']:.3f}", r["note"]] for r in ar]))
    den = [r for r in rows if r["metric"] == "mse_per_pixel"]
    if den:
        sigmas = sorted({r["sigma"] for r in den})
        val = {(r["sigma"], r["baseline"]): r["value"] for r in den}
        err = {(r["sigma"], r["baseline"]): r["stderr"] for r in den}
        text.append(_markdown(
            ["sigma", "digits_denoiser", "linear Gaussian", "data mean"],
            [[f"{s:g}"] + [f"{val[s, b]:.3g} ({err[s, b]:.1g})"
                           for b in ("", "linear_gaussian", "data_mean")] for s in sigmas]))
    return "\n\n".join(text)


# -- rounds and acceptance -----------------------------------------------------------------

def _schedules():
    """Diffusion schedules measured: ve, vp, and DDPM's own timesteps.

    ``ddpm`` runs on the alphas_cumprod of DDPM's linear betas (1e-4 to 0.02 over
    T = 1000, as diffusers' DDPMScheduler defaults), all 1000 timesteps or 100
    evenly spaced ones; its largest sigma, about 157, is inside the range the
    denoiser was trained on.
    """
    abar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    return {"ve(1000, 80, 0.002)": fastspec.schedules.ve(1000, 80.0, 0.002),
            "vp(1000)": fastspec.schedules.vp(1000),
            "ddpm(T=1000)": fastspec.schedules.ddpm(abar),
            "ddpm(T=1000, 100 steps)": fastspec.schedules.ddpm(abar, n_steps=100)}


def _cases(models):
    """(model name, schedule name, model, sample kwargs) for every measured case."""
    cases = []
    if "digits_ar" in models:
        cases.append(("digits_ar", "", pretrained.digits_ar(), {}))
    if "text_mlm" in models:
        cases.append(("text_mlm", "", pretrained.text_mlm(), {}))
    if "digits_denoiser" in models:
        den = pretrained.digits_denoiser()
        for name, sched in _schedules().items():
            cases.append(("digits_denoiser", name, den, {"schedule": sched}))
    return cases


def _written(rows, path, table):
    """Write ``rows`` to the CSV file ``path``, print their ``table``; returns ``rows``."""
    _write(rows, path)
    print(table(rows))
    return rows


def _over_seeds(model, names, method, n_samples, block_size, n_seeds, kw):
    """One CSV row per seed ``0 .. n_seeds - 1`` of ``fastspec.sample(model, ...)``;
    ``names`` is (model name, schedule name)."""
    rows = []
    for seed in range(n_seeds):
        st = fastspec.sample(model, n_samples=n_samples, method=method, seed=seed,
                             block_size=block_size, **kw).stats
        rows.append(dict(model=names[0], schedule=names[1], method=method, n_samples=n_samples,
                         seed=seed, block_size=block_size, steps=st.n_steps, rounds=st.rounds,
                         rounds_per_sample=st.mean_rounds,
                         rows_per_sample=float(np.mean(st.rows_per_sample)),
                         mean_block_size=st.mean_block_size, mean_accepted=st.mean_accepted,
                         wall_seconds=st.wall_seconds))
    return rows


def rounds(out="docs", n_seeds=5, batch_sizes=(1, 16), methods=METHODS,
           models=("digits_ar", "text_mlm", "digits_denoiser")):
    """Rounds and oracle rows per sample on the shipped models (``block_size="auto"``).

    Writes ``pretrained_rounds.csv`` (one row per model, schedule, method, samples
    per call and seed) and prints the means over seeds. Returns the rows.
    """
    rows = []
    for model_name, sched_name, model, kw in _cases(models):
        for method in methods:
            for n_samples in batch_sizes:
                t = time.perf_counter()
                last = _over_seeds(model, (model_name, sched_name), method, n_samples, "auto",
                                   n_seeds, kw)
                rows += last
                rounds_mean = np.mean([r["rounds_per_sample"] for r in last])
                rows_mean = np.mean([r["rows_per_sample"] for r in last])
                print(f"{model_name:16s} {sched_name:20s} {method:10s} x{n_samples:<3d} "
                      f"rounds/sample {rounds_mean:7.1f}  rows/sample {rows_mean:8.1f}  "
                      f"({time.perf_counter() - t:.1f}s)", flush=True)
    return _written(rows, os.path.join(out, "pretrained_rounds.csv"), rounds_table)


def rounds_table(rows):
    """Markdown table of :func:`rounds`' rows: mean (sd) over seeds of rounds and rows
    per sample, for each samples-per-call setting."""
    keys = sorted({(r["model"], r["schedule"], r["method"]) for r in rows},
                  key=lambda k: (k[0], k[1], METHODS.index(k[2]) if k[2] in METHODS else 9))
    sizes = sorted({r["n_samples"] for r in rows})
    header = ["model", "schedule", "method", "steps"]
    for s in sizes:
        header += [f"rounds/sample ({s}/call)", f"rows/sample ({s}/call)"]
        if s > 1:
            header.append(f"rounds per call ({s}/call)")
    table = []
    for key in keys:
        sel = [r for r in rows if (r["model"], r["schedule"], r["method"]) == key]
        line = [key[0], key[1] or "-", key[2], str(sel[0]["steps"])]
        for s in sizes:
            rs = [r for r in sel if r["n_samples"] == s]
            rp = [r["rounds_per_sample"] for r in rs]
            line += [f"{np.mean(rp):.1f} ({np.std(rp):.1f})",
                     f"{np.mean([r['rows_per_sample'] for r in rs]):.0f}"]
            if s > 1:
                line.append(f"{np.mean([r['rounds'] for r in rs]):.1f}")
        table.append(line)
    return _markdown(header, table)


#: Fixed block sizes of the acceptance study.
AR_BLOCK_SIZES = (2, 4, 8, 16, 32, 64)
DIFFUSION_BLOCK_SIZES = (4, 8, 16, 32, 64, 128, 256)


def acceptance(out="docs", n_seeds=5, methods=("token", "block"),
               models=("digits_ar", "text_mlm", "digits_denoiser"), ar_sizes=AR_BLOCK_SIZES,
               diffusion_sizes=DIFFUSION_BLOCK_SIZES, schedules=("ve(1000, 80, 0.002)",)):
    """Mean accepted length and rounds per sample against a fixed block size (one sample
    per call, ``n_seeds`` seeds). Writes ``pretrained_acceptance.csv``; returns the rows."""
    rows = []
    for model_name, sched_name, model, kw in _cases(models):
        if sched_name and sched_name not in schedules:
            continue
        sizes = diffusion_sizes if sched_name else ar_sizes
        for method in methods:
            for k in sizes:
                last = _over_seeds(model, (model_name, sched_name), method, 1, k, n_seeds, kw)
                rows += last
                print(f"{model_name:16s} {sched_name:20s} {method:6s} k={k:<4d} accepted "
                      f"{np.mean([r['mean_accepted'] for r in last]):6.2f}  rounds "
                      f"{np.mean([r['rounds_per_sample'] for r in last]):7.1f}", flush=True)
    return _written(rows, os.path.join(out, "pretrained_acceptance.csv"), acceptance_table)


def acceptance_table(rows):
    """Markdown table of :func:`acceptance`'s rows: accepted length / rounds per block size."""
    keys = sorted({(r["model"], r["schedule"], r["method"]) for r in rows})
    table = []
    for key in keys:
        sel = [r for r in rows if (r["model"], r["schedule"], r["method"]) == key]
        for k in sorted({r["block_size"] for r in sel}):
            rs = [r for r in sel if r["block_size"] == k]
            table.append([key[0], key[1] or "-", key[2], str(k),
                          f"{np.mean([r['mean_accepted'] for r in rs]):.2f}",
                          f"{np.mean([r['rounds_per_sample'] for r in rs]):.1f}",
                          f"{np.mean([r['rows_per_sample'] for r in rs]):.0f}"])
    return _markdown(["model", "schedule", "method", "block size k", "mean accepted",
                      "rounds/sample", "rows/sample"], table)


def read_csv(path):
    """Rows of a CSV written here, numbers converted back (empty cells stay "")."""
    def convert(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    with open(path, newline="") as f:
        return [{k: convert(v) for k, v in r.items()} for r in csv.DictReader(f)]


def tables(out="docs"):
    """The markdown tables of the three CSVs in ``out`` (without rerunning anything)."""
    return "\n\n".join([quality_tables(read_csv(os.path.join(out, "pretrained_quality.csv"))),
                        rounds_table(read_csv(os.path.join(out, "pretrained_rounds.csv"))),
                        acceptance_table(read_csv(os.path.join(out, "pretrained_acceptance.csv")))])


def run(out="docs", n_seeds=5, parts=("quality", "rounds", "acceptance")):
    """Every study of this module (``python -m fastspec.bench pretrained``)."""
    if "quality" in parts:
        quality(out=out)
    if "rounds" in parts:
        rounds(out=out, n_seeds=n_seeds)
    if "acceptance" in parts:
        acceptance(out=out, n_seeds=n_seeds)
