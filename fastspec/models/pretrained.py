"""Models trained on real data, shipped with fastspec; inference in numpy only.

* :func:`digits_ar` -- an any-order AR model of 8x8 digits with 4 grey levels
  (an MLP trained with random masking), an :class:`fastspec.ARModel`;
* :func:`digits_denoiser` -- a denoiser of the same digits in ``[-1, 1]``
  (an MLP with EDM preconditioning), a :class:`fastspec.DiffusionModel`;
* :func:`text_mlm` -- a bidirectional transformer masked LM over the characters
  of Python's own documentation, an :class:`fastspec.ARModel`;
* :func:`digits_mixture` -- the baseline: a mixture of products fit by EM to
  the same quantised digits, a :class:`fastspec.models.MixtureOfProducts`.

Cheap draft models for ``fastspec.sample(model, draft=...)`` (docs/ALGORITHMS.md,
section 7), built from the same training data when called: :func:`digits_mixture`
drafts :func:`digits_ar`, :func:`text_bigram` (a character bigram chain)
drafts :func:`text_mlm`, and :func:`digits_gaussian` (the best linear denoiser)
drafts :func:`digits_denoiser`.

Each function loads its ``.npz`` file from ``fastspec/models/weights/`` when it is
first called (importing fastspec loads nothing and never imports torch). The
networks are written twice: in torch for training (:mod:`fastspec.train.nets`)
and here in numpy, float32, for sampling; ``tests/test_pretrained.py`` checks the
two against each other. Data, training and measured quality: docs/PRETRAINED.md.
"""

import functools
import json
import re
import unicodedata
from importlib import resources

import numpy as np

from .._threads import one_blas_thread
from ..ar.oracle import ARModel
from ..diffusion.oracle import DiffusionModel
from .ar import CHARACTER_SMOOTHING, MarkovChain, MixtureOfProducts

__all__ = ["digits_ar", "digits_denoiser", "digits_mixture", "text_mlm", "text_bigram",
           "digits_gaussian", "quantise_digits",
           "digits_to_unit", "normalise_text", "encode_text", "decode_text", "load_weights",
           "DigitsAR", "DigitsDenoiser", "TextMLM"]

#: File names (inside ``fastspec/models/weights/``) of each shipped model.
WEIGHT_FILES = {"digits_ar": "digits_ar.npz", "digits_denoiser": "digits_denoiser.npz",
                "text_mlm": "text_mlm.npz", "digits_mixture": "digits_mixture.npz"}
#: Training command that writes each weight file.
TRAIN_COMMANDS = {"digits_ar": "digits-ar", "digits_denoiser": "digits-denoiser",
                  "text_mlm": "text-mlm", "digits_mixture": "digits-ar"}
#: Rows per numpy forward chunk: bounds the memory of the attention scores
#: (rows x heads x n x n float32) and keeps the activations in cache.
ROW_CHUNK = 256
#: Epsilon of every layer norm (torch's default).
LN_EPS = 1e-5


# -- data conventions (shared with the training scripts) --------------------------------

def quantise_digits(pixels, q):
    """Grey levels ``0..q-1`` of digit pixels with intensities ``0..16``.

    Level ``floor(v * q / 17)``: the 17 intensities are cut into ``q`` equal bins.

    Parameters
    ----------
    pixels : array_like of float or int, values in [0, 16]
    q : int >= 2

    Returns
    -------
    ndarray of int64, the shape of ``pixels``.
    """
    v = np.asarray(pixels, dtype=np.float64)
    return np.clip(np.floor(v * q / 17.0), 0, q - 1).astype(np.int64)


def digits_to_unit(pixels):
    """Map digit intensities ``0..16`` to ``[-1, 1]`` (``v / 8 - 1``), the denoiser's space."""
    return np.asarray(pixels, dtype=np.float64) / 8.0 - 1.0


