"""Builds a recipe's dataset on first use when its `dataset_builder` says how (the bundled demo corpus)."""

from __future__ import annotations

from pathlib import Path

from pipeline_defs.recipe import Recipe


def ensure_dataset(recipe: Recipe) -> None:
    builder = recipe.dataset_builder
    if builder is None:
        return
    target = Path(builder.path or recipe.dataset_path)
    from pipeline_defs.corpus import ensure_demo_corpus

    ensure_demo_corpus(target, min_docs=builder.min_docs, max_docs=builder.max_docs)
