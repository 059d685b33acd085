"""remove_specific_chars_mapper: delete every occurrence of the given characters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.text import char_class


@register("remove_specific_chars_mapper")
class RemoveSpecificCharsMapper(Mapper):
    """Deletes every character listed in `chars_to_remove` (by default ◆●■►▼▲▴∆▻▷❖♡□). Matches Data-Juicer's op of
    the same name: a string, or a list of strings whose characters are all removed; empty removes nothing."""

    class Params(OpParams):
        chars_to_remove: str | list[str] = Field(
            "◆●■►▼▲▴∆▻▷❖♡□",
            description="The characters to delete: a string, or a list of strings (each character of each counts).",
        )

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        chars = self.params.chars_to_remove
        # Data-Juicer builds "[" + escaped strings + "]": the set of every character of every string.
        self._class = char_class(set("".join(chars))) if chars else None
        if chars and self._class == "[]":
            # Data-Juicer's pattern would be "[]", which its regex engine rejects at the first row.
            raise ValueError(f"{self.name}: chars_to_remove={chars!r} holds no character")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text if self._class is None else text.str.replace_all(self._class, "")