# Typographic punctuation of the documentation, written in ASCII.
_ASCII_PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                              "\u2013": "-", "\u2014": "-", "\u2026": "..."})
# reStructuredText heading underlines such as "*****" or "=====": layout, not text.
_UNDERLINE = re.compile(r"^[ \t]*([*=\-^~#])\1{2,}[ \t]*$", re.MULTILINE)


def normalise_text(text):
    """The text the character model sees: printable ASCII, single spaces.

    Typographic quotes and dashes become ASCII; other characters are
    decomposed (NFKD) and whatever is not ASCII is dropped; heading underlines
    (lines of ``*``, ``=``, ``-`` ...) are removed; every run of whitespace
    becomes one space.

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Examples
    --------
    >>> normalise_text("The \\u201cassert\\u201d statement\\n*****\\n\\n   x  = 1")
    'The "assert" statement x = 1'
    """
    text = _UNDERLINE.sub(" ", text.translate(_ASCII_PUNCT))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())


def encode_text(text, vocab):
    """Symbol ids of ``text`` in ``vocab`` (a string of distinct characters).

    Raises
    ------
    ValueError
        If a character of ``text`` is not in ``vocab``; the message names it.
    """
    index = {ch: i for i, ch in enumerate(vocab)}
    bad = [ch for ch in text if ch not in index]
    if bad:
        raise ValueError(f"text has {len(bad)} character(s) outside the vocabulary, first "
                         f"{bad[0]!r}; pass it through normalise_text first")
    return np.array([index[ch] for ch in text], dtype=np.int64)


def decode_text(ids, vocab, free="_"):
    """The string of symbol ids ``ids`` (1-D); ids ``< 0`` (free positions) become ``free``."""
    return "".join(vocab[i] if i >= 0 else free for i in np.asarray(ids, dtype=np.int64))


# -- weights ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def load_weights(name):
    """Arrays and configuration of a shipped model, read once per process.

    Parameters
    ----------
    name : {"digits_ar", "digits_denoiser", "text_mlm", "digits_mixture"}

    Returns
    -------
    arrays : dict of str to read-only ndarray
        Parameters under their torch ``state_dict`` names.
    config : dict
        ``config["kwargs"]``: the network's constructor arguments; ``config["train"]``:
        how it was trained (seed, steps, seconds, held-out scores).

    Raises
    ------
    ValueError
        For an unknown ``name``.
    FileNotFoundError
        If the weight file is missing (the message gives the command that writes it).
    """
    if name not in WEIGHT_FILES:
        raise ValueError(f"name must be one of {sorted(WEIGHT_FILES)}, got {name!r}")
    ref = resources.files(__package__) / "weights" / WEIGHT_FILES[name]
    if not ref.is_file():
        raise FileNotFoundError(
            f"weights of {name} not found at {ref}; reinstall fastspec or write them with "
            f"python -m fastspec.train {TRAIN_COMMANDS[name]}")
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    config = json.loads(str(arrays.pop("config_json")))
    for arr in arrays.values():
        arr.setflags(write=False)
    return arrays, config


# -- numpy layers (torch conventions: Linear weight is (out, in)) ------------------------

def _gelu(x):
    """GELU, tanh approximation (torch ``nn.GELU(approximate="tanh")``)."""
    # In place, one temporary (3x faster than the one-line formula on a transformer's
    # activations); x * x * x, not x ** 3: numpy's power is ~500x slower for negative bases.
    t = x * x
    t *= x
    t *= np.float32(0.044715)
    t += x
    t *= np.float32(0.7978845608028654)
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= x
    t *= np.float32(0.5)
    return t


def _layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(LN_EPS)) * weight + bias


