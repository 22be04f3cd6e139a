"""``python -m fastspec.demo``: sample a built-in model and show the rounds saved.

Without a command: Curie-Weiss (n = 1024). ``python -m fastspec.demo digits`` and
``python -m fastspec.demo text`` sample the pretrained models of
:mod:`fastspec.models.pretrained`, and show exact infilling (``given=``): digits
completed from their top half, text continued from a prompt. ``--out FILE.png``
draws the samples (matplotlib), ``--out FILE.md`` (text only) writes them as a
table. Every call shows a progress bar.
"""

import argparse
import math
import sys
import time

import numpy as np

from . import models
from ._jit import CompileTimer
from .api import sample as _sample


_COMPILE_SECONDS = {}    # id(result) -> (seconds of the call, of numba compilation in it)


def sample(model, **kwargs):
    """``fastspec.sample``, also timing the numba compilation it triggers (first run only)."""
    start = time.perf_counter()
    with CompileTimer() as timer:
        res = _sample(model, **kwargs)
    _COMPILE_SECONDS[id(res)] = (time.perf_counter() - start, timer.seconds)
    return res


def _compile_note(res):
    total, compiling = _COMPILE_SECONDS.get(id(res), (0.0, 0.0))
    if compiling < 0.05:
        return "  (no compilation: fastspec's kernels came from numba's disk cache)\n"
    return (f"  one-time compilation: {compiling:.1f} s of this call's {total:.1f} s (numba compiles "
            "fastspec's kernels on first use and caches them on disk; later runs skip it)\n")


def _curie_weiss(args):
    model = models.CurieWeiss(n=args.n, J=args.J)
    print(f"model: CurieWeiss(n={args.n}, J={args.J}), random order per sample")
    res = sample(model, n_samples=args.samples, method=args.method, seed=args.seed,
                 progress=True)
    spins = 2 * res.samples - 1
    print(f"samples: shape {res.samples.shape}; magnetisation per site "
          f"{np.round(spins.mean(axis=1), 3).tolist()}")
    print(res.stats)
    print(_compile_note(res), end="")
    print(f"rounds saved: {args.n} sequential rounds per sample vs "
          f"{res.stats.mean_rounds:.1f} ({args.n / res.stats.mean_rounds:.0f}x fewer)")


def _report(name, res):
    st = res.stats
    print(f"\n{name}")
    print(st)
    print(_compile_note(res), end="")
    print(f"rounds: {st.rounds} for {len(st.rounds_per_sample)} sample(s) in one call "
          f"(mean {st.mean_rounds:.1f} per sample); sequential: {st.n_steps} "
          f"({st.n_steps / st.rounds:.1f}x fewer)")


def _title(label, res):
    st = res.stats
    return (f"{label}\n{st.method}: {st.rounds} rounds for {len(st.rounds_per_sample)} samples "
            f"(sequential: {st.n_steps})")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _missing(args):
    """What this command needs and is not installed, checked before any sampling."""
    import importlib.util
    needs = []
    if args.command == "digits" and args.model in ("ar", "both"):
        needs.append(("sklearn", "scikit-learn", "the held-out digits of the infilling panel"))
    if (getattr(args, "out", None) or "").endswith(".png"):
        needs.append(("matplotlib", "matplotlib", "--out FILE.png"))
    return [(pip, why) for module, pip, why in needs if importlib.util.find_spec(module) is None]


def _digits(args):
    from . import schedules
    from .models import pretrained
    panels = []
    if args.model in ("ar", "both"):
        model = pretrained.digits_ar()
        res = sample(model, n_samples=args.samples, method=args.method, seed=args.seed,
                     progress=True)
        _report(f"digits_ar(): any-order AR, n={model.n} pixels, q={model.q} grey levels", res)
        panels.append((_title(f"any-order AR model (q = {model.q})", res),
                       res.samples / (model.q - 1.0)))
        # Infilling: the bottom half of each digit drawn exactly given its top half.
        tops, source = _top_halves(model.q, args.samples)
        res = sample(model, n_samples=args.samples, method=args.method, seed=args.seed + 1,
                     given=tops, progress=True)
        _report(f"digits_ar() infilling: bottom halves given the top halves of {source}", res)
        panels.append((_title(f"infilling: bottom halves given the top\nhalves of {source}",
                              res), res.samples / (model.q - 1.0)))
    if args.model in ("diffusion", "both"):
        model = pretrained.digits_denoiser()
        sched = schedules.ve(args.steps, 80.0, 0.002)
        res = sample(model, schedule=sched, n_samples=args.samples, method=args.method,
                     seed=args.seed, progress=True)
        _report(f"digits_denoiser(): EDM denoiser, dim={model.dim}, schedule {sched.name}", res)
        panels.append((_title(f"diffusion, ve({args.steps}, 80, 0.002)", res),
                       (np.clip(res.samples, -1.0, 1.0) + 1.0) / 2.0))
    if args.out:
        _digits_figure(panels, args.out)


