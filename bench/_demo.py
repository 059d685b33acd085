"""Shared by the benchmarks: a built demo corpus and a copy of recipes/demo.yaml pointing at it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def demo_workspace(prefix: str, shard_rows: int) -> tuple[Path, dict[str, Any]]:
    """A temp dir holding the demo corpus, and the demo recipe (as a dict) reading it in shards of `shard_rows`."""
    from pipeline_defs.corpus import ensure_demo_corpus

    work = Path(tempfile.mkdtemp(prefix=prefix))
    corpus = work / "corpus"
    ensure_demo_corpus(corpus)
    recipe = yaml.safe_load((ROOT / "recipes" / "demo.yaml").read_text())
    recipe.pop("dataset_builder")
    recipe |= {"dataset_path": str(corpus), "partition": {"size": shard_rows}}
    return work, recipe
