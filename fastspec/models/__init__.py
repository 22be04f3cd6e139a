"""Reference models with exact oracles (numba kernels, ``prange`` over rows).

AR: :class:`MarkovChain`, :class:`MixtureOfProducts`, :class:`CurieWeiss`,
:class:`TableModel`. Diffusion: :class:`PointCloud`, :class:`GaussianMixture`,
:class:`Gaussian`.
"""

from .ar import CurieWeiss, MarkovChain, MixtureOfProducts, TableModel

try:  # the diffusion models are being written alongside
    from .diffusion import Gaussian, GaussianMixture, PointCloud
except ImportError:  # pragma: no cover
    pass
