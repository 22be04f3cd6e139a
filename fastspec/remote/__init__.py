"""Models behind an inference server: the Open Inference Protocol (V2) as a fastspec oracle.

* :func:`ar_model`, :func:`diffusion_model`: a V2 endpoint (KServe, Triton,
  MLServer, OpenVINO Model Server, or ``python -m fastspec.remote serve``)
  turned into a :class:`fastspec.ARModel` or :class:`fastspec.DiffusionModel`;
* :func:`sample`: :func:`fastspec.sample` with several rounds in flight
  (``max_in_flight``), bit-identical samples;
* :mod:`fastspec.remote.server`: serving fastspec models with KServe's model
  server (``python -m fastspec.remote serve MODEL --port P``).

An optional extra: ``pip install "fastspec[remote]"`` (httpx for the client,
KServe for the server). ``import fastspec`` does not import this package.
See docs/REMOTE.md.
"""

from .client import RemoteError, ar_model, diffusion_model
from .inflight import sample

__all__ = ["RemoteError", "ar_model", "diffusion_model", "sample"]
