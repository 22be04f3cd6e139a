"""Serving fastspec models over the Open Inference Protocol (V2) with KServe's model server.

``python -m fastspec.remote serve MODEL [MODEL ...] --port P`` runs
:func:`serve`; :func:`start_server` starts it as a child process and waits until
it is ready (what the tests and ``python -m fastspec.bench remote`` do).

Tensor contract (the client's defaults, :mod:`fastspec.remote.client`):

* AR models: input ``context`` INT64 ``(K, n)`` with ``-1`` for free positions,
  optional input ``positions`` INT64 ``(K, W)`` (free positions of each row,
  padded at the end with ``-1``); output ``marginals`` ``(K, n, q)`` without
  ``positions``, ``(K, W, q)`` with it (padding rows hold ``1/q``), in the
  dtype the model answers in (float64 for the reference models, float32 for the
  shipped networks).
* Diffusion models: inputs ``z`` ``(K, *shape)`` and ``sigma`` ``(K,)``, FP32
  or FP64; output ``denoised``, the shape and dtype of ``z``.

KServe binds its HTTP server to every interface; :func:`serve` binds it to
``host`` (the loopback address unless told otherwise) and turns KServe's gRPC
server off.
"""

import asyncio
import ctypes
import ctypes.util
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from .client import TENSOR_NAMES

__all__ = ["MODELS", "build_model", "serve", "start_server", "ServerProcess", "free_port"]

DEFAULT_HOST = "127.0.0.1"


def _markov3():
    # The sticky 3-state chain of tests/test_ar_exactness.py: q**n = 729, enumerable.
    from ..models import MarkovChain
    return MarkovChain([[6.0, 1.0, 0.5], [1.0, 6.0, 1.0], [0.5, 1.0, 6.0]],
                       initial=[0.6, 0.3, 0.1], n=6)


def _markov256():
    # The chain of issue 22's first measurement: n = 256, q = 27, random sticky transitions.
    from ..models import MarkovChain
    rng = np.random.default_rng(22)
    transition = rng.dirichlet(np.full(27, 0.3), size=27) + 2.0 * np.eye(27)
    return MarkovChain(transition, n=256)


def _gaussian_mixture():
    # A 2-d mixture of three Gaussians: exact denoiser, closed-form law.
    from ..models import GaussianMixture
    return GaussianMixture([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], [0.5, 0.7, 0.4],
                           weights=[0.5, 0.3, 0.2])


def _pretrained(name):
    def factory():
        from ..models import pretrained
        return getattr(pretrained, name)()
    return factory


#: Models served by name: the shipped ones and a few small reference models.
MODELS = {
    "digits_ar": _pretrained("digits_ar"),
    "text_mlm": _pretrained("text_mlm"),
    "digits_denoiser": _pretrained("digits_denoiser"),
    "digits_mixture": _pretrained("digits_mixture"),
    "markov3": _markov3,
    "markov256": _markov256,
    "gaussian_mixture": _gaussian_mixture,
}


def build_model(spec):
    """The fastspec model named by ``spec``: a key of :data:`MODELS` or ``module:callable``.

    Returns
    -------
    name : str
        The name it is served under (the key, or the callable's name).
    model : ARModel or DiffusionModel

    Raises
    ------
    ValueError
        If ``spec`` names no model or the factory does not return one.
    """
    from .. import ARModel, DiffusionModel
    if spec in MODELS:
        name, model = spec, MODELS[spec]()
    elif ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import the model factory {spec!r}: {exc}") from None
        name, model = attr, factory()
    else:
        raise ValueError(f"unknown model {spec!r}: give one of {', '.join(MODELS)} or "
                         "'package.module:factory' (a callable returning a fastspec model)")
    if not isinstance(model, (ARModel, DiffusionModel)):
        raise ValueError(f"{spec!r} gave a {type(model).__name__}, not a fastspec.ARModel or "
                         "fastspec.DiffusionModel")
    return name, model


# -- the answers (plain numpy: tested without a server) ----------------------------------------

