"""text_entity_dependency_filter: refused here; Data-Juicer's spaCy model is not shipped by any package Sluice uses."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.registry import register
from ops_library.stats import StatsKeys


@register("text_entity_dependency_filter")
class TextEntityDependencyFilter(Filter):
    """Would keep rows by their number of entities (nouns, proper nouns, pronouns) with enough dependency edges
    found by a spaCy pipeline, as Data-Juicer's op of the same name (stat `num_dependency_edges`); Sluice
    refuses it at validation.

    Data-Juicer downloads a spaCy model (`en_core_web_md` / `zh_core_web_md`) and installs spaCy at run time.
    Sluice downloads nothing and ships no spaCy model, so a recipe using this op fails `sluice validate`
    rather than run without it.
    """

    class Params(FilterParams):
        lang: Literal["en", "zh"] = Field("en", description="Language of the texts (English or Chinese).")
        min_dependency_num: int = Field(
            1, description="Smallest number of dependency edges an entity needs to count as dependent."
        )
        any_or_all: Literal["any", "all"] = Field(
            "all", description="Keep a row when any entity is dependent, or only when all are."
        )

    stat = StatsKeys.num_dependency_edges
    bounds = ("min_dependency_num", "min_dependency_num")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        lang = params.lang  # type: ignore[attr-defined]
        return (
            f"text_entity_dependency_filter: needs spaCy and the spaCy model '{lang}_core_web_md' that Data-Juicer "
            "downloads; "
            "no package Sluice installs ships them and Sluice downloads nothing, so this op is not supported: "
            "remove it from the recipe"
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError(self.unavailable(self.params))
