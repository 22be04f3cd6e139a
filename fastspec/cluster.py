"""``fastspec.cluster.sample``: one call's samples drawn in chunks on Dask workers.

Sample ``i`` of a call is a function of ``(seed, i)`` alone (see
:mod:`fastspec._seeds`), so a call can be cut into chunks of consecutive
samples, each chunk drawn on any worker, and the pieces put back together give
bit for bit what :func:`fastspec.sample` gives on one machine.

Dask is an optional dependency (``pip install "fastspec[distributed]"``): it is
imported inside the functions below, and ``import fastspec`` does not import
this module.
"""

import collections
import inspect
import threading
import time

import numpy as np

__all__ = ["sample"]

#: Models built on one worker process and kept for later chunks and calls, keyed
#: by the token of their factory (at most :data:`MAX_CACHED_MODELS`, least
#: recently used dropped first).
_MODELS = collections.OrderedDict()
_MODELS_LOCK = threading.Lock()
MAX_CACHED_MODELS = 4

# Keywords this module sets itself, or that only make sense for a model object.
_RESERVED = ("model", "n_samples", "seed")


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without dask installed
        raise ImportError(
            "fastspec.cluster needs Dask's distributed scheduler: "
            "pip install \"fastspec[distributed]\" (or dask[distributed])") from exc
    return distributed


def _get_client(client):
    distributed = _import_distributed()
    if client is None:
        try:
            return distributed.get_client()
        except ValueError:
            raise ValueError(
                "fastspec.cluster.sample found no Dask client: pass client=..., or start "
                "one first, e.g. `from distributed import Client; client = Client()` for "
                "worker processes on this machine, or `Client(\"tcp://scheduler:8786\")` for "
                "an existing cluster") from None
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client or None, got "
                        f"{type(client).__name__}; connect to a scheduler first with "
                        f"distributed.Client(\"tcp://scheduler:8786\")")
    return client


def _check_chunk_size(chunk_size):
    from ._checks import check_int
    return check_int("chunk_size", chunk_size, 1, what=" (samples per Dask task)",
                     allow_none=True)


def _check_kwargs(n_samples, sample_kwargs, caller="fastspec.cluster.sample"):
    """Reject what :func:`fastspec.sample` would reject by name, on the client."""
    from .api import sample as local_sample
    for key in _RESERVED:
        if key in sample_kwargs:
            raise TypeError(f"{caller} got {key}=; "
                            + ("pass model_factory, a callable that builds the model, instead"
                               if key == "model" else f"{key} is its own argument"))
    params = inspect.signature(local_sample).parameters
    for key in sample_kwargs:
        if key not in params:
            raise TypeError(f"{caller} got an unexpected keyword argument "
                            f"{key!r}; it passes on those of fastspec.sample: "
                            f"{', '.join(p for p in params if p not in _RESERVED)}")
    given = sample_kwargs.get("given")
    if given is not None and np.ndim(given) == 2 and np.shape(given)[0] != n_samples:
        raise ValueError(f"given must have shape (n,) or (n_samples, n) with n_samples = "
                         f"{n_samples}; got shape {np.shape(given)}")


def _chunk_kwargs(sample_kwargs, start, stop):
    """The keywords of samples ``start .. stop - 1``: a per-sample ``given`` is sliced."""
    given = sample_kwargs.get("given")
    if given is None or np.ndim(given) != 2:
        return sample_kwargs
    return dict(sample_kwargs, given=np.asarray(given)[start:stop])


