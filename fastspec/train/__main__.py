"""``python -m fastspec.train MODEL``: train one pretrained model and write its weights.

Models::

    digits-ar        any-order AR model of 8x8 digits (q = 4) + its EM mixture baseline
    digits-denoiser  EDM denoiser of 8x8 digits in [-1, 1]
    text-mlm         character masked LM on the standard library's pydoc_data topics

The weight files go to fastspec/models/weights/ (override with --out). Each run is
fixed by --seed and takes at most about 30 minutes on one core of a small CPU; the
log goes to stdout.
"""

import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastspec.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["digits-ar", "digits-denoiser", "text-mlm"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--max-minutes", type=float, default=30.0,
                   help="stop early past this wall-clock (recorded in the weight file)")
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--out", default=None, help="folder for the weight file "
                                                "(default: fastspec/models/weights)")
    a = p.parse_args(argv)
    try:
        from . import trainers
    except ImportError as exc:
        sys.exit(f"training needs torch and scikit-learn: pip install 'fastspec[train]' ({exc})")
    kw = dict(seed=a.seed, threads=a.threads, max_minutes=a.max_minutes)
    if a.out:
        kw["out_dir"] = a.out
    if a.steps:
        kw["steps"] = a.steps
    {"digits-ar": trainers.train_digits_ar, "digits-denoiser": trainers.train_digits_denoiser,
     "text-mlm": trainers.train_text_mlm}[a.model](**kw)


if __name__ == "__main__":
    main()
