import pytest

from tests.ops_library.mappers.helpers import apply

OP = "expand_macro_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("  \n", "  \n"),
        ("no macros \\R here", "no macros \\R here"),
        (
            "\\newcommand{\\R}{\\mathbb{R}}\nLet $x \\in \\R$.",
            "\\newcommand{\\mathbb{R}}{\\mathbb{R}}\nLet $x \\in \\mathbb{R}$.",  # the definition too, as in DJ
        ),
        ("\\def\\eps{\\varepsilon}\n$\\eps$ and \\epsx", "\\def\\varepsilon{\\varepsilon}\n$\\varepsilon$ and \\epsx"),
        ("\\newcommand*{\\n}{N}\n\\n.", "\\newcommand*{N}{N}\nN."),
        ("\\newcommand{\\f}[1]{#1}\n\\f{x}", "\\newcommand{\\f}[1]{#1}\n\\f{x}"),  # macros with arguments: untouched
        ("\\newcommand{\\zh}{中文}\n\\zh.", "\\newcommand{中文}{中文}\n中文."),
        ("\\def\\e{😀}\n\\e!", "\\def😀{😀}\n😀!"),
        ("\\def\\h{שלום}\n\\h ", "\\defשלום{שלום}\nשלום "),  # the value is unicode-escaped, then unescaped
        ("\\def\\x{y}\r\n\\x\r\n", "\\def\\x{y}\r\n\\x\r\n"),  # "$" does not match before "\r"
        ("\\def\\x{y}\n" + "\\x " * 100_000, "\\defy{y}\n" + "y " * 100_000),
    ],
)
def test_expands_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]
