"""One BLAS thread inside the numpy models' forward passes (threadpoolctl).

The shipped numpy networks (``fastspec.models.pretrained``, ``NeuralAR``,
``NeuralDenoiser``) spend their time in float32 matrix products, which numpy
hands to its BLAS (OpenBLAS in the PyPI wheels) with one thread per core by
default. fastspec's own parallel kernels run numba threads on those same cores
between the oracle calls, and both pools spin-wait for work after a region:
with two pools on two cores each waits for threads the other has descheduled.
Measured on this project's 2-core machine under load (docs/BENCHMARKS.md,
"Threads"), the text demo's numpy oracle took several times longer with
OpenBLAS's default threads than with one. A forward pass therefore runs with
one BLAS thread; the limit is set on entry and restored on exit, so a user's
own numpy code outside the models keeps its threads.
"""

import functools


@functools.cache
def _blas_libraries():
    # threadpoolctl scans the loaded native libraries once (milliseconds); its
    # ``limit`` context would rescan them on every call (50 us here), so the
    # per-library controllers are kept and set directly (about 1 us each).
    from threadpoolctl import ThreadpoolController
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


def one_blas_thread(fn):
    """Decorator: run ``fn`` with the BLAS libraries numpy loaded limited to one thread."""
    @functools.wraps(fn)
    def limited(*args, **kwargs):
        libs = _blas_libraries()
        before = [lib.get_num_threads() for lib in libs]
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            for lib, n in zip(libs, before):
                if n != 1:
                    lib.set_num_threads(n)
    return limited