def default_chunk_size(n_samples, n_threads):
    """About two chunks per worker thread: ``max(1, ceil(n_samples / (2 * n_threads)))``.

    Every chunk pays its own rounds, so fewer, larger chunks batch the oracle
    better; two per thread let a fast worker take over the chunks of a slow one.
    """
    return max(1, -(-int(n_samples) // (2 * max(1, int(n_threads)))))


# -- on the workers --------------------------------------------------------------------------

def _worker_model(model_factory, token):
    """The model of ``model_factory`` in this worker process, built on first use."""
    from .api import check_model
    with _MODELS_LOCK:
        model = _MODELS.get(token)
        if model is None:
            model = check_model(model_factory(), "model_factory() must return")
            _MODELS[token] = model
            while len(_MODELS) > MAX_CACHED_MODELS:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(token)
        return model


def _warm_up(model_factory, token, root, sample_kwargs):
    """Draw sample 0 with the serial, then the parallel kernels, and discard it.

    This compiles (or loads) every kernel the chunks will need in one process,
    so that numba's on-disk cache is written by one process at a time.
    """
    from .api import _sample
    model = _worker_model(model_factory, token)
    for parallel in (False, True):
        _sample(model, n_samples=1, seed=root, _sample_offset=0, _parallel=parallel,
                **sample_kwargs)


def _run_chunk(model_factory, token, root, start, stop, sample_kwargs):
    """Samples ``start .. stop - 1`` of ``root``, and this worker's fastspec version."""
    from . import __version__
    from .api import _sample
    model = _worker_model(model_factory, token)
    result = _sample(model, n_samples=stop - start, seed=root, _sample_offset=start,
                     **sample_kwargs)
    return result, __version__


# -- on the client ---------------------------------------------------------------------------

def _combine(results, wall_seconds):
    """One SampleResult from the chunks' results, in sample order (see :func:`sample`)."""
    from ._result import SampleResult, SampleStats
    stats = [r.stats for r in results]

    def cat(name):
        return np.concatenate([getattr(s, name) for s in stats])

    combined = SampleStats(
        method=stats[0].method,
        rounds=max(s.rounds for s in stats),
        contexts=sum(s.contexts for s in stats),
        rounds_per_sample=cat("rounds_per_sample"),
        rows_per_sample=cat("rows_per_sample"),
        block_sizes=cat("block_sizes"),
        accepted=cat("accepted"),
        n_steps=stats[0].n_steps,
        wall_seconds=wall_seconds,
        oracle_seconds=sum(s.oracle_seconds for s in stats),
        oracle_calls=sum(s.oracle_calls for s in stats),
        positions=sum(s.positions for s in stats),
        positions_per_sample=(cat("positions_per_sample")
                              if stats[0].positions_per_sample is not None else None),
    )
    samples = np.concatenate([r.samples for r in results])
    orders = log_prob = None
    if results[0].orders is not None:
        orders = np.concatenate([r.orders for r in results])
    if results[0].log_prob is not None:
        log_prob = np.concatenate([r.log_prob for r in results])
    return SampleResult(samples=samples, stats=combined, orders=orders, log_prob=log_prob)


def sample(model_factory, *, n_samples, seed=None, client=None, chunk_size=None,
           **sample_kwargs):
    """Draw the samples of :func:`fastspec.sample` in chunks on Dask workers.

    The result is bit for bit the one of
    ``fastspec.sample(model_factory(), n_samples=n_samples, seed=seed, **sample_kwargs)``
    on one machine: the same samples in the same order, and for AR models the
    same ``orders`` and ``log_prob``. This holds because sample ``i`` of a call
    depends only on ``(seed, i)``: the seed is turned into one root
    ``numpy.random.SeedSequence`` here, on the client, and every chunk draws its
    own samples ``start .. stop - 1`` of that root.

    Parameters
    ----------
    model_factory : callable
        Called with no argument on a worker, returns the ``fastspec.ARModel`` or
        ``fastspec.DiffusionModel``. It is pickled (cloudpickle) and sent to the
        workers instead of the model, so models whose oracles are numba kernels
        or torch modules need not pickle: use a module-level function, or e.g.
        ``functools.partial(fastspec.models.CurieWeiss, n=64)``. Each worker
        process builds the model once and keeps it for later chunks and calls,
        keyed by ``dask.base.tokenize(model_factory)`` (the last
        ``MAX_CACHED_MODELS`` factories are kept).
    n_samples : int
        Samples to draw in all.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        As for :func:`fastspec.sample`: a Generator is consumed once, on the
        client; a SeedSequence is used as given. ``None`` draws fresh entropy
        once on the client, so all chunks draw from one seed.
    client : distributed.Client, optional
        The client of the cluster to use; default: the current client
        (``distributed.get_client()``). To use an existing cluster, connect to
        its scheduler first: ``distributed.Client("tcp://scheduler:8786")``.
    chunk_size : int, optional
        Samples per Dask task. Default: about two chunks per worker thread,
        ``max(1, ceil(n_samples / (2 * threads)))`` where ``threads`` is the sum
        of the workers' threads when the call starts. Larger chunks share their
        oracle rounds among more samples; more chunks balance the load.
    **sample_kwargs
        Passed on to :func:`fastspec.sample` (``method``, ``order``, ``given``,
        ``block_size``, ``row_cost``, ``schedule``, ``max_rows``). A per-sample
        ``given`` of shape ``(n_samples, n)`` is cut along with the samples.
        ``progress=True`` shows a bar on the client, advanced as chunks finish.

    Returns
    -------
    SampleResult
        ``samples`` (and ``orders``, ``log_prob`` for AR models) concatenated in
        sample order. ``stats`` combines the chunks' stats:

        - ``rounds``: the maximum over chunks. It is the latency in rounds
          when all chunks run at once; a worker thread that runs several chunks
          one after another spends the sum of theirs.
        - ``contexts`` (rows), ``oracle_calls``, ``oracle_seconds``: sums over
          chunks (work, not latency; oracle seconds of different workers add up).
        - ``rounds_per_sample``, ``rows_per_sample``, ``block_sizes``,
          ``accepted``: concatenated in sample order. They do not depend on the
          chunking, so they equal those of one ``fastspec.sample`` call.
        - ``wall_seconds``: the client's wall-clock for the whole call,
          scheduling, warm-up and transfers included.
        - ``method`` and ``n_steps``: those of the chunks (all equal).

    Raises
    ------
    ValueError
        For an invalid argument, or when there is no client.
    TypeError
        If ``model_factory`` is not callable or does not return a fastspec
        model, ``client`` is not a ``distributed.Client``, a keyword is not
        one of :func:`fastspec.sample`'s, or an argument has the wrong type
        (``n_samples``, ``chunk_size``, ``progress``: :mod:`fastspec._checks`).
    RuntimeError
        If a worker runs another fastspec version than the client (its samples
        could differ).
    Exception
        Exceptions raised on a worker by the factory or the oracle reach the
        caller unchanged (type and message; Dask re-raises them), with
        fastspec's note naming the round; invalid oracle answers raise
        ``fastspec.OracleError`` as in :func:`fastspec.sample`.

    Notes
    -----
    Before the chunks fan out, one worker draws sample 0 with the same keywords
    twice (serial and parallel kernels) and the result is discarded; the
    samples do not depend on it. This compiles or loads every numba kernel the
    chunks need in one process: several processes writing numba's on-disk
    cache at the same moment can corrupt it (numba issue 4807). Each worker
    should run one thread (``threads_per_worker=1``, ``dask worker --nthreads 1``)
    with ``NUMBA_NUM_THREADS=1`` in its environment *before it starts* (export it
    in the shell that starts the workers or the LocalCluster), else the workers'
    numba threads oversubscribe the cores; Dask's nanny already sets the
    OpenMP/MKL/OpenBLAS thread counts of its worker processes to 1. With several
    threads per worker, the chunks running at once on one worker call the same
    model object, so its oracle must then be thread-safe. Workers need the same
    fastspec (and the modules ``model_factory`` refers to) as the client.

    Examples
    --------
    >>> import functools, fastspec, fastspec.cluster
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> factory = functools.partial(fastspec.models.CurieWeiss, n=64)
    >>> res = fastspec.cluster.sample(factory, n_samples=8, seed=0)  # doctest: +SKIP
    >>> res.samples.shape  # doctest: +SKIP
    (8, 64)
    """
    t_start = time.perf_counter()
    from . import __version__
    from ._seeds import as_seed_sequence
    from ._checks import check_flag
    from .api import check_n_samples

    if not callable(model_factory):
        raise TypeError(
            f"model_factory must be a callable that builds the model on each worker, e.g. "
            f"functools.partial(fastspec.models.CurieWeiss, n=64); got "
            f"{type(model_factory).__name__}")
    n_samples = check_n_samples(n_samples)
    chunk_size = _check_chunk_size(chunk_size)
    _check_kwargs(n_samples, sample_kwargs)
    progress = sample_kwargs.pop("progress", False)
    check_flag("progress", progress)
    client = _get_client(client)
    distributed = _import_distributed()
    from dask.base import tokenize

    root = as_seed_sequence(seed)
    token = tokenize(model_factory)
    if chunk_size is None:
        threads = sum(client.nthreads().values())
        chunk_size = default_chunk_size(n_samples, threads)
    bounds = [(a, min(n_samples, a + chunk_size)) for a in range(0, n_samples, chunk_size)]

    warm = client.submit(_warm_up, model_factory, token, root, _chunk_kwargs(sample_kwargs, 0, 1),
                         pure=False)
    warm.result()
    futures = [client.submit(_run_chunk, model_factory, token, root, a, b,
                             _chunk_kwargs(sample_kwargs, a, b), pure=False)
               for a, b in bounds]
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(futures)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_samples, unit="sample", desc="fastspec.cluster")
    try:
        for future in distributed.as_completed(futures, loop=client.loop):
            result, version = future.result()
            if version != __version__:
                raise RuntimeError(
                    f"a Dask worker runs fastspec {version} and the client {__version__}: its "
                    f"samples could differ; install the same fastspec on every worker")
            i = index[future.key]
            results[i] = result
            if bar is not None:
                bar.update(bounds[i][1] - bounds[i][0])
    finally:
        if bar is not None:
            bar.close()
        client.cancel([f for f in futures if not f.done()])
    return _combine(results, time.perf_counter() - t_start)
