"""Models whose oracle is a V2 inference endpoint: :func:`ar_model` and :func:`diffusion_model`.

Each oracle call is one ``POST /v2/models/{name}/infer`` with binary tensor data
(:mod:`fastspec.remote.protocol`) through an ``httpx.Client``, which is
thread-safe and keeps its connections open between calls.

Failure policy: every request has a timeout; a connection error (refused,
reset, dropped mid-answer) or an HTTP 503 is retried ``retries`` times, after
``backoff``, ``2 * backoff``, ... seconds; anything else (a timeout, another
HTTP error, an answer of the wrong name, dtype or shape) raises
:class:`RemoteError` at once. The message names the URL, the model and the
oracle call; :func:`fastspec.sample` adds a note naming the round. A call
therefore ends within about ``(retries + 1) * timeout + backoff * 2**retries``
seconds whatever the server does.
"""

import math
import threading

import numpy as np

from .._checks import check_int
from ..diffusion.oracle import as_shape

from .protocol import decode_response, encode_request

__all__ = ["RemoteError", "Endpoint", "RemoteMarginals", "RemoteDenoiser", "ar_model",
           "diffusion_model", "TENSOR_NAMES"]

#: Default tensor names (the contract of :mod:`fastspec.remote.server`).
TENSOR_NAMES = {"context": "context", "positions": "positions", "marginals": "marginals",
                "z": "z", "sigma": "sigma", "denoised": "denoised"}
_FLOATS = {"FP32": np.float32, "FP64": np.float64}


class RemoteError(RuntimeError):
    """An inference server could not be reached, or its answer breaks the tensor contract."""


def _base_url(url):
    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a str such as '127.0.0.1:8080', got {url!r}")
    url = url.rstrip("/")
    return url if "://" in url else "http://" + url


def _check_seconds(name, value, allow_zero=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"number of seconds, got {value!r}")
    return float(value)


