"""Diffusion pipeline: denoiser oracle, Gaussian chains, autospeculation.

:class:`DiffusionModel` wraps a denoiser; :func:`sample_diffusion` is what
:func:`fastspec.sample` calls for it; the numba kernels live in
:mod:`fastspec.diffusion.kernels`.
"""

from .model import DiffusionModel
from .sampling import sample_diffusion

__all__ = ["DiffusionModel", "sample_diffusion"]
