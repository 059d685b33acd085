"""The precomputed LSH (bands, rows) table against Data-Juicer's optimal_param computed with scipy."""

from __future__ import annotations

import sys

import pytest

from ops_library import lsh_params, minhash


def _computed(threshold: float, num_perm: int) -> tuple[int, int]:
    return minhash._integrate_param(threshold, num_perm, 0.5, 0.5)


@pytest.mark.parametrize("hundredths", [50, 70, 80, 85, 90])
def test_sample_of_the_table_equals_the_quadrature(hundredths: int) -> None:
    assert lsh_params.OPTIMAL[256][hundredths] == _computed(hundredths / 100, 256)


@pytest.mark.slow
@pytest.mark.parametrize("num_perm", sorted(lsh_params.OPTIMAL))
def test_every_entry_equals_the_quadrature(num_perm: int) -> None:
    table = lsh_params.OPTIMAL[num_perm]
    assert sorted(table) == list(range(1, 100))
    assert table == {t: _computed(t / 100, num_perm) for t in table}


def test_optimal_param_uses_the_table_without_importing_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    minhash.optimal_param.cache_clear()
    monkeypatch.setitem(sys.modules, "scipy", None)  # importing scipy now raises ImportError
    assert minhash.optimal_param(0.7, 256) == (25, 10)
    with pytest.raises(ImportError):
        minhash.optimal_param(0.705, 256)  # not in the table: computed
    with pytest.raises(ImportError):
        minhash.optimal_param(0.7, 256, 0.4, 0.6)  # other weights: computed
    minhash.optimal_param.cache_clear()
