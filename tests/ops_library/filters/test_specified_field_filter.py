import polars as pl
import pytest

from ops_library.columns import DROP_REASON, ROW_ID, STATS
from ops_library.filters.specified_field_filter import SpecifiedFieldFilter


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "text": ["", "   ", "中文", "😀", "שלום", "a\r\nb"],
            ROW_ID: [f"f.jsonl:{i}" for i in range(1, 7)],
            "lang": ["en", "zh", "zh", None, "he", "en"],
            "meta": [
                {"src": {"site": "wiki"}, "tags": ["a"], "n": 1, "ok": True},
                {"src": {"site": "web"}, "tags": ["a", "b"], "n": 2, "ok": False},
                {"src": {"site": "wiki"}, "tags": [], "n": 3, "ok": True},
                {"src": None, "tags": ["c"], "n": None, "ok": None},
                {"src": {"site": "news"}, "tags": None, "n": 1, "ok": True},
                {"src": {"site": "web"}, "tags": ["b", "c"], "n": 2, "ok": False},
            ],
        }
    )


def kept(params: dict) -> list[int]:
    out = SpecifiedFieldFilter(params).run(frame()).kept
    return [int(i.split(":")[1]) for i in out[ROW_ID]]


def test_top_level_field() -> None:
    assert kept({"field_key": "lang", "target_value": ["zh", "he"]}) == [2, 3, 5]
    assert kept({"field_key": "lang", "target_value": [None]}) == [4]


def test_nested_field_by_dotted_key() -> None:
    assert kept({"field_key": "meta.src.site", "target_value": ["wiki"]}) == [1, 3]


def test_list_field_needs_every_element_listed() -> None:
    # [] passes (nothing is outside the list); a null list is [None].
    assert kept({"field_key": "meta.tags", "target_value": ["a", "b"]}) == [1, 2, 3]


def test_python_equality_across_numbers_and_booleans() -> None:
    assert kept({"field_key": "meta.n", "target_value": [1.0]}) == [1, 5]
    assert kept({"field_key": "meta.ok", "target_value": [1]}) == [1, 3, 5]  # True == 1
    assert kept({"field_key": "meta.n", "target_value": ["1"]}) == []  # a string is no number


def test_reversed_range_keeps_the_others() -> None:
    assert kept({"field_key": "lang", "target_value": ["en"], "reversed_range": True}) == [2, 3, 4, 5]


def test_empty_key_or_targets_keep_everything() -> None:
    assert kept({}) == [1, 2, 3, 4, 5, 6]
    assert kept({"field_key": "lang"}) == [1, 2, 3, 4, 5, 6]


def test_value_is_copied_into_the_stats_and_decides_from_there() -> None:
    params = {"field_key": "meta.src.site", "target_value": ["web"]}
    out = SpecifiedFieldFilter(params).run(frame())
    assert out.kept[STATS].to_list() == [{"meta.src.site": "web"}, {"meta.src.site": "web"}]
    assert out.dropped[DROP_REASON][0] == "meta.src.site=wiki not in ['web']"
    stored = frame().with_columns(pl.Series(STATS, [{"meta.src.site": "web"}] * 6))
    assert SpecifiedFieldFilter(params).run(stored).kept.height == 6


def test_missing_field_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"specified_field_filter: field 'meta.src.host' not found: 'meta.src' has no field 'host'"
    ):
        SpecifiedFieldFilter({"field_key": "meta.src.host", "target_value": ["x"]}).run(frame())
    with pytest.raises(ValueError, match="no column 'source'"):
        SpecifiedFieldFilter({"field_key": "source", "target_value": ["x"]}).run(frame())
