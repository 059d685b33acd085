import logging

import numpy as np
import pytest

from ops_library import native_kernels


@pytest.mark.parametrize("chunks", [1, 2, 3, 8, 100])
def test_byte_chunks_cover_every_text_once_in_order_with_about_equal_bytes(chunks: int) -> None:
    rng = np.random.default_rng(chunks)
    lengths = rng.integers(0, 500, size=57)
    lengths[[3, 4, 5]] = 0  # empty texts, which a cut may land on
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ranges = native_kernels.byte_chunks(offsets, chunks)
    assert ranges[0][0] == 0 and ranges[-1][1] == 57
    assert all(hi > lo for lo, hi in ranges) and len(ranges) <= chunks
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    if chunks <= 8:  # with few chunks, none holds much more than its share plus one text
        share = offsets[-1] / chunks
        assert max(offsets[hi] - offsets[lo] for lo, hi in ranges) <= share + lengths.max()
    assert native_kernels.byte_chunks(np.zeros(1, dtype=np.int64), 4) == []


def test_run_chunks_runs_every_range_and_turns_a_failed_allocation_into_memory_error() -> None:
    seen: list[tuple[int, int]] = []
    native_kernels.run_chunks(lambda lo, hi: seen.append((lo, hi)) or 0, [(0, 2), (2, 5), (5, 9)], threads=2)
    assert sorted(seen) == [(0, 2), (2, 5), (5, 9)]
    with pytest.raises(MemoryError, match="could not allocate"):
        native_kernels.run_chunks(lambda lo, hi: -1 if lo == 2 else 0, [(0, 2), (2, 5)], threads=1)


def test_a_strided_view_is_refused_before_a_kernel_misreads_it() -> None:
    with pytest.raises(ValueError, match="C-contiguous"):
        native_kernels.address(np.zeros((4, 4), dtype=np.uint64)[:, 1])


@pytest.mark.skipif(not native_kernels.available(), reason="Sluice's C kernels are not built (no C compiler)")
def test_a_library_built_from_other_sources_is_not_loaded(monkeypatch, caplog) -> None:
    # the Python side expects another ABI than the built library reports: it is left unused, with one warning
    monkeypatch.setattr(native_kernels, "ABI", native_kernels.ABI + 1)
    native_kernels.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ops_library.native_kernels"):
            assert native_kernels.library() is None
        assert "built from older sources: reinstall with `pip install -e .`" in caplog.text
    finally:
        monkeypatch.undo()
        native_kernels.library.cache_clear()
    assert native_kernels.available()
