"""numba, imported through one place so that its start-up skips a probe Sluice's kernels never need.

Loading any compiled kernel initialises numba's CPU target, which imports `numba.np.arraymath`; that module asks
at import whether a BLAS is at hand (`_HAVE_BLAS`, by importing `scipy.linalg.cython_blas`), which imports all of
`scipy.linalg` and, through it, `numpy.f2py`: ~0.25 s of every process that runs a kernel, on a machine with scipy
installed. The answer only picks the inner product `np.convolve`/`np.correlate` use inside a kernel (a plain loop
without BLAS); Sluice's kernels call neither, and `np.dot` and the `np.linalg` functions ask for BLAS again
themselves when a kernel using them is compiled. So the module is imported here with the probe answering "no".

Import `numba` from here (`from ops_library.numba_loader import numba`); it raises ImportError without numba.
"""

from __future__ import annotations

import sys

import numba


def _import_arraymath_without_blas_probe() -> None:
    # Once per process: this module's body runs once, under Python's import lock.
    if "numba.np.arraymath" in sys.modules:
        return
    import numba.np.linalg as linalg

    probe = linalg.ensure_blas

    def no_blas() -> None:
        raise ImportError("BLAS probe skipped at import (ops_library.numba_loader)")

    linalg.ensure_blas = no_blas
    try:
        import numba.np.arraymath as arraymath
    finally:
        linalg.ensure_blas = probe
    arraymath.ensure_blas = probe  # the module's own reference: the real probe from now on


_import_arraymath_without_blas_probe()

__all__ = ["numba"]