def _softmax64(logits, axis=-1):
    """Softmax in float64 (the oracle's rows must sum to 1 within 1e-6)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


class _Linear:
    """``y = x @ W.T + b`` with ``W.T`` stored contiguous once."""

    def __init__(self, arrays, prefix):
        self.w_t = np.ascontiguousarray(arrays[prefix + ".weight"].T, dtype=np.float32)
        self.b = np.asarray(arrays[prefix + ".bias"], dtype=np.float32)

    def __call__(self, x):
        y = x.reshape(-1, x.shape[-1]) @ self.w_t
        y += self.b
        return y.reshape(x.shape[:-1] + (y.shape[-1],))


class _LayerNorm:
    def __init__(self, arrays, prefix):
        self.weight = np.asarray(arrays[prefix + ".weight"], dtype=np.float32)
        self.bias = np.asarray(arrays[prefix + ".bias"], dtype=np.float32)

    def __call__(self, x):
        return _layer_norm(x, self.weight, self.bias)


class _ResidualBlock:
    """numpy twin of :class:`fastspec.train.nets.ResidualBlock`:
    ``h + fc2(gelu(fc1(norm(h)) + cond(c)))``."""

    def __init__(self, arrays, prefix, conditioned):
        self.norm = _LayerNorm(arrays, prefix + ".norm")
        self.fc1 = _Linear(arrays, prefix + ".fc1")
        self.fc2 = _Linear(arrays, prefix + ".fc2")
        self.cond = _Linear(arrays, prefix + ".cond") if conditioned else None

    def __call__(self, h, c=None):
        u = self.fc1(self.norm(h))
        if self.cond is not None:
            u += self.cond(c)
        return h + self.fc2(_gelu(u))


def _in_chunks(fn, rows, *args):
    """``fn`` applied to chunks of :data:`ROW_CHUNK` rows of ``rows`` (and ``args``), stacked."""
    if rows.shape[0] <= ROW_CHUNK:
        return fn(rows, *args)
    return np.concatenate([fn(rows[i:i + ROW_CHUNK], *(a[i:i + ROW_CHUNK] for a in args))
                           for i in range(0, rows.shape[0], ROW_CHUNK)])


def _check_ctx(ctx, n, q):
    ctx = np.asarray(ctx)
    if ctx.ndim != 2 or ctx.shape[1] != n or not np.issubdtype(ctx.dtype, np.integer):
        raise ValueError(f"ctx must be an int array (K, n={n}), got shape {ctx.shape}, "
                         f"dtype {ctx.dtype}")
    if ctx.size and (ctx.max() >= q or ctx.min() < -1):
        raise ValueError(f"ctx entries must be -1 (free) or a symbol 0..{q - 1}, got values in "
                         f"[{ctx.min()}, {ctx.max()}]")
    return ctx.astype(np.int64, copy=False)


# -- the three networks -------------------------------------------------------------------

class _NetworkAR(ARModel):
    """An AR model whose marginals are the softmax of a network's logits."""

    def logits(self, ctx):
        """Unnormalised log-probabilities ``(K, n, q)`` float32 of contexts ``ctx`` (K, n).

        Raises
        ------
        ValueError
            If ``ctx`` is not an int array ``(K, n)`` of entries in ``-1..q-1``.
        """
        ctx = _check_ctx(ctx, self.n, self.q)
        return _in_chunks(self._logits, ctx)   # _logits runs with one BLAS thread

    def _marginals(self, ctx, positions=None):
        """Dense ``(K, n, q)``, or the listed positions ``(K, W, q)`` (``ARModel``'s protocol):
        the positions are selected before the output layer and the softmax."""
        if positions is None:
            return _softmax64(self.logits(ctx))
        ctx = _check_ctx(ctx, self.n, self.q)
        positions = np.asarray(positions, dtype=np.int64)
        return _softmax64(_in_chunks(self._logits, ctx, positions))


