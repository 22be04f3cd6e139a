"""Reference models with exact oracles (numba kernels, ``prange`` over rows).

AR: :class:`MarkovChain`, :class:`MixtureOfProducts`, :class:`CurieWeiss`,
:class:`TableModel`, :class:`NeuralAR`. Diffusion: :class:`PointCloud`,
:class:`GaussianMixture`, :class:`Gaussian`, :class:`NeuralDenoiser`.
Models trained on real data: :mod:`fastspec.models.pretrained` (``digits_ar()``,
``digits_denoiser()``, ``text_mlm()``; weights load when called).
"""

from .ar import CurieWeiss, MarkovChain, MixtureOfProducts, TableModel
from .diffusion import Gaussian, GaussianMixture, PointCloud
from .neural import NeuralAR, NeuralDenoiser
from . import pretrained

__all__ = ["CurieWeiss", "Gaussian", "GaussianMixture", "MarkovChain", "MixtureOfProducts",
           "NeuralAR", "NeuralDenoiser", "PointCloud", "TableModel", "pretrained"]
