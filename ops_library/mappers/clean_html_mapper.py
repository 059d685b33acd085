"""clean_html_mapper: HTML to plain text with selectolax's lexbor parser."""

from __future__ import annotations

import polars as pl

from ops_library.base import Mapper, OpParams
from ops_library.optional import missing_package
from ops_library.registry import register
from ops_library.rowwise import map_rows

REQUIREMENT = "selectolax==1.0.2"
# The parser changes text only at "<" (tags), "&" (entities), "\r" (to "\n"), NUL (dropped) and ASCII whitespace
# at the very start (dropped): checked for every code point at the start, middle and end of a text.
NEEDS_PARSER = r"[<&\r\x00]|\A[\t\n\x0c ]"


def clean_html(raw_html: str) -> str:
    """Data-Juicer's `_clean_html`, verbatim."""
    from selectolax.lexbor import LexborHTMLParser

    raw_html = raw_html.replace("<li>", "\n*")
    raw_html = raw_html.replace("</li>", "")
    raw_html = raw_html.replace("<ol>", "\n*")
    raw_html = raw_html.replace("</ol>", "")
    return LexborHTMLParser(raw_html).text()


@register("clean_html_mapper")
class CleanHtmlMapper(Mapper):
    """Turns HTML into its text: `<li>` and `<ol>` become "\\n*", their closing tags go, then the lexbor parser
    (selectolax) keeps the text of the document, entities decoded. Matches Data-Juicer's op of the same name.

    Parses row by row (selectolax has no vectorized form), only rows holding "<", "&", "\\r", NUL or leading ASCII
    whitespace: the parser returns every other text unchanged.
    """

    class Params(OpParams):
        """No parameters, as in Data-Juicer."""

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return missing_package(cls.name, "selectolax", REQUIREMENT, "the HTML parser Data-Juicer uses")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return map_rows(text, clean_html, text.str.contains(NEEDS_PARSER))