def ar_answer(model, context, positions=None):
    """What the server answers for an AR model: dense marginals, or those at ``positions``.

    Parameters
    ----------
    model : ARModel
    context : ndarray of int64, shape (K, n)
    positions : None or ndarray of int64, shape (K, W)
        Free positions per row padded at the end with -1.

    Returns
    -------
    ndarray (K, n, q) or (K, W, q), in the dtype the model answers in
        Padding entries hold ``1/q``.
    """
    context = np.ascontiguousarray(context, dtype=np.int64)
    if positions is None:
        return np.array(model.marginals(context), copy=True)
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    if getattr(model, "positions", False):      # the engine's positions protocol
        return np.array(model.marginals(context, positions), copy=True)
    dense = np.asarray(model.marginals(context))
    k = np.arange(context.shape[0])[:, None]
    out = dense[k, np.maximum(positions, 0)]
    out[positions < 0] = 1.0 / model.q
    return out


def diffusion_answer(model, z, sigma):
    """The denoiser's answer for ``z`` ``(K, *shape)``: the shape and dtype of ``z``."""
    flat = np.ascontiguousarray(np.reshape(z, (z.shape[0], -1)), dtype=np.float64)
    den = np.asarray(model.denoise(flat, np.ascontiguousarray(sigma, dtype=np.float64)))
    return den.reshape(z.shape).astype(z.dtype)


def _check_input(name, array, ndim, what):
    if array is None:
        raise ValueError(f"the request has no input {name!r}; {what}")
    if array.ndim != ndim:
        raise ValueError(f"input {name!r} has shape {list(array.shape)}; {what}")


# -- KServe ------------------------------------------------------------------------------------

def _kserve():
    """Import KServe with an empty command line (it parses ``sys.argv`` when imported)."""
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve
        import kserve.model_server  # noqa: F401  (parses its arguments here)
        from kserve.protocol.rest.server import RESTServer
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError("serving needs KServe: pip install \"fastspec[remote]\"") from exc
    finally:
        sys.argv = argv
    return kserve, RESTServer


def _binary_dataplane(kserve):
    """KServe's DataPlane reading binary inputs as arrays (:func:`protocol.decode_request`).

    KServe 0.21 turns each binary input into a Python list and back; a request
    with a (1200, 256) INT64 context took 98 ms through it. Requests it cannot
    read this way (JSON data, BYTES tensors) go to KServe's own parser.
    """
    from kserve.errors import InvalidInput
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

    from .protocol import HEADER_LENGTH, decode_request

    class BinaryDataPlane(DataPlane):
        def decode_inference_request(self, body, headers, model_name):
            if not isinstance(body, bytes) or HEADER_LENGTH not in headers:
                return super().decode_inference_request(body, headers, model_name)
            try:
                header, tensors = decode_request(body, headers)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            if any(array is None for array, _ in tensors.values()):
                return super().decode_inference_request(body, headers, model_name)
            inputs = []
            for name, (array, datatype) in tensors.items():
                tensor = InferInput(name, list(array.shape), datatype)
                tensor.set_data_from_numpy(array, binary_data=True)
                inputs.append(tensor)
            outputs = [RequestedOutput(name=o["name"], parameters=o.get("parameters"))
                       for o in header.get("outputs") or ()]
            return InferRequest(model_name=model_name, request_id=header.get("id"),
                                parameters=header.get("parameters"), infer_inputs=inputs,
                                request_outputs=outputs or None)

    return BinaryDataPlane