class DigitsAR(_NetworkAR):
    """Any-order AR model of 8x8 digits with ``q`` grey levels (numpy forward pass).

    The network (:class:`fastspec.train.nets.MaskedMLP`) reads the one-hot of every
    pixel with a "free" channel, ``n * (q + 1)`` inputs, through residual GELU
    blocks, and returns logits ``(n, q)``; the marginal of each free pixel is
    their softmax. It was trained to predict the free pixels of images with a
    uniformly random number of uniformly chosen pixels free (the any-order
    objective of ARDM, Hoogeboom et al. 2022). Build it with :func:`digits_ar`.

    Attributes
    ----------
    n, q : int
        64 pixels (row-major 8x8) and the grey levels.
    image_shape : tuple
        ``(8, 8)``.
    config : dict
        Architecture and training record (from the weight file).
    """

    image_shape = (8, 8)

    def __init__(self, arrays, config):
        kw = config["kwargs"]
        n, q = int(kw["n"]), int(kw["q"])
        self.config = config
        self.embed = _Linear(arrays, "embed")
        self.blocks = [_ResidualBlock(arrays, f"blocks.{i}", False) for i in range(kw["depth"])]
        self.norm = _LayerNorm(arrays, "norm")
        self.head = _Linear(arrays, "head")
        super().__init__(self._marginals, n, q, positions=True)

    @one_blas_thread
    def _logits(self, ctx, positions=None):
        K, n, q = ctx.shape[0], self.n, self.q
        channel = np.where(ctx < 0, q, ctx)
        x = np.zeros((K, n * (q + 1)), dtype=np.float32)
        x[np.arange(K)[:, None], np.arange(n)[None, :] * (q + 1) + channel] = 1.0
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        if positions is None:
            return self.head(h).reshape(K, n, q)
        # Only the head's columns of positions some row lists (their q logits each).
        used = np.unique(positions[positions >= 0])
        cols = (used[:, None] * q + np.arange(q)[None, :]).ravel()
        part = (h @ self.head.w_t[:, cols] + self.head.b[cols]).reshape(K, used.size, q)
        at = np.searchsorted(used, np.maximum(positions, 0))                 # (K, W)
        return np.take_along_axis(part, at[:, :, None], axis=1)


class DigitsDenoiser(DiffusionModel):
    """Denoiser of 8x8 digits in ``[-1, 1]`` with EDM preconditioning (numpy forward pass).

    With ``mu`` the per-pixel training mean and ``sigma_data`` the RMS of
    ``x - mu`` (both stored with the weights),

    ``D(z, sigma) = mu + c_skip (z - mu) + c_out F(c_in (z - mu), c_noise)``,

    ``c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)``,
    ``c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)``,
    ``c_in = 1 / sqrt(sigma^2 + sigma_data^2)``, ``c_noise = log(sigma) / 4``
    (Karras et al. 2022, "Elucidating the design space of diffusion-based
    generative models", Table 1). ``F`` is a residual GELU MLP conditioned on
    Fourier features of ``c_noise`` (:class:`fastspec.train.nets.EDMDenoiser`).
    Build it with :func:`digits_denoiser`.

    Attributes
    ----------
    dim : int
        64.
    sigma_data : float
    sigma_range : tuple of float
        ``(sigma_min, sigma_max)`` of the training noise levels; outside it the
        network extrapolates.
    image_shape : tuple
        ``(8, 8)``.
    config : dict
    """

    image_shape = (8, 8)

    def __init__(self, arrays, config):
        kw = config["kwargs"]
        self.config = config
        self.mean = np.asarray(arrays["mean"], dtype=np.float64)
        self.sigma_data = float(kw["sigma_data"])
        self.sigma_range = (float(kw["sigma_min"]), float(kw["sigma_max"]))
        self.freqs = np.asarray(arrays["freqs"], dtype=np.float32)
        self.inp = _Linear(arrays, "inp")
        self.emb1 = _Linear(arrays, "emb1")
        self.emb2 = _Linear(arrays, "emb2")
        self.blocks = [_ResidualBlock(arrays, f"blocks.{i}", True) for i in range(kw["depth"])]
        self.norm = _LayerNorm(arrays, "norm")
        self.out = _Linear(arrays, "out")
        super().__init__(self._denoise, int(kw["dim"]))

    def network(self, x, c_noise):
        """The raw network ``F``: inputs ``x`` (K, dim) and ``c_noise`` (K,); float32 (K, dim)."""
        x = np.asarray(x, dtype=np.float32)
        c = np.asarray(c_noise, dtype=np.float32).reshape(-1, 1)
        return _in_chunks(self._network, x, c)

    def _network(self, x, c):
        angles = c * self.freqs
        feats = np.concatenate([c, np.sin(angles), np.cos(angles)], axis=1)
        e = _gelu(self.emb2(_gelu(self.emb1(feats))))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(self.norm(h))

    @one_blas_thread
    def _denoise(self, z, sigma):
        z = np.asarray(z, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64).reshape(-1, 1)
        if z.ndim != 2 or z.shape[1] != self.dim or s.shape[0] != z.shape[0]:
            raise ValueError(f"z must be (K, {self.dim}) and sigma (K,), got {z.shape} and "
                             f"{np.shape(sigma)}")
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (s * s + sd2)
        c_out = s * self.sigma_data / np.sqrt(s * s + sd2)
        c_in = 1.0 / np.sqrt(s * s + sd2)
        centred = z - self.mean
        F = self.network(c_in * centred, np.log(s[:, 0]) / 4.0)
        return self.mean + c_skip * centred + c_out * F.astype(np.float64)


