"""Data sets of the pretrained models and their fixed splits (numpy; no torch).

Two sources, both already on the machine (nothing is downloaded):

* digits: scikit-learn's bundled ``load_digits`` (1797 images of 8x8 pixels,
  values 0..16), shipped inside the scikit-learn wheel (BSD-3-Clause licence);
* text: the standard library's ``pydoc_data.topics`` (the help texts of the
  Python documentation, under the Python Software Foundation licence), which
  ships with CPython itself.

Every split is a fixed function of the data and a seed, so the training
scripts, the benchmarks and the tests agree on which items are held out.
"""

import numpy as np

from ..models.pretrained import normalise_text

#: Seed of the random permutation that splits the digits into train / val / test.
DIGITS_SPLIT_SEED = 2026
#: Fractions of the digits held out for validation (model selection) and test (reported).
DIGITS_VAL_FRACTION, DIGITS_TEST_FRACTION = 0.10, 0.20
#: The text is cut into chunks of this many characters before the split, so a held-out
#: window never overlaps a training window.
TEXT_CHUNK = 1024
#: Seed of the permutation that assigns text chunks to train / val / test.
TEXT_SPLIT_SEED = 2026
TEXT_VAL_FRACTION, TEXT_TEST_FRACTION = 0.05, 0.10


def _need_sklearn():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits data come from scikit-learn's bundled load_digits; install "
                          "it with pip install 'fastspec[train]' (or scikit-learn)") from None
    return load_digits


def digits_pixels():
    """The 1797 digit images of scikit-learn's ``load_digits``.

    Returns
    -------
    pixels : ndarray (1797, 64) float64
        Intensities 0..16, row-major 8x8.
    labels : ndarray (1797,) int64
        The digit shown (0..9); not used for training.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    """
    data = _need_sklearn()()
    return np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)


def split_indices(n_items, val_fraction, test_fraction, seed):
    """Disjoint index arrays ``{"train", "val", "test"}`` from one seeded permutation.

    Parameters
    ----------
    n_items : int
    val_fraction, test_fraction : float
        Shares of the items (rounded to the nearest int) held out.
    seed : int

    Returns
    -------
    dict of str to ndarray of int64, each sorted.
    """
    perm = np.random.default_rng(seed).permutation(n_items)
    n_test = int(round(test_fraction * n_items))
    n_val = int(round(val_fraction * n_items))
    return {"test": np.sort(perm[:n_test]), "val": np.sort(perm[n_test:n_test + n_val]),
            "train": np.sort(perm[n_test + n_val:])}


def digits_split():
    """Train / val / test indices into :func:`digits_pixels` (1258 / 180 / 359 images)."""
    return split_indices(1797, DIGITS_VAL_FRACTION, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)


def python_doc_text():
    """The standard library's documentation topics as one normalised string.

    The topics of ``pydoc_data.topics`` are joined in sorted key order and passed
    through :func:`fastspec.models.pretrained.normalise_text`. Their content depends on
    the Python version (the shipped text model was trained on Python 3.11's).

    Returns
    -------
    str
    """
    from pydoc_data.topics import topics
    return normalise_text(" ".join(topics[key] for key in sorted(topics)))


def text_chunks(text, chunk=TEXT_CHUNK):
    """Cut ``text`` into consecutive chunks of ``chunk`` characters (the last, shorter
    one dropped). Returns a list of str."""
    return [text[i:i + chunk] for i in range(0, len(text) - chunk + 1, chunk)]


def text_split(text):
    """Train / val / test lists of chunks of ``text`` (see :data:`TEXT_CHUNK`)."""
    chunks = text_chunks(text)
    idx = split_indices(len(chunks), TEXT_VAL_FRACTION, TEXT_TEST_FRACTION, TEXT_SPLIT_SEED)
    return {part: [chunks[i] for i in ids] for part, ids in idx.items()}


def text_windows(chunks, n, stride):
    """Windows of ``n`` characters taken every ``stride`` characters inside each chunk.

    Returns
    -------
    list of str, each of length ``n``.
    """
    return [c[i:i + n] for c in chunks for i in range(0, len(c) - n + 1, stride)]
