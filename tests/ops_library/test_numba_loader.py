"""ops_library.numba_loader: numba's target starts without importing scipy.linalg, and nothing numba can compile
is lost by it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
pytest.importorskip("scipy")

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_running_a_kernel_through_the_loader_leaves_scipy_linalg_unimported() -> None:
    # The MinHash kernels numba still runs (the two-stage fast path, the datajuicer mode's SHA-1), in a fresh
    # process: numba's target is initialised and the kernels run, and scipy.linalg (with numpy.f2py) is never
    # imported.
    code = (
        "import sys, polars as pl\n"
        "from ops_library.registry import get_op\n"
        "texts = pl.Series(['a b c d e f g h', 'héllo wörld, 123 !!'])\n"
        "for mode in ('fast', 'datajuicer'):\n"
        "    op = get_op('document_minhash_deduplicator')({'window_size': 2, 'hash_mode': mode})\n"
        "    print(op.signatures(texts, backend='numba').shape)\n"
        "print('numba.np.arraymath' in sys.modules, 'scipy.linalg' in sys.modules, 'numpy.f2py' in sys.modules)\n"
    )
    out = _run(code)
    assert out[-3:] == ["True", "False", "False"], out


def test_the_blas_probe_is_restored_so_a_kernel_using_blas_still_compiles() -> None:
    # numba's own linear algebra asks for BLAS when a kernel using it is compiled: after the loader the probe is
    # numba's again (both where numba.np.linalg keeps it and where arraymath bound it), and np.dot works.
    code = (
        "import numpy as np\n"
        "from ops_library.numba_loader import numba\n"
        "import numba.np.linalg as linalg, numba.np.arraymath as arraymath\n"
        "print(arraymath._HAVE_BLAS, linalg.ensure_blas is arraymath.ensure_blas, linalg.ensure_blas.__module__)\n"
        "f = numba.njit(lambda a, b: np.dot(a, b))\n"
        "print(f(np.arange(3.0), np.arange(3.0)))\n"
    )
    assert _run(code) == ["False", "True", "numba.np.linalg", "5.0"]