class TextMLM(_NetworkAR):
    """Bidirectional transformer masked LM over characters (numpy forward pass).

    Pre-norm transformer encoder (:class:`fastspec.train.nets.MaskedTransformer`):
    token embedding (the ``q`` characters plus a mask token for free positions)
    plus a learned position embedding, ``depth`` layers of full (non-causal)
    multi-head self-attention and a GELU MLP, a final layer norm and a linear
    head to ``q`` logits. Trained like :class:`DigitsAR`, with random masking.
    Build it with :func:`text_mlm`.

    Attributes
    ----------
    n : int
        Window length in characters.
    q : int
        Vocabulary size (``len(vocab)``).
    vocab : str
        The characters, symbol ``i`` being ``vocab[i]``.
    config : dict
    """

    def __init__(self, arrays, config):
        kw = config["kwargs"]
        n, q = int(kw["n"]), int(kw["q"])
        self.config = config
        self.vocab = str(config["vocab"])
        if len(self.vocab) != q:
            raise ValueError(f"weights hold a vocabulary of {len(self.vocab)} characters for "
                             f"q={q}; the weight file is inconsistent, retrain it")
        self.heads = int(kw["heads"])
        self.tok = np.asarray(arrays["tok.weight"], dtype=np.float32)
        self.pos = np.asarray(arrays["pos"], dtype=np.float32)
        self.layers = []
        for i in range(kw["depth"]):
            p = f"layers.{i}."
            self.layers.append({
                "norm1": _LayerNorm(arrays, p + "norm1"), "qkv": _Linear(arrays, p + "qkv"),
                "proj": _Linear(arrays, p + "proj"), "norm2": _LayerNorm(arrays, p + "norm2"),
                "fc1": _Linear(arrays, p + "fc1"), "fc2": _Linear(arrays, p + "fc2")})
        self.norm = _LayerNorm(arrays, "norm")
        self.head = _Linear(arrays, "head")
        super().__init__(self._marginals, n, q, positions=True)

    @one_blas_thread
    def _logits(self, ctx, positions=None):
        K, n, d = ctx.shape[0], self.n, self.pos.shape[1]
        H = self.heads
        dh = d // H
        x = self.tok[np.where(ctx < 0, self.q, ctx)] + self.pos
        scale = np.float32(1.0 / np.sqrt(dh))
        for i, L in enumerate(self.layers):
            qkv = L["qkv"](L["norm1"](x)).reshape(K, n, 3, H, dh).transpose(2, 0, 3, 1, 4)
            queries = qkv[0]                                                # (K, H, n, dh)
            if positions is not None and i == len(self.layers) - 1:
                # The last layer's output is read at the listed positions only: their
                # queries and residual stream suffice (keys and values need every position).
                # A block row lists about a fifth of n, so the last layer shrinks by as
                # much (text_mlm, 25 rows of 12 positions, median of 40: 98 -> 80 ms).
                listed = np.maximum(positions, 0)
                queries = np.take_along_axis(queries, listed[:, None, :, None], axis=2)
                x = np.take_along_axis(x, listed[:, :, None], axis=1)
            scores = (queries * scale) @ qkv[1].transpose(0, 1, 3, 2)       # (K, H, m, n)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            att = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(x.shape)
            x = x + L["proj"](att)
            x = x + L["fc2"](_gelu(L["fc1"](L["norm2"](x))))
        return self.head(self.norm(x))

    def encode(self, text):
        """Symbol ids of ``text`` (see :func:`encode_text`)."""
        return encode_text(text, self.vocab)

    def decode(self, ids, free="_"):
        """Text of symbol ids (see :func:`decode_text`)."""
        return decode_text(ids, self.vocab, free)


