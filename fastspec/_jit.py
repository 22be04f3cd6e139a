"""How fastspec compiles its numba kernels: caching, serial/parallel twins, one threshold.

Caching policy
--------------
* Every kernel is compiled with ``cache=True``: the first process compiles it
  (seconds per kernel), later processes load it from numba's cache (a fraction
  of a second). The cache lives in ``__pycache__`` beside the sources when that
  folder is writable, else in ``$NUMBA_CACHE_DIR`` or the user's cache folder
  (``~/.cache/numba``). Where none of these is writable (read-only installs in
  containers or on shared clusters, with ``$HOME`` read-only) numba refuses to
  decorate a function at import; fastspec then compiles without a cache in
  every process instead of failing. Set ``NUMBA_CACHE_DIR`` to a writable
  folder to keep the cache there.
* Parallel twins (``parallel=True``) are cached too, under their own name
  (``<kernel>_parallel``). numba keys its cache files by the function's name and
  its entries by signature, not by compile options, so a serial and a parallel
  compilation of one body must never share a name: one would load the other's
  machine code. pynndescent and numbagg keep parallel kernels uncached after
  crashes; the numba bugs behind those (a different thread count at load time,
  numba issue 7518, fixed in numba 0.56) are fixed in the numba fastspec
  requires, and uncached they cost every process about 8 s of compilation
  before its first large batch (measured: 8.4 s for the AR twins, against 0.3 s
  to load them). What remains is numba issue 4807: processes that *write* one
  cache at the same moment can corrupt it. It concerns serial kernels as much;
  warm the cache once (run one small and one large batch) before starting
  many processes on a fresh install, or give each its own ``NUMBA_CACHE_DIR``.
* A call decides once, before its first round, whether it runs the serial or
  the parallel twins (:func:`use_parallel`), so a compilation never stalls a
  call half-way.

Parallel regions are entered under one lock: numba's ``workqueue`` threading
layer aborts the process when two Python threads enter parallel regions at
once, and fastspec may be called from threads (Dask workers, web servers).
Serial kernels need no lock.

Fork safety: numba picks the first threading layer it finds among TBB, OpenMP
and workqueue; on Linux without TBB that is GNU OpenMP, whose thread pool does
not survive ``fork``: a child forked (``multiprocessing``'s default start method
on Linux before Python 3.14) after the parent ran a parallel region is killed
on its own first one ("fork() called from a process already using GNU
OpenMP"). fastspec does not change numba's choice for the whole process (other
libraries' kernels share it); instead a process forked after the OpenMP layer
started runs only the serial twins, which give the same samples
(tests/test_fork.py).
"""

import os
import threading
import types
import warnings

import numba
from numba import njit

#: A call runs the parallel twins when its first round touches at least this
#: many array elements (rows x row width, see :func:`use_parallel`): about 4 ms
#: of serial kernel work per launch. A parallel region costs about 10 us to enter
#: on an idle machine, but when other processes compete for the cores its end
#: waits for a descheduled thread: measured on this project's 2-core machine at
#: load 4.5, sequential sampling of 3000 samples (AR, n = 64) took 1.2 s with the
#: serial twins and 3.5 s with the parallel ones, 5000 diffusion samples (d = 16,
#: 100 steps) 2.9 s and 6.3 s. Large batches still gain from the parallel twins.
PARALLEL_MIN_WORK = 1 << 22

_PARALLEL_LOCK = threading.Lock()

#: True in a process forked after its parent started numba's OpenMP layer,
#: where a parallel region would kill the process: only serial twins run.
FORKED_AFTER_OPENMP = False


def _after_fork_in_child():
    global FORKED_AFTER_OPENMP, _PARALLEL_LOCK
    _PARALLEL_LOCK = threading.Lock()     # another thread of the parent may have held it
    try:
        layer = numba.threading_layer()
    except ValueError:                    # no parallel region ran in the parent: any layer is fine
        return
    if layer == "omp":
        FORKED_AFTER_OPENMP = True


os.register_at_fork(after_in_child=_after_fork_in_child)

#: False when numba found no writable cache location at import (see module doc).
CACHE_AVAILABLE = True


def _compile(fn, **options):
    """``njit(cache=True, **options)(fn)``, or uncached where numba cannot cache."""
    global CACHE_AVAILABLE
    if CACHE_AVAILABLE:
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            if "no locator available" not in str(exc):
                raise
            CACHE_AVAILABLE = False
            warnings.warn("fastspec: numba finds no writable folder for its cache (the package "
                          "folder and $HOME are read-only), so kernels are compiled in every "
                          "process; set NUMBA_CACHE_DIR to a writable folder to keep them",
                          RuntimeWarning, stacklevel=2)
    return njit(**options)(fn)


def _renamed(fn, suffix):
    """A copy of ``fn`` under another qualified name.

    numba names a function's cache files after its qualified name and keys the
    entries by signature, not by compile options, so the serial and parallel
    twins of one body would overwrite (or load!) each other's machine code under
    one name.
    """
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


def kernel(fn=None, **options):
    """Decorator: a serial, cached numba kernel (``@kernel`` or ``@kernel(inline=...)``)."""
    if fn is None:
        return lambda f: _compile(f, **options)
    return _compile(fn, **options)


class Twin:
    """One kernel body compiled twice: serial (cached) and parallel (``prange`` active).

    The body is written with ``prange`` over independent items (samples, rows),
    each writing its own outputs, so both twins give bit-identical results
    (tests/test_parallel.py and tests/test_reproducibility.py).
    """

    def __init__(self, fn):
        self.__wrapped__ = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.serial = _compile(fn)
        self.parallel = _compile(_renamed(fn, "_parallel"), parallel=True)

    def __call__(self, parallel, *args):
        """Run the parallel twin if ``parallel`` else the serial one."""
        if parallel and not FORKED_AFTER_OPENMP:
            with _PARALLEL_LOCK:
                return self.parallel(*args)
        return self.serial(*args)


def twin(fn):
    """Decorator: a :class:`Twin` of ``fn``; call it as ``kernel(parallel, *args)``."""
    return Twin(fn)


def use_parallel(work):
    """Whether a call whose first round touches ``work`` array elements runs parallel twins."""
    return work >= PARALLEL_MIN_WORK and not FORKED_AFTER_OPENMP   # (read at call time)


class CompileTimer:
    """Seconds numba spent compiling (not loading from its cache) while the context was open.

    Only the outermost compilation is counted: numba compiles a kernel's callees inside
    its own compilation event. Used by the demo to say which part of its first run's
    wall-clock is one-time compilation.
    """

    def __init__(self):
        self.seconds = 0.0
        self._depth = 0
        self._start = 0.0
        self._scope = None

    def __enter__(self):
        import time
        from numba.core import event

        timer = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                if timer._depth == 0:
                    timer._start = time.perf_counter()
                timer._depth += 1

            def on_end(self, ev):
                timer._depth -= 1
                if timer._depth == 0:
                    timer.seconds += time.perf_counter() - timer._start

        self._scope = event.install_listener("numba:compile", _Listener())
        self._scope.__enter__()
        return self

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)