class Endpoint:
    """One model on a V2 server: ``infer(inputs, output)`` with timeouts and bounded retries.

    Parameters
    ----------
    url : str
        ``host:port`` (or ``http://host:port``) of the server.
    model_name : str
        The model's name on the server.
    timeout : float, default 30.0
        Seconds allowed to connect, send, and wait for each answer.
    retries : int, default 3
        Further attempts after a connection error or an HTTP 503.
    backoff : float, default 0.05
        Seconds before the first retry, doubled before each next one.
    """

    def __init__(self, url, model_name, *, timeout=30.0, retries=3, backoff=0.05):
        import httpx
        if not isinstance(model_name, str) or not model_name:
            raise TypeError(f"model_name must be a non-empty str, got {model_name!r}")
        check_int("retries", retries, 0)
        self.url = _base_url(url)
        self.model_name = model_name
        self.timeout = _check_seconds("timeout", timeout)
        self.retries = retries
        self.backoff = _check_seconds("backoff", backoff, allow_zero=True)
        self._path = f"{self.url}/v2/models/{model_name}/infer"
        self._client = httpx.Client(timeout=self.timeout)
        self._httpx = httpx
        self._lock = threading.Lock()
        self._stop = threading.Event()      # never set: an interruptible sleep between retries
        self.calls = 0

    def __repr__(self):
        return f"Endpoint({self.url!r}, {self.model_name!r})"

    def close(self):
        """Close the HTTP connections (also done when the endpoint is garbage collected)."""
        self._client.close()

    def __del__(self):
        client = getattr(self, "_client", None)
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def _fail(self, call, what):
        return RemoteError(f"fastspec.remote: model {self.model_name!r} at {self.url}, oracle "
                           f"call {call}: {what}")

    def infer(self, inputs, output):
        """Send ``inputs`` ``[(name, array), ...]``; the float array ``output`` of the answer.

        Returns
        -------
        array : ndarray of float32 or float64
            A read-only view of the answer's bytes.
        call : int
            The number of this call (1, 2, ...), for error messages.

        Raises
        ------
        RemoteError
            Server unreachable after the retries, a timeout, an HTTP error, or
            an answer without a float32/float64 output ``output``.
        """
        with self._lock:
            self.calls += 1
            call = self.calls
        body, headers = encode_request(inputs, [output])
        httpx = self._httpx
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                r = self._client.post(self._path, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise self._fail(call, f"no answer within the timeout of {self.timeout:g} s "
                                       f"({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                if last:
                    raise self._fail(call, f"cannot reach the server after {attempt + 1} "
                                           f"attempts ({type(exc).__name__}: {exc}); is it "
                                           "running?") from None
            else:
                if r.status_code != 503 or last:
                    break
            self._stop.wait(self.backoff * 2 ** attempt)
        if r.status_code != 200:
            detail = r.text[:300].strip()
            hint = " (is the model name right?)" if r.status_code == 404 else ""
            raise self._fail(call, f"HTTP {r.status_code}{hint}: {detail}")
        try:
            tensors = decode_response(r.content, r.headers)
        except ValueError as exc:
            raise self._fail(call, str(exc)) from None
        if output not in tensors:
            raise self._fail(call, f"the answer has no output {output!r} (it has "
                                   f"{sorted(map(str, tensors))}); set the tensor names")
        array, datatype = tensors[output]
        if datatype not in _FLOATS:
            raise self._fail(call, f"output {output!r} has datatype {datatype}; expected FP32 "
                                   "or FP64")
        return array, call


class RemoteMarginals:
    """The ``marginals`` oracle of an AR model served at an :class:`Endpoint`.

    ``marginals(ctx)`` sends ``context`` INT64 ``(K, n)`` and expects ``(K, n, q)``;
    ``marginals(ctx, positions)`` also sends ``positions`` INT64 ``(K, W)`` and
    expects ``(K, W, q)``.
    """

    def __init__(self, endpoint, n, q, names):
        self.endpoint, self.n, self.q, self.names = endpoint, n, q, names

    def __call__(self, ctx, positions=None):
        ctx = np.ascontiguousarray(ctx, dtype=np.int64)
        inputs = [(self.names["context"], ctx)]
        width = self.n
        if positions is not None:
            positions = np.ascontiguousarray(positions, dtype=np.int64)
            inputs.append((self.names["positions"], positions))
            width = positions.shape[1]
        out, call = self.endpoint.infer(inputs, self.names["marginals"])
        expected = (ctx.shape[0], width, self.q)
        if out.shape != expected:
            raise self.endpoint._fail(
                call, f"output {self.names['marginals']!r} has shape "
                f"{list(out.shape)}; expected {list(expected)} = (K, {'W' if positions is not None else 'n'}, q)")
        return out

    def close(self):
        self.endpoint.close()


class RemoteDenoiser:
    """The ``denoise`` oracle of a diffusion model served at an :class:`Endpoint`.

    Sends ``z`` ``(K, *shape)`` and ``sigma`` ``(K,)`` in ``dtype``; expects
    ``denoised`` ``(K, *shape)``; returns it in the shape ``z`` came in.
    """

    def __init__(self, endpoint, shape, dtype, names):
        self.endpoint, self.shape, self.dtype, self.names = endpoint, shape, dtype, names

    def __call__(self, z, sigma):
        z = np.asarray(z)
        k = z.shape[0]
        zs = np.ascontiguousarray(z.reshape((k,) + self.shape), dtype=self.dtype)
        sig = np.ascontiguousarray(sigma, dtype=self.dtype)
        out, call = self.endpoint.infer([(self.names["z"], zs), (self.names["sigma"], sig)],
                                        self.names["denoised"])
        if out.shape != zs.shape:
            raise self.endpoint._fail(
                call, f"output {self.names['denoised']!r} has shape "
                f"{list(out.shape)}; expected {list(zs.shape)} = (K, *shape)")
        return out.reshape(z.shape)

    def close(self):
        self.endpoint.close()


def _names(names):
    if names is None:
        return dict(TENSOR_NAMES)
    if not isinstance(names, dict):
        raise TypeError(f"names must be a dict with keys among {sorted(TENSOR_NAMES)}, got "
                        f"{names!r}")
    if not set(names) <= set(TENSOR_NAMES):
        raise ValueError(f"names must be a dict with keys among {sorted(TENSOR_NAMES)}, got "
                         f"{names!r}")
    return dict(TENSOR_NAMES, **names)


def ar_model(url, model_name, *, n, q, positions=False, timeout=30.0, retries=3, backoff=0.05,
             names=None):
    """An :class:`fastspec.ARModel` whose marginal oracle is a V2 inference endpoint.

    Parameters
    ----------
    url : str
        ``host:port`` of the server (``http://`` is added).
    model_name : str
        The model's name on the server.
    n, q : int
        Sequence length and alphabet size of the served model.
    positions : bool, default False
        Use the positions protocol: the engine asks for the marginals of the
        positions it needs only, and the request carries an input
        ``positions`` INT64 ``(K, W)`` (free positions per row, padded with
        -1); the answer is ``(K, W, q)`` instead of ``(K, n, q)``.
    timeout, retries, backoff : see :class:`Endpoint`
    names : dict, optional
        Tensor names instead of ``context``, ``positions``, ``marginals``: keys among
        :data:`TENSOR_NAMES` (the protocol's roles), values the server's names; a
        role left out keeps its default name.

    Returns
    -------
    ARModel
        Its ``marginals`` is a :class:`RemoteMarginals` (``.endpoint.calls``
        counts the calls; ``.close()`` closes the connections).

    Raises
    ------
    ValueError
        For a bad argument.

    Examples
    --------
    >>> import fastspec.remote
    >>> model = fastspec.remote.ar_model("127.0.0.1:8080", "digits_ar", n=64, q=4)
    >>> model
    ARModel(n=64, q=4)
    """
    from .. import ARModel
    oracle = RemoteMarginals(Endpoint(url, model_name, timeout=timeout, retries=retries,
                                      backoff=backoff), n, q, _names(names))
    return ARModel(oracle, n, q, positions=positions)      # ARModel checks positions


def diffusion_model(url, model_name, *, shape, dtype="FP32", timeout=30.0, retries=3,
                    backoff=0.05, names=None):
    """A :class:`fastspec.DiffusionModel` whose denoiser is a V2 inference endpoint.

    Parameters
    ----------
    url : str
        ``host:port`` of the server.
    model_name : str
    shape : int or tuple of int
        Shape of one data point on the server (e.g. ``(8, 8)``); rows reach
        the server as ``(K, *shape)`` and samples come back as
        ``(n_samples, *shape)``.
    dtype : {"FP32", "FP64"}, default "FP32"
        Datatype of ``z`` and ``sigma`` on the wire. "FP64" sends the engine's
        values unrounded, so the samples equal those of the local model.
    timeout, retries, backoff : see :class:`Endpoint`
    names : dict, optional
        Tensor names instead of ``z``, ``sigma``, ``denoised``.

    Returns
    -------
    DiffusionModel
        Of data shape ``shape``; its ``denoise`` is a :class:`RemoteDenoiser`.

    Examples
    --------
    >>> import fastspec.remote
    >>> fastspec.remote.diffusion_model("127.0.0.1:8080", "digits_denoiser", shape=(8, 8))
    DiffusionModel(shape=(8, 8))
    """
    from .. import DiffusionModel
    shape = as_shape(shape)
    if dtype not in _FLOATS:
        raise ValueError(f"dtype must be 'FP32' or 'FP64', got {dtype!r}")
    oracle = RemoteDenoiser(Endpoint(url, model_name, timeout=timeout, retries=retries,
                                     backoff=backoff), shape, _FLOATS[dtype], _names(names))
    # Rows reach the oracle as (K, *shape) and samples come back as (n_samples, *shape).
    return DiffusionModel(oracle, shape=shape)