# -- public constructors ------------------------------------------------------------------
# Each reads its weight file with load_weights, which raises FileNotFoundError (naming the
# command that writes the file) when it is missing.

def digits_ar():
    """The shipped any-order AR model of 8x8 digits (n = 64 pixels, q = 4 grey levels).

    Raises FileNotFoundError if ``weights/digits_ar.npz`` is missing (:func:`load_weights`).

    Returns
    -------
    DigitsAR
        An :class:`fastspec.ARModel`; symbols are :func:`quantise_digits` levels.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models.pretrained import digits_ar
    >>> model = digits_ar()
    >>> model.n, model.q
    (64, 4)
    >>> fastspec.sample(model, n_samples=2, seed=0).samples.shape
    (2, 64)
    """
    return DigitsAR(*load_weights("digits_ar"))


def digits_denoiser():
    """The shipped denoiser of 8x8 digits (dim = 64, pixels in ``[-1, 1]``).

    Raises FileNotFoundError if ``weights/digits_denoiser.npz`` is missing (:func:`load_weights`).

    Trained over ``sigma`` in ``DigitsDenoiser.sigma_range``, which covers the
    noise levels of ``fastspec.schedules.ve(1000, 80, 0.002)`` and
    ``fastspec.schedules.vp(1000)``.

    Returns
    -------
    DigitsDenoiser
        A :class:`fastspec.DiffusionModel`.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models.pretrained import digits_denoiser
    >>> model = digits_denoiser()
    >>> res = fastspec.sample(model, schedule=fastspec.schedules.ve(50, 80.0, 0.002),
    ...                       n_samples=2, seed=0)
    >>> res.samples.shape
    (2, 64)
    """
    return DigitsDenoiser(*load_weights("digits_denoiser"))


def text_mlm():
    """The shipped character masked LM (windows of n characters, q = its vocabulary).

    Raises FileNotFoundError if ``weights/text_mlm.npz`` is missing (:func:`load_weights`).

    Returns
    -------
    TextMLM
        An :class:`fastspec.ARModel`; ``model.decode(ids)`` gives the text.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models.pretrained import text_mlm
    >>> model = text_mlm()
    >>> res = fastspec.sample(model, n_samples=1, seed=0)
    >>> len(model.decode(res.samples[0])) == model.n
    True
    """
    return TextMLM(*load_weights("text_mlm"))


def digits_mixture():
    """The baseline: a mixture of products fit by EM to the quantised training digits.

    ``python -m fastspec.train digits-ar`` fits it beside :func:`digits_ar`. Raises
    FileNotFoundError if ``weights/digits_mixture.npz`` is missing (:func:`load_weights`).

    Returns
    -------
    MixtureOfProducts
        n = 64, q as :func:`digits_ar`; ``.config`` holds how it was fit.
    """
    arrays, config = load_weights("digits_mixture")
    model = MixtureOfProducts(arrays["weights"], arrays["probs"])
    model.config = config
    return model


# -- draft models (fastspec.sample(..., draft=)) -----------------------------------------