def _served_model_class(kserve):
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferResponse

    class ServedModel(kserve.Model):
        """One fastspec model behind KServe; ``delay`` seconds added to every call."""

        def __init__(self, name, model, delay, names, instances=1):
            super().__init__(name)
            self.model, self.delay, self.names = model, float(delay), names
            # An oracle may answer in a buffer it reuses (the ARModel contract), so at
            # most ``instances`` calls compute at once, each answer copied before release.
            self._lock = threading.Semaphore(int(instances))
            self.ready = True

        def _compute(self, inputs):
            from .. import ARModel
            with self._lock:
                if isinstance(self.model, ARModel):
                    ctx, pos = inputs.get(self.names["context"]), inputs.get(self.names["positions"])
                    _check_input(self.names["context"], ctx, 2, "send the contexts as INT64 (K, n)")
                    if ctx.shape[1] != self.model.n:
                        raise ValueError(f"context has {ctx.shape[1]} columns, the model has "
                                         f"n = {self.model.n}")
                    if pos is not None:
                        _check_input(self.names["positions"], pos, 2, "positions is INT64 (K, W)")
                    return self.names["marginals"], ar_answer(self.model, ctx, pos)
                z, sigma = inputs.get(self.names["z"]), inputs.get(self.names["sigma"])
                _check_input(self.names["sigma"], sigma, 1, "send sigma as (K,)")
                if z is None or z.ndim < 2 or int(np.prod(z.shape[1:])) != self.model.dim:
                    raise ValueError(f"input {self.names['z']!r} must be (K, *shape) with "
                                     f"{self.model.dim} values per row")
                return self.names["denoised"], diffusion_answer(self.model, z, sigma)

        async def predict(self, payload, headers=None, response_headers=None):
            inputs = {t.name: t.as_numpy() for t in payload.inputs}
            try:
                name, out = await asyncio.to_thread(self._compute, inputs)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            out = np.ascontiguousarray(out)
            if out.dtype not in (np.float32, np.float64):
                out = out.astype(np.float64)
            tensor = InferOutput(name, list(out.shape), "FP32" if out.dtype == np.float32
                                 else "FP64")
            tensor.set_data_from_numpy(out, binary_data=True)
            return InferResponse(response_id=payload.id, model_name=self.name,
                                 infer_outputs=[tensor], use_binary_outputs=True)

    return ServedModel


#: Bytes of freed heap the server keeps for its next call (glibc's ``M_TOP_PAD``).
HEAP_TOP_PAD = 64 << 20


