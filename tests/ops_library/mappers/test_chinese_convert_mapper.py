from unittest import mock

import pytest
from pydantic import ValidationError

from ops_library.base import OpUnavailableError
from ops_library.mappers.chinese_convert_mapper import ChineseConvertMapper
from tests.ops_library.mappers.helpers import apply

OP = "chinese_convert_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \u3000", " \u3000"),
        ("汉字转换", "漢字轉換"),
        ("台湾的软件", "臺灣的軟件"),
        ("mixed 中文 😀 text", "mixed 中文 😀 text"),
        ("שלום 发展", "שלום 發展"),
        ("第一行\r\n第二行", "第一行\r\n第二行"),
        ("头发" * 100_000, "頭髮" * 100_000),
    ],
)
def test_s2t_by_default(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        ("t2s", "漢字轉換", "汉字转换"),
        ("s2tw", "台湾", "臺灣"),
        ("s2hk", "台湾", "台灣"),
        ("s2twp", "软件", "軟體"),  # Taiwanese idiom
        ("tw2sp", "軟體", "软件"),
        ("t2jp", "舊字體", "旧字体"),
        ("jp2t", "旧字体", "舊字體"),
    ],
)
def test_modes(mode: str, text: str, expected: str) -> None:
    assert apply(OP, text, mode=mode) == [expected]


def test_unknown_mode_and_missing_package() -> None:
    with pytest.raises(ValidationError):
        ChineseConvertMapper({"mode": "s2x"})
    with mock.patch("importlib.util.find_spec", return_value=None):
        message = ChineseConvertMapper.unavailable(ChineseConvertMapper.Params())
        with pytest.raises(OpUnavailableError):
            ChineseConvertMapper()
    assert message == (
        "chinese_convert_mapper: needs the Python package opencc==1.1.9 (OpenCC and its conversion tables), "
        "which is not installed: pip install 'opencc==1.1.9'"
    )


def test_text_ends_at_a_nul_as_in_opencc() -> None:
    assert apply(OP, "ascii\x00tail", "汉\x00字") == ["ascii", "漢"]
