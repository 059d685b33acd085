"""text_action_filter: refused here; Data-Juicer's spaCy model is not shipped by any package Sluice uses."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.registry import register
from ops_library.stats import StatsKeys


@register("text_action_filter")
class TextActionFilter(Filter):
    """Would keep rows by their number of actions (verbs) found by a spaCy
    pipeline, as Data-Juicer's op of the same name (stat `num_action`); Sluice refuses it at validation.

    Data-Juicer downloads a spaCy model (`en_core_web_md` / `zh_core_web_md`) and installs spaCy at run time.
    Sluice downloads nothing and ships no spaCy model, so a recipe using this op fails `sluice validate`
    rather than run without it.
    """

    class Params(FilterParams):
        lang: Literal["en", "zh"] = Field("en", description="Language of the texts (English or Chinese).")
        min_action_num: int = Field(1, description="Smallest number of verbs (actions) kept.")

    stat = StatsKeys.num_action
    bounds = ("min_action_num", "min_action_num")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        lang = params.lang  # type: ignore[attr-defined]
        return (
            f"text_action_filter: needs spaCy and the spaCy model '{lang}_core_web_md' that Data-Juicer downloads; "
            "no package Sluice installs ships them and Sluice downloads nothing, so this op is not supported: "
            "remove it from the recipe"
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError(self.unavailable(self.params))
