"""remove_non_chinese_character_mapper: delete every character that is not a Chinese character (or, optionally,
an ASCII letter, digit or one of Data-Juicer's punctuation marks)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.text import char_class

# Data-Juicer's class bodies: CJK Unified Ideographs U+4E00..U+9FA5 only (not the extensions, not U+9FA6..U+9FFF).
CHINESE = "".join(map(chr, range(0x4E00, 0x9FA5 + 1)))
PUNCTUATION = ".， ,-。%《*》/•、&＆(—)（+）：？!！“”·"  # Data-Juicer's list, space included


@register("remove_non_chinese_character_mapper")
class RemoveNonChineseCharacterMapper(Mapper):
    """Deletes every character outside U+4E00..U+9FA5, except (by default) ASCII letters, ASCII digits and
    Data-Juicer's 27 punctuation marks (space included). Matches Data-Juicer's op of the same name (whose class
    is spelled `RemoveNonChineseCharacterlMapper`)."""

    class Params(OpParams):
        keep_alphabet: bool = Field(True, description="Keep ASCII letters A-Z and a-z.")
        keep_number: bool = Field(True, description="Keep ASCII digits 0-9.")
        keep_punc: bool = Field(True, description=f"Keep these punctuation marks and the space: {PUNCTUATION!r}.")

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        p = self.params
        keep = (
            CHINESE
            + (string.ascii_letters if p.keep_alphabet else "")
            + (string.digits if p.keep_number else "")
            + (PUNCTUATION if p.keep_punc else "")
        )
        self._remove = char_class(keep, negated=True) + "+"

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text.str.replace_all(self._remove, "")
