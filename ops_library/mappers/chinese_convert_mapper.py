"""chinese_convert_mapper: convert between Simplified, Traditional (TW, HK) Chinese and Japanese kanji (OpenCC)."""

from __future__ import annotations

import functools
from typing import Any, Literal

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.optional import missing_package
from ops_library.registry import register
from ops_library.rowwise import map_rows

REQUIREMENT = "opencc==1.1.9"
Mode = Literal[
    "s2t", "t2s", "s2tw", "tw2s", "s2hk", "hk2s", "s2twp", "tw2sp", "t2tw", "tw2t", "hk2t", "t2hk", "t2jp", "jp2t"
]  # fmt: skip


@functools.lru_cache(maxsize=16)
def converter(mode: str) -> Any:
    """OpenCC's converter for `mode`, loaded once per process from the tables the opencc wheel ships."""
    import opencc

    return opencc.OpenCC(f"{mode}.json")


@register("chinese_convert_mapper")
class ChineseConvertMapper(Mapper):
    """Converts Chinese text with OpenCC: `mode` s2t (Simplified to Traditional, the default), t2s, s2tw, tw2s,
    s2hk, hk2s, s2twp, tw2sp (with regional idioms), t2tw, tw2t, hk2t, t2hk, t2jp, jp2t. Matches Data-Juicer's op
    of the same name, with the same package and pin (opencc 1.1.9, whose wheel carries the conversion tables).

    Converts row by row (OpenCC is a C++ library called per string), only rows with a non-ASCII character or a
    NUL: the tables have no ASCII entries. OpenCC ends a text at its first NUL ("a\x00b" becomes "a"); so does
    this op, to give Data-Juicer's results.
    """

    class Params(OpParams):
        mode: Mode = Field("s2t", description="Conversion: s2t, t2s, s2tw, tw2s, s2hk, hk2s, s2twp, tw2sp, ...")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return missing_package(cls.name, "opencc", REQUIREMENT, "OpenCC and its conversion tables")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        convert = converter(self.params.mode).convert
        return map_rows(text, convert, text.str.contains(r"[^\x01-\x7f]"))