def _top_halves(q, count):
    """``given`` arrays (count, 64): top 4 rows of held-out digits, bottom rows free (-1).

    Held-out digits are the test split (never seen in training) of scikit-learn's
    bundled digits.
    """
    from sklearn.datasets import load_digits
    from .train.data import digits_split
    images = quantise_digits_from(load_digits().data[digits_split()["test"][:count]], q)
    given = np.array(images, dtype=np.int64)
    given[:, 32:] = -1
    return given, "held-out digits"


def quantise_digits_from(pixels, q):
    from .models.pretrained import quantise_digits
    return quantise_digits(pixels, q)


def _mosaic(images, cols, pad=1):
    """Tile 8x8 images (values in [0, 1]) into one array; NaN between tiles."""
    rows = math.ceil(len(images) / cols)
    canvas = np.full((rows * (8 + pad) - pad, cols * (8 + pad) - pad), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (8 + pad):r * (8 + pad) + 8, c * (8 + pad):c * (8 + pad) + 8] = img.reshape(8, 8)
    return canvas


def _digits_figure(panels, path):
    plt = _pyplot()
    cols = math.ceil(math.sqrt(panels[0][1].shape[0]))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="#c8d4e8")   # NaN: the gaps between digits
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.0), squeeze=False)
    for ax, (title, images) in zip(axes[0], panels):
        ax.imshow(_mosaic(images, cols), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    print(f"wrote {path}")


def _text(args):
    from .models import pretrained
    model = pretrained.text_mlm()
    given = None
    if args.prompt:           # continued from a prompt: the prompt pinned, the rest drawn
        text = pretrained.normalise_text(args.prompt)
        if args.prompt[-1:].isspace():      # (normalising strips it; a prompt may end on one)
            text += " "
        prompt = model.encode(text)[:model.n]
        given = np.full(model.n, -1, dtype=np.int64)
        given[:prompt.size] = prompt
    res = sample(model, n_samples=args.samples, method=args.method, seed=args.seed,
                 given=given, progress=True)
    what = f" continuing {args.prompt!r}" if args.prompt else ""
    _report(f"text_mlm(): character masked LM, n={model.n}, q={model.q}{what}", res)
    texts = [model.decode(s) for s in res.samples]
    for t, r in zip(texts, res.stats.rounds_per_sample):
        print(f"  [{r:3d} rounds] {t}")
    if not args.out:
        return
    if args.out.endswith(".png"):
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(texts) + 0.9))
        ax.axis("off")
        for i, t in enumerate(texts):
            ax.text(0.0, 1.0 - (i + 0.5) / len(texts), t, family="monospace", fontsize=8,
                    va="center", transform=ax.transAxes)
        ax.set_title(_title("character masked LM on Python's documentation", res), fontsize=9)
        fig.savefig(args.out, dpi=130, bbox_inches="tight")
    else:
        with open(args.out, "w") as f:
            f.write(f"Samples of `text_mlm()` (`python -m fastspec.demo text --samples "
                    f"{args.samples} --seed {args.seed} --method {args.method}`): "
                    f"{res.stats.rounds} rounds for the {len(texts)} samples of one call "
                    f"(sequential: {res.stats.n_steps}).\n\n| rounds | sample |\n|---|---|\n")
            for t, r in zip(texts, res.stats.rounds_per_sample):
                # "\|" keeps a table cell whole (GitHub markdown, also inside code spans).
                f.write(f"| {r} | `{t.replace('|', chr(92) + '|').replace('`', chr(39))}` |\n")
    print(f"wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024, help="sequence length (default 1024)")
    parser.add_argument("--J", type=float, default=1.0, help="Curie-Weiss coupling (default 1)")
    parser.add_argument("--samples", type=int, default=4, help="samples to draw (default 4)")
    parser.add_argument("--method", default="auto", help="sampling method (default auto)")
    parser.add_argument("--seed", type=int, default=0)
    commands = parser.add_subparsers(dest="command", metavar="{digits,text}")
    digits = commands.add_parser("digits", help="the pretrained digits models")
    digits.add_argument("--model", choices=["ar", "diffusion", "both"], default="both")
    digits.add_argument("--steps", type=int, default=1000,
                        help="diffusion steps N of ve(N, 80, 0.002) (default 1000)")
    text = commands.add_parser("text", help="the pretrained character model")
    text.add_argument("--prompt", default="The ",
                      help='text the samples continue (default "The "; "" for none)')
    for sub, count in ((digits, 16), (text, 8)):
        sub.add_argument("--samples", type=int, default=count,
                         help=f"samples in one call (default {count})")
        sub.add_argument("--method", default="auto", help="sampling method (default auto)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--out", default=None,
                         help="FILE.png: picture of the samples" +
                              (" (FILE.md: a table)" if sub is text else ""))
    args = parser.parse_args(argv)
    missing = _missing(args)
    if missing:
        sys.exit("this command needs " + "; ".join(f"{pip} for {why}" for pip, why in missing)
                 + ": pip install 'fastspec[demo]' (or pip install "
                 + " ".join(pip for pip, _ in missing) + ")")
    {None: _curie_weiss, "digits": _digits, "text": _text}[args.command](args)


if __name__ == "__main__":
    main()
