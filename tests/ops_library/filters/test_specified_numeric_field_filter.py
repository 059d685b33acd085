import polars as pl
import pytest

from ops_library.columns import DROP_REASON, ROW_ID, STATS
from ops_library.filters.specified_numeric_field_filter import SpecifiedNumericFieldFilter

SCORES = ["1.5", " 2 ", "1e1", "1_000", "nan", "inf", "", "0", "x", "\u0661\u0662", None, "-3"]
#          1.5   2      10     1000     nan    inf   no  0.0  no   12 (Arabic-Indic)  no   -3
# ("" is falsy, so no number to Data-Juicer; the string "0" is truthy and reads as 0.0.)


def frame(**meta: list) -> pl.DataFrame:
    n = len(next(iter(meta.values())))
    texts = (["", "   ", "中文", "😀", "שלום", "a\r\nb"] * 3)[:n]
    rows = [{k: v[i] for k, v in meta.items()} for i in range(n)]
    return pl.DataFrame({"text": texts, ROW_ID: [f"f.jsonl:{i}" for i in range(1, n + 1)], "meta": rows})


def kept(df: pl.DataFrame, params: dict) -> list[int]:
    return [int(i.split(":")[1]) for i in SpecifiedNumericFieldFilter(params).run(df).kept[ROW_ID]]


def test_numeric_strings_are_read_by_python_float() -> None:
    df = frame(score=SCORES)
    assert kept(df, {"field_key": "meta.score", "min_value": 1, "max_value": 100}) == [1, 2, 3, 10]
    assert kept(df, {"field_key": "meta.score"}) == [1, 2, 3, 4, 8, 10, 12]  # inf > sys.maxsize, nan in no range


def test_falsy_values_are_no_numbers_even_when_reversed() -> None:
    df = frame(n=[0, 1, 2, None, 5], f=[0.0, 1.0, float("nan"), 3.0, -1.0], b=[True, False, True, None, False])
    assert kept(df, {"field_key": "meta.n", "min_value": -10, "max_value": 10}) == [2, 3, 5]
    assert kept(df, {"field_key": "meta.n", "min_value": 2, "max_value": 4, "reversed_range": True}) == [2, 3, 5]
    assert kept(df, {"field_key": "meta.f", "min_value": 0, "max_value": 5}) == [2, 4]
    assert kept(df, {"field_key": "meta.f", "min_value": 0, "max_value": 5, "reversed_range": True}) == [3, 5]
    assert kept(df, {"field_key": "meta.b", "min_value": 1, "max_value": 1}) == [1, 3]  # True is 1.0


def test_closedness() -> None:
    df = frame(n=[1, 2, 3])
    assert kept(df, {"field_key": "meta.n", "min_value": 1, "max_value": 3}) == [1, 2, 3]
    assert kept(df, {"field_key": "meta.n", "min_value": 1, "max_value": 3, "min_closed_interval": False}) == [2, 3]
    assert kept(df, {"field_key": "meta.n", "min_value": 1, "max_value": 3, "max_closed_interval": False}) == [1, 2]


def test_empty_key_keeps_everything() -> None:
    assert kept(frame(n=[0, None]), {}) == [1, 2]


def test_value_is_copied_into_the_stats_and_reasons_are_given() -> None:
    out = SpecifiedNumericFieldFilter({"field_key": "meta.score", "min_value": 1, "max_value": 5}).run(
        frame(score=["2", "x", "9"])
    )
    assert out.kept[STATS].to_list() == [{"meta.score": "2"}]
    assert out.dropped[DROP_REASON].to_list() == ["meta.score=x is no number", "meta.score=9.0 outside [1.0, 5.0]"]


def test_missing_or_non_numeric_field_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"field 'meta\.nope' not found"):
        SpecifiedNumericFieldFilter({"field_key": "meta.nope"}).run(frame(n=[1]))
    with pytest.raises(TypeError, match="specified_numeric_field_filter: field of type List"):
        SpecifiedNumericFieldFilter({"field_key": "meta.tags"}).run(frame(tags=[["a"]]))
