"""Sluice's C kernels (`ops_library/csrc/`), one shared library built by `pip install` and called through ctypes.

The library has no Python in it: ctypes loads it in about a millisecond (numba's import and kernel cache, which
the same loops took before, cost 0.5-0.8 s of every process) and releases the GIL for each call, so the chunks of
one call run side by side on Python threads (`run_chunks`). Each kernel computes exactly what the numpy code it
stands in for computes (the tests compare them); where the library was not built (no C compiler at install) or
was built from other sources (`SLUICE_KERNELS_ABI` differs), `library()` is None and callers take their numpy or
numba paths.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# The ABI the sources in csrc/ declare (kernels.h); a library reporting another was built from other sources.
ABI = 1
_NAME = "_sluice_kernels"

_P, _I64, _I32, _U8 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_uint8
_SIGNATURES = {
    "sluice_kernels_abi": [],
    "sluice_minhash_bytes": [_P, _P, _I64, _I64, _U8, _I32, _I64, _I32, _P, _P, _I64, _P, _P, _I64, _I64, _P],
    "sluice_first_rows": [_P, _I64, _I64, _I64, _I64, _P],
    "sluice_class_counts": [_P, _P, _I64, _I64, _P, _P, _P],
    "sluice_refined_word_counts": [_P, _P, _I64, _I64, _P, _P],
    "sluice_rep_ratios": [_P, _P, _I64, _I64, _I64, ctypes.c_uint64, _P, _P],
    "sluice_drop_class": [_P, _P, _I64, _P, _P, _P, _P],
}


def library_path() -> Path | None:
    """The built library next to this module, or None."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"{_NAME}{suffix}"
        if path.is_file():
            return path
    return None


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded library with its functions' argument types set, or None (not built, or stale: logged once)."""
    path = library_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, _I64
    except (OSError, AttributeError) as exc:
        log.warning("Sluice's C kernels at %s do not load (%s): reinstall with `pip install -e .`", path, exc)
        return None
    if lib.sluice_kernels_abi() != ABI:
        log.warning("Sluice's C kernels at %s are built from older sources: reinstall with `pip install -e .`", path)
        return None
    return lib


def available() -> bool:
    return library() is not None


def address(array: np.ndarray) -> int:
    """A C-contiguous array's data pointer (refuses views a kernel would misread)."""
    if not array.flags.c_contiguous:
        raise ValueError("a C kernel needs C-contiguous arrays")
    return array.ctypes.data


def addresses(*arrays: np.ndarray) -> list[int]:
    """`address` of each array, in order (the pointer arguments of one kernel call)."""
    return [address(a) for a in arrays]


def byte_chunks(offsets: np.ndarray, chunks: int) -> list[tuple[int, int]]:
    """Up to `chunks` (first, last) ranges of consecutive texts holding about equal bytes (`offsets`: n + 1
    starts), empty ranges left out."""
    n = len(offsets) - 1
    if n <= 0:
        return []
    cuts = np.searchsorted(offsets, np.linspace(offsets[0], offsets[-1], chunks + 1)[1:-1])
    bounds = [0, *np.clip(cuts, 0, n).tolist(), n]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def run_chunks(call: Callable[[int, int], int], ranges: list[tuple[int, int]], threads: int) -> None:
    """`call(first, last)` for each range on up to `threads` threads (each call releases the GIL); raises
    MemoryError where a call returned -1 (its allocation failed)."""
    if threads <= 1 or len(ranges) <= 1:
        codes = [call(lo, hi) for lo, hi in ranges]
    else:
        with ThreadPoolExecutor(min(threads, len(ranges)), thread_name_prefix="sluice-kernel") as pool:
            codes = list(pool.map(lambda r: call(*r), ranges))
    if any(code != 0 for code in codes):
        raise MemoryError("a C kernel could not allocate its working memory")