def keep_freed_heap(top_pad=HEAP_TOP_PAD):
    """Ask glibc to keep ``top_pad`` bytes of freed heap instead of returning them to the OS.

    A forward pass allocates and frees the same few-MB temporaries on every
    call. By default glibc hands the freed top of the heap back to the OS, so
    the next call pays the page faults again: a 14-row call of ``text_mlm``
    took 26.7 ms, against 18.4 ms with 64 MiB kept (docs/REMOTE.md,
    "The server's heap"). The server's process is the server's own, so it sets
    this for itself; the engine never changes a user's process this way.

    Returns
    -------
    bool
        Whether the C library took the setting (False off glibc).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-2, int(top_pad)))      # -2 is M_TOP_PAD in <malloc.h>
    except (OSError, AttributeError):                     # not glibc: nothing to set
        return False


def serve(specs, *, port, host=DEFAULT_HOST, delay=0.0, names=None, instances=1):
    """Serve the models ``specs`` over V2 HTTP until SIGINT or SIGTERM (blocks).

    Parameters
    ----------
    specs : list of str
        Model names (:data:`MODELS` keys or ``module:callable``).
    port : int
        TCP port of the HTTP server.
    host : str, default "127.0.0.1"
        Address to listen on: the loopback address unless told otherwise.
    delay : float, default 0.0
        Seconds added to every inference call (after the model's compute,
        without holding the model), to emulate the latency of a remote GPU.
    names : dict, optional
        Tensor names overriding :data:`TENSOR_NAMES`.
    instances : int, default 1
        Calls of one model computed at once (as Triton's instance groups, or
        a GPU's streams). Above 1 the model's oracle must be thread-safe and
        must not answer in a buffer it reuses (the shipped and reference
        models allocate every answer).

    Raises
    ------
    ValueError
        If a model name is unknown.
    """
    keep_freed_heap()
    built = [build_model(spec) for spec in specs]     # a bad name fails before KServe loads
    kserve, RESTServer = _kserve()
    served = _served_model_class(kserve)
    names = dict(TENSOR_NAMES, **(names or {}))
    models = [served(name, model, delay, names, instances) for name, model in built]
    server = kserve.ModelServer(http_port=int(port), enable_grpc=False, workers=1,
                                enable_latency_logging=False, grace_period=1)
    server.dataplane = _binary_dataplane(kserve)(model_registry=server.registered_models)
    for m in models:
        server.register_model(m)
    rest = RESTServer("kserve.model_server:app", server.dataplane,
                      server.model_repository_extension, int(port), grace_period=1)
    rest.config.host = host              # KServe hard-codes 0.0.0.0
    rest.config.access_log = False
    import logging
    for logger in ("kserve", "kserve.trace", "uvicorn", "uvicorn.access"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    print(f"fastspec.remote: serving {', '.join(m.name for m in models)} on http://{host}:{port} "
          f"(delay {1000 * delay:g} ms per call); stop with Ctrl-C or SIGTERM", flush=True)
    rest.run()                           # uvicorn: stops on SIGINT / SIGTERM


# -- a server in a child process ---------------------------------------------------------------

def stop_with_parent(parent_pid, period=1.0):
    """SIGTERM this process once ``parent_pid`` is no longer its parent (a daemon thread).

    A server started by :func:`start_server` so ends with the process that
    started it, even when that one is killed before it can call ``stop()``.
    """
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(period)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="fastspec-parent-watch", daemon=True).start()


def free_port(host=DEFAULT_HOST):
    """A TCP port free on ``host`` right now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``python -m fastspec.remote serve`` child process; ``stop()`` ends it.

    Attributes
    ----------
    url : str
        ``host:port`` to give the client.
    process : subprocess.Popen
    """

    def __init__(self, process, url, log):
        self.process, self.url, self._log = process, url, log

    def log(self):
        """What the server printed so far (stderr and stdout)."""
        self._log.flush()
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def kill(self):
        """End the server at once (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after ``timeout`` seconds; idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


#: Thread counts :func:`start_server` gives the server unless told otherwise: the
#: shipped models' matmuls are small, and on a shared 2-core machine (load 8.8)
#: multi-threaded BLAS made a block call of digits_ar 8x slower (one sample:
#: 0.50-0.65 s against 0.063 s single-threaded, docs/REMOTE.md).
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "NUMBA_NUM_THREADS": "1"}


def start_server(specs, *, port=None, host=DEFAULT_HOST, delay=0.0, timeout=60.0, env=None,
                 instances=1):
    """Start ``python -m fastspec.remote serve`` in a child process and wait until it is ready.

    Parameters
    ----------
    specs : str or list of str
        Models to serve (see :func:`build_model`).
    port : int, optional
        Default: a free port chosen by the OS.
    host : str, default "127.0.0.1"
    delay : float, default 0.0
        Seconds added to every call (see :func:`serve`).
    timeout : float, default 60.0
        Seconds to wait for every model to be ready.
    instances : int, default 1
        Calls of one model computed at once (see :func:`serve`).
    env : dict, optional
        Environment of the child. Default: this process's, with
        :data:`SINGLE_THREADED` set where it is unset.

    Returns
    -------
    ServerProcess
        Use it as a context manager, or call ``stop()``.

    Raises
    ------
    RuntimeError
        If the server exits or is not ready within ``timeout``; the message
        holds the end of its log.
    """
    import httpx
    specs = [specs] if isinstance(specs, str) else list(specs)
    port = free_port(host) if port is None else int(port)
    log = tempfile.NamedTemporaryFile("w+", prefix="fastspec-remote-", suffix=".log",
                                      delete=False)
    cmd = [sys.executable, "-m", "fastspec.remote", "serve", *specs, "--host", host,
           "--port", str(port), "--delay-ms", repr(1000.0 * float(delay)),
           "--instances", str(int(instances)), "--parent-pid", str(os.getpid())]
    if env is None:
        env = dict(SINGLE_THREADED, **os.environ)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env)
    handle = ServerProcess(proc, f"{host}:{port}", log)
    names = [build_name(s) for s in specs]
    deadline = time.monotonic() + float(timeout)
    with httpx.Client(timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                text = handle.log()
                handle.stop()
                raise RuntimeError(f"the fastspec.remote server ({' '.join(cmd)}) exited with "
                                   f"code {proc.returncode}:\n{text[-2000:]}")
            try:
                if all(client.get(f"http://{host}:{port}/v2/models/{n}/ready").status_code
                       == 200 for n in names):
                    return handle
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                text = handle.log()
                handle.stop()
                raise RuntimeError(f"the fastspec.remote server on {host}:{port} was not ready "
                                   f"after {timeout:g} s:\n{text[-2000:]}")
            time.sleep(0.05)


def build_name(spec):
    """The name ``spec`` is served under (without building the model)."""
    return spec if spec in MODELS or ":" not in spec else spec.partition(":")[2]