def text_bigram(smoothing=CHARACTER_SMOOTHING):
    """A character bigram chain over :func:`text_mlm`'s vocabulary: its draft model.

    ``T[a, b] = (1 - smoothing) C[a, b] / sum_b' C[a, b'] + smoothing / q``, with
    ``C[a, b]`` the times character ``b`` follows ``a`` inside the training chunks
    of :func:`text_mlm` (:func:`fastspec.train.data.text_split` of the normalised
    Python documentation, which ships with CPython: nothing is downloaded),
    started from its stationary law. Its any-order oracle is exact
    (:class:`fastspec.models.MarkovChain`), so it drafts any order.

    Parameters
    ----------
    smoothing : float in [0, 1], default 1e-3
        Weight of the uniform row mixed into every transition row.

    Returns
    -------
    MarkovChain
        ``n`` and ``q`` of :func:`text_mlm`, ``alphabet`` its vocabulary, ``counts``
        (q, q) int64 = C.

    Raises
    ------
    FileNotFoundError
        If text_mlm's weight file (which holds the vocabulary) is missing.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models.pretrained import text_bigram, text_mlm
    >>> model = text_mlm()
    >>> res = fastspec.sample(model, draft=text_bigram(), seed=0)
    >>> res.stats.draft_calls > 0
    True
    """
    from ..train import data
    config = load_weights("text_mlm")[1]
    vocab, n = str(config["vocab"]), int(config["kwargs"]["n"])
    q = len(vocab)
    lookup = np.full(256, -1, dtype=np.int64)       # the normalised text is ASCII
    lookup[np.frombuffer(vocab.encode("ascii"), np.uint8)] = np.arange(q)
    # "\n" is not in the vocabulary: no pair spans two chunks.
    text = "\n".join(data.text_split(data.python_doc_text())["train"])
    ids = lookup[np.frombuffer(text.encode("ascii"), np.uint8)]
    ok = (ids[:-1] >= 0) & (ids[1:] >= 0)
    counts = np.bincount(ids[:-1][ok] * q + ids[1:][ok], minlength=q * q).reshape(q, q)
    rows = counts.sum(axis=1, keepdims=True)
    transition = (1.0 - smoothing) * counts / np.maximum(rows, 1) + smoothing / q
    chain = MarkovChain(transition, n=n)
    chain.alphabet = vocab
    chain.counts = counts
    return chain


@functools.lru_cache(maxsize=1)
def _digits_moments():
    from ..train import data
    pixels, _ = data.digits_pixels()
    train = digits_to_unit(pixels[data.digits_split()["train"]])
    return train.mean(axis=0), np.cov(train, rowvar=False)


def digits_gaussian():
    """The best linear denoiser of the digits: the draft model of :func:`digits_denoiser`.

    The posterior mean of ``x ~ N(mu, Sigma)``,
    ``D(z, sigma) = mu + Sigma (Sigma + sigma^2 I)^-1 (z - mu)``, with ``mu`` and
    ``Sigma`` the mean and covariance of the denoiser's training digits in its
    units (``[-1, 1]``, :func:`digits_to_unit`): the best affine denoiser of any
    data with those moments (:func:`fastspec.train.baselines.linear_denoiser`,
    the "linear Gaussian" baseline of docs/PRETRAINED.md).

    Returns
    -------
    DiffusionModel
        ``dim = 64``; ``.mean`` (64,) and ``.cov`` (64, 64) float64.

    Raises
    ------
    ImportError
        Without scikit-learn (the digits) or scipy: ``pip install 'fastspec[train]'``.

    Examples
    --------
    >>> import fastspec
    >>> from fastspec.models.pretrained import digits_denoiser, digits_gaussian
    >>> res = fastspec.sample(digits_denoiser(), draft=digits_gaussian(),
    ...                       schedule=fastspec.schedules.ve(50, 80.0, 0.002), seed=0)
    >>> res.samples.shape
    (1, 64)
    """
    from ..train import baselines
    mean, cov = _digits_moments()
    model = DiffusionModel(baselines.linear_denoiser(mean, cov), dim=mean.shape[0])
    model.mean, model.cov = mean, cov
    return model
