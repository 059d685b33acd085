import re

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library.columns import ROW_ID
from ops_library.mappers.clean_links_mapper import DJ_DEFAULT_PATTERN, CleanLinksMapper, rust_replacement
from tests.reference_dj import clean_links as reference_clean_links


def frame(*texts: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def clean(*texts: str, **params: str) -> list[str]:
    return CleanLinksMapper(params).run(frame(*texts)).kept["text"].to_list()


# Hand-checked against Data-Juicer 1.6.1 (which runs the pattern with the `regex` module).
CASES = [
    ("", ""),
    ("no links here", "no links here"),
    ("Visit https://example.com/page?id=1.", "Visit ."),  # a final "." is not part of the link
    ("see www.test.org!", "see !"),
    ("example.com/path and more", " and more"),  # domain.tld/ needs no scheme
    ("a@b.com", "a@b.com"),  # no scheme, no slash: not a link
    ("mailto:x@y.z", ""),
    ("(see http://en.wikipedia.org/wiki/Foo_(bar))", "(see )"),  # balanced parens belong to the link
    ("http://x.com/a_(b_(c))_d", ""),
    ("«http://a.b/c»", "«»"),
    ("HTTP://EXAMPLE.COM", ""),  # case-insensitive
    ("www123.x.com", ""),
    ("www1234.x.com", "www1234.x.com"),  # www\d{0,3}
    ("http:/x", "http:/x"),  # scheme, one slash, then too short
    ("go to http://😀.com/😀 now", "go to  now"),
    ("https://例子.测试/路径。", ""),  # "。" is not in the excluded final punctuation
    ("\u3000http://a.b\u3000c", "\u3000\u3000c"),  # U+3000 ends a link
    ("中文http://x.cn/中 文", "中文http://x.cn/中 文"),  # no \b between CJK and "http"
    ("中文 http://x.cn/中 文", "中文  文"),
    # Where Python's `re` would differ from Data-Juicer's `regex` module:
    ("e\u0301http://x.y", ""),  # a combining mark is \w, so the scheme is "e\u0301http" (`re`: leaves "é")
    ("http://a\x1cb c", " c"),  # U+001C is not \s, so it is inside the link (`re`: leaves "\x1cb c")
    ("\u0130ttp://x", ""),  # (?i)[a-z] matches U+0130 (İ) in `regex`; Rust needs it spelled out
    ("\u0131ttp://x", "\u0131ttp://x"),  # ... but not U+0131 (ı), which `re` would match
    ("http://" + "!" * 40 + " tail", "http://" + "!" * 40 + " tail"),  # exponential in `re`, linear here
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_default_pattern(text: str, expected: str) -> None:
    assert clean(text) == [expected]


def test_default_pattern_equals_the_python_reference_on_tricky_cases() -> None:
    # The reference runs Python's `re` with the `regex` module's classes spelled out (tests/reference_dj.py).
    texts = [text for text, _ in CASES]
    assert clean(*texts) == [reference_clean_links(t) for t in texts]


# Where an ASCII `\b` (the fast path's, on most rows) and Data-Juicer's Unicode `\b` disagree: after a non-ASCII
# word character (before a letter/digit, or before "." / "-"), and at İ, K (Kelvin sign) and ſ; mixed with
# plain rows in one frame, so the rows the Unicode pattern handles must land back in their places.
BOUNDARY_CASES = [
    "Jörghttp://x.com/a b",
    "é.example.com/p",
    "é-x.example.com/p",
    "中文www.x.org/",
    "日本.jp/path",
    "ö http://ok.com/x",
    "\u0130ttp://x.org",
    "x \u0130ttp://x.org",
    "\u212aelvin://k.com/",
    "\u0130x://a",
    "(\u212ax://a)",
    "\u017fx://a b",
    "\u017ftp://x.org/",
    "a\u0301http://x.y/z",
    "x½http://x.y/z",
    "αwww.test.org",
    "Ωexample.com/path",
    "“http://q.com/”",
    "’s.example.com/x",
    "naïve-site.com/p",
    "😀http://emoji.com/x",
    "é" + "http://a.b/c " * 3,
    "plain http://a.b/c",
    "ÉTÉhttps://x.fr/été and www.ok.com",
    "١٢http://digits.eg/x",
]


def test_fast_path_equals_the_reference_where_word_boundaries_differ() -> None:
    texts = [t for case in BOUNDARY_CASES for t in (case, "plain www.a.com text", case.upper())]
    assert clean(*texts) == [reference_clean_links(t) for t in texts]
    assert clean(*texts, repl="<\\1>") == [reference_clean_links(t, repl="<\\1>") for t in texts]
    assert clean(*texts) != texts


def test_default_pattern_equals_the_regex_module() -> None:
    regex = pytest.importorskip("regex")  # Data-Juicer's own engine, when installed
    texts = [text for text, _ in CASES]
    assert clean(*texts) == [regex.sub(DJ_DEFAULT_PATTERN, "", t, flags=regex.DOTALL) for t in texts]


def test_replacement_follows_python_re_sub_syntax() -> None:
    text = "Visit https://example.com/a."
    assert clean(text, repl="<LINK>") == ["Visit <LINK>."]
    assert clean(text, repl="$") == ["Visit $."]  # a literal dollar, not a Rust group reference
    assert clean(text, repl=r"[\1]") == ["Visit [https://example.com/a]."]
    assert clean(text, repl=r"\g<0>\n") == ["Visit https://example.com/a\n."]


@pytest.mark.parametrize(
    "repl", ["", "x", "$1", "$$", r"\\", r"\n\t", r"\1", r"\g<1>", r"\g<0>", r"\0", r"\101", r"\&"]
)
def test_rust_replacement_equals_python_templates(repl: str) -> None:
    python = re.sub("(a)(b)?", repl, "xaby a")
    rust = pl.Series(["xaby a"]).str.replace_all("(a)(b)?", rust_replacement(repl, 2)).item()
    assert rust == python


@pytest.mark.parametrize("repl", ["\\", r"\q", r"\3", r"\g<x>", r"\400"])
def test_bad_replacement_is_an_error_as_in_python(repl: str) -> None:
    with pytest.raises((re.error, IndexError)):
        re.sub("(a)(b)?", repl, "xaby")
    with pytest.raises(ValueError):
        CleanLinksMapper({"pattern": "(a)(b)?", "repl": repl})


def test_user_pattern() -> None:
    # A raw-string literal is unwrapped, as Data-Juicer does; re.DOTALL applies.
    assert clean("a12b3", pattern=r"r'\d+'", repl="#") == ["a#b#"]
    assert clean("a\nb", pattern="a.b", repl="#") == ["#"]
    assert CleanLinksMapper({"pattern": r"\d+"})._rust is not None
    # Rust-only syntax that Data-Juicer's `regex` module also reads (Python's `re` cannot) runs in polars.
    assert clean("中文abc", pattern=r"\p{Han}+", repl="#") == ["#abc"]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"\d+$", "a12\n", "a#\n"),  # Python's `$` matches before a final newline
        (r"x*", "abx", "#a#b##"),  # empty matches right after a match
        (r"(?i)K", "k\u212a", "##"),
        (r"(?<=a)b", "ab", "a#"),  # look-behind: Python only
        (r"\<a", "<a a", "# a"),  # a literal "<" in Python, a start-of-word assertion in Rust
        (r"a\Z", "aa", "a#"),
    ],
)
def test_user_pattern_that_rust_would_read_differently_runs_in_python(pattern: str, text: str, expected: str) -> None:
    op = CleanLinksMapper({"pattern": pattern, "repl": "#"})
    assert op._rust is None
    assert op.run(frame(text)).kept["text"].to_list() == [expected] == [re.sub(pattern, "#", text, flags=re.S)]


def test_invalid_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        CleanLinksMapper({"pattern": "(unclosed"})
    with pytest.raises(ValueError, match="bad replacement"):
        CleanLinksMapper({"pattern": r"(?<=a)b", "repl": r"\2"})


def test_changed_count_and_row_ids() -> None:
    out = CleanLinksMapper().run(frame("x www.a.com y", "none", "http://b.org"))
    assert_frame_equal(out.kept, frame("x  y", "none", ""))
    assert out.changed == 2


def test_empty_frame() -> None:
    assert_frame_equal(CleanLinksMapper().run(frame()).kept, frame())
    assert_frame_equal(CleanLinksMapper({"pattern": r"(?<=a)b"}).run(frame()).kept, frame())


def test_very_long_text() -> None:
    text = "word " * 200_000 + "https://example.com/x" + " more" * 10
    assert len(text) > 1_000_000
    assert clean(text) == ["word " * 200_000 + " more" * 10]
