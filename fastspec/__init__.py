"""fastspec: exact parallel sampling by autospeculation.

Draw exact samples from any-order autoregressive models (through an oracle of
conditional marginals) and from diffusion models (through a denoiser), using
far fewer sequential oracle rounds than ancestral sampling.
"""

from ._errors import OracleError
from ._result import SampleResult, SampleStats
from .api import METHODS, sample
from .ar.oracle import ARModel
from .diffusion.oracle import DiffusionModel
from . import models, schedules

__all__ = [
    "ARModel", "DiffusionModel", "METHODS", "OracleError", "SampleResult", "SampleStats",
    "models", "sample", "schedules",
]
__version__ = "0.2.0"
