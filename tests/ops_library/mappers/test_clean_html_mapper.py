from unittest import mock

import pytest

from ops_library.base import OpUnavailableError
from ops_library.mappers.clean_html_mapper import CleanHtmlMapper
from tests.ops_library.mappers.helpers import apply

OP = "clean_html_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),  # leading whitespace of a document is dropped by the HTML parser
        ("plain text", "plain text"),
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("<ol><li>one</li><li>two</li></ol>", "*\n*one\n*two"),  # "\n*\n*one..." loses its leading newline
        ("a &amp; b &lt;c&gt;", "a & b <c>"),
        ("<script>var x = 1;</script>text", "var x = 1;text"),
        ("<p>中文</p><p>😀</p>", "中文😀"),
        ("<div dir='rtl'>שלום עולם</div>", "שלום עולם"),
        ("line1\r\nline2<br>", "line1\nline2"),  # the parser turns CR LF into LF
        ("  lead and trail  ", "lead and trail  "),
        ("<p>" + "x" * 500_000 + "</p>", "x" * 500_000),
    ],
)
def test_html_to_text_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_unavailable_without_selectolax() -> None:
    with mock.patch("importlib.util.find_spec", return_value=None):
        message = CleanHtmlMapper.unavailable(CleanHtmlMapper.Params())
        with pytest.raises(OpUnavailableError, match="selectolax"):
            CleanHtmlMapper()
    assert message is not None
    assert message.startswith("clean_html_mapper: needs the Python package selectolax==1.0.2")
    assert "pip install" in message
    assert CleanHtmlMapper.unavailable(CleanHtmlMapper.Params()) is None
