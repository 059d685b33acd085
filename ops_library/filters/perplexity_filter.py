"""perplexity_filter: refused here; Data-Juicer's KenLM perplexity needs models no package ships."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.registry import register
from ops_library.stats import StatsKeys


@register("perplexity_filter")
class PerplexityFilter(Filter):
    """Would keep rows whose KenLM perplexity lies in [min_ppl, max_ppl], as Data-Juicer's op of the same name
    (stat `perplexity`); Sluice refuses it at validation.

    Data-Juicer downloads a Wikipedia KenLM model `{lang}.arpa.bin` and a SentencePiece model `{lang}.sp.model`
    (several GB for English) and needs the `kenlm` and `sentencepiece` packages. No package ships those models
    and Sluice downloads nothing, so a recipe using this op fails `sluice validate` rather than run without it.
    """

    class Params(FilterParams):
        lang: str = Field("en", description="Language of the KenLM and SentencePiece models.")
        min_ppl: float = Field(0, description="Smallest perplexity kept.")
        max_ppl: float = Field(1500, description="Largest perplexity kept.")

    stat = StatsKeys.perplexity
    bounds = ("min_ppl", "max_ppl")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        lang = params.lang  # type: ignore[attr-defined]
        return (
            f"perplexity_filter: needs the KenLM model '{lang}.arpa.bin' and SentencePiece model '{lang}.sp.model' "
            "that Data-Juicer downloads (plus the kenlm and sentencepiece packages); no package ships them and "
            "Sluice downloads nothing, so this op is not supported: remove it from the recipe"
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError(self.unavailable(self.params))
