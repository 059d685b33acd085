from unittest import mock

import pytest
from pydantic import ValidationError

from ops_library.base import OpUnavailableError
from ops_library.mappers.fix_unicode_mapper import FixUnicodeMapper
from tests.ops_library.mappers.helpers import apply

OP = "fix_unicode_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \t ", " \t "),
        ("The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.", "The Mona Lisa doesn't have eyebrows."),
        ("cafÃ©", "café"),
        ("&lt;tag&gt; &amp;", "<tag> &"),
        ("ﬁne ligature", "fine ligature"),
        ("ＦＵＬＬ width", "FULL width"),
        ("“curly”", '"curly"'),
        ("a\r\nb\rc", "a\nb\nc"),
        ("bell\x07 and \x1b[31mred\x1b[0m", "bell and red"),
        ("e\u0301", "é"),  # NFC
        ("中文 😀 שלום", "中文 😀 שלום"),
        ("x" * 300_000 + "Ã©", "x" * 300_000 + "é"),
    ],
)
def test_fixes_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_normalization_param() -> None:
    assert apply(OP, "é ﬁ", normalization="nfd") == ["e\u0301 fi"]  # lower case accepted, as in Data-Juicer
    assert apply(OP, "²", normalization="NFKC") == ["2"]
    assert apply(OP, "²") == ["²"]
    assert apply(OP, "²", normalization="") == ["²"]  # "" means the default, NFC
    with pytest.raises(ValidationError):
        FixUnicodeMapper({"normalization": "NFX"})


def test_unavailable_without_ftfy() -> None:
    with mock.patch("importlib.util.find_spec", return_value=None):
        assert "ftfy==6.3.1" in (FixUnicodeMapper.unavailable(FixUnicodeMapper.Params()) or "")
        with pytest.raises(OpUnavailableError, match="fix_unicode_mapper: needs the Python package ftfy"):
            FixUnicodeMapper()
