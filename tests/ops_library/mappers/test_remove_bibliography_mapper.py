import pytest

from tests.ops_library.mappers.helpers import apply

OP = "remove_bibliography_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \n ", " \n "),
        ("Body text.\n\\appendix\nA. Proofs", "Body text.\n"),
        ("Body\n\\begin{thebibliography}{9}\n\\bibitem{a} A.\n\\end{thebibliography}\n", "Body\n"),
        ("Body\n\\bibliography{refs}\n\\end{document}", "Body\n"),
        ("Body \\bibliography{refs", "Body \\bibliography{refs"),  # needs a closing brace somewhere after
        ("x \\begin{REFERENCES} y", "x "),
        ("x \\begin{References} y", "x \\begin{References} y"),  # only these two spellings
        ("中文 \\appendix 附录", "中文 "),
        ("😀\\appendix😀", "😀"),
        ("שלום\r\n\\appendix\r\n", "שלום\r\n"),
        ("x" * 300_000 + "\\appendix" + "y" * 1000, "x" * 300_000),
    ],
)
def test_cuts_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]
