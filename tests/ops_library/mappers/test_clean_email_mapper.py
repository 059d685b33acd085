import pytest

from ops_library.mappers.clean_email_mapper import CleanEmailMapper
from tests.ops_library.mappers.helpers import apply, frame

OP = "clean_email_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \t\n ", " \t\n "),
        ("write to a.b+c_d-e@mail.example.org now", "write to  now"),
        ("x@EXAMPLE.COM", "x@EXAMPLE.COM"),  # the domain must be lower case
        ("X.Y@example.cOM", "OM"),  # ... so the TLD ends where lower case ends
        ("a@b.c.d!", "!"),  # greedy domain, backtracks to the last dot
        ("a@b", "a@b"),  # no dot in the domain
        ("名前@例え.jp", "名前@例え.jp"),  # non-ASCII is not in the classes
        ("メール: ab@cd.ef。", "メール: 。"),
        ("😀a@b.cd😀", "😀😀"),
        ("مراسلة user@site.org شكرا", "مراسلة  شكرا"),
        ("a@b.cd\r\nb@c.de\r\n", "\r\n\r\n"),
        ("a@b.cd" + " x" * 100_000, " x" * 100_000),
    ],
)
def test_removes_emails_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_repl_and_user_pattern() -> None:
    assert apply(OP, "mail a@b.cd", repl="<EMAIL>") == ["mail <EMAIL>"]
    assert apply(OP, "mail a@b.cd", repl=r"[\g<0>]") == ["mail [a@b.cd]"]
    assert apply(OP, "A@B.CD a@b.cd", pattern=r"r'[A-Z]+@[A-Z]+\.[A-Z]+'", repl="#") == ["# a@b.cd"]
    # A look-behind Rust cannot run: row by row with Data-Juicer's `regex` module.
    op = CleanEmailMapper({"pattern": r"(?<=to )\S+@\S+", "repl": "#"})
    assert op._sub.rust is None
    assert op.run(frame("to a@b.c, from c@d.e")).kept["text"].to_list() == ["to # from c@d.e"]


def test_errors_are_raised_when_built() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        CleanEmailMapper({"pattern": "(unclosed"})
    with pytest.raises(ValueError, match="bad replacement"):
        CleanEmailMapper({"repl": r"\9"})


def test_nulls_and_changed_count() -> None:
    out = CleanEmailMapper().run(frame("a@b.cd", None, "none"))
    assert out.kept["text"].to_list() == ["", None, "none"]
    assert out.changed == 1
