import pytest

from tests.ops_library.mappers.helpers import apply

OP = "remove_header_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),  # no header: emptied
        ("   ", ""),
        ("preamble\n\\section{Intro}\nBody", "\\section{Intro}\nBody"),
        ("\\documentclass{article}\n\\chapter*[Short]{Long}\nx", "\\chapter*[Short]{Long}\nx"),
        ("a \\subsection{S} b \\section{T}", "\\subsection{S} b \\section{T}"),  # the first header wins
        ("a \\sectionx{S}", ""),  # "section" must end at a word boundary
        ("a \\section {S}", ""),  # no space allowed before "{"
        ("前言\\section{引言}正文", "\\section{引言}正文"),
        ("😀\\paragraph{😀}", "\\paragraph{😀}"),
        ("שלום\r\n\\part{חלק}\r\n", "\\part{חלק}\r\n"),
        ("x" * 300_000 + "\\subparagraph{p}", "\\subparagraph{p}"),
    ],
)
def test_removes_head_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_drop_no_head_false_keeps_texts_without_header() -> None:
    assert apply(OP, "no header", "a\\section{b}", drop_no_head=False) == ["no header", "\\section{b}"]
