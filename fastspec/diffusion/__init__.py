"""Diffusion pipeline: denoiser oracle, Gaussian chains, autospeculation.

:class:`DiffusionModel` wraps a denoiser; the batched samplers live in
:mod:`fastspec.diffusion.sampler` (sequential, token, block) and
:mod:`fastspec.diffusion.srs`, their numba kernels in
:mod:`fastspec.diffusion.kernels`.
"""

from .oracle import DiffusionModel

__all__ = ["DiffusionModel"]
