"""Global ops in a row share their stages' runs (`pipeline_defs.steps.chained_globals`): the later dedup hashes the
rows the earlier one hashes, both indexes are built in one run (the later one leaving out the rows the earlier one
drops), both filters in the next. The rows each keeps must be the ones it keeps after the other's filter."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from ops_library.base import Deduplicator, OpOutput
from ops_library.columns import HASH, ROW_ID
from ops_library.registry import get_op
from pipeline_defs.execute import run_recipe
from pipeline_defs.graph import build_recipe_graph
from pipeline_defs.recipe import load_recipe
from pipeline_defs.steps import GlobalStage, chained_globals, plan_steps

EXACT = {"document_deduplicator": {"lowercase": True, "ignore_non_character": True}}
MINHASH = {"document_minhash_deduplicator": {"window_size": 3, "jaccard_threshold": 0.7}}


def _write_recipe(tmp: Path, name: str, ops: list, data: Path | None = None, **extra) -> Path:
    recipe = {
        "project_name": name,
        "dataset_path": str(data or tmp / "data"),
        "export_path": str(tmp / "out" / f"{name}.jsonl"),
        "partition": {"size": 12},
        "process": ops,
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _chains(tmp: Path, ops: list, **extra) -> list[tuple[str, int]]:
    (tmp / "data").mkdir(exist_ok=True)
    plan = plan_steps(load_recipe(_write_recipe(tmp, "plan", ops, **extra)))
    return [(s.spec.name, chained_globals(plan, i)) for i, s in enumerate(plan) if isinstance(s, GlobalStage)]


def test_dedups_in_a_row_chain_unless_the_first_rewrites_rows_or_an_op_stands_between(tmp_path: Path) -> None:
    ws = {"whitespace_normalization_mapper": None}
    line = {"document_line_deduplicator": None}
    chains = _chains(tmp_path, [ws, EXACT, MINHASH])
    assert chains == [("document_deduplicator", 2), ("document_minhash_deduplicator", 1)]
    # the line dedup hashes row by row, so it chains after the exact dedup; it rewrites texts, so what follows it
    # hashes its output, in runs of its own
    chains = _chains(tmp_path, [EXACT, line, MINHASH])
    assert chains == [
        ("document_deduplicator", 2),
        ("document_line_deduplicator", 1),
        ("document_minhash_deduplicator", 1),
    ]
    assert _chains(tmp_path, [EXACT, ws, MINHASH])[0] == ("document_deduplicator", 1)
    fused = {"checkpoint": {"strategy": "every_partition"}}
    assert _chains(tmp_path, [EXACT, MINHASH, ws], **fused)[0] == ("document_deduplicator", 2)


def test_a_dedup_that_overrides_apply_or_hashes_does_not_chain_unless_it_says_so() -> None:
    class Rewrites(Deduplicator):
        def hash_column(self, df: pl.DataFrame, threads: int | None = None) -> pl.Series:
            return df[ROW_ID].alias(HASH)

        def apply(self, df: pl.DataFrame, index: pl.DataFrame) -> OpOutput:
            return OpOutput(df.with_columns(pl.lit("x").alias("text")), None)

    class HashesAcrossRows(Rewrites):
        def hashes(self, df: pl.DataFrame, *, threads: int | None = None) -> pl.DataFrame:
            return df.select(ROW_ID, pl.len().cast(pl.UInt64).alias(HASH))

    class Declared(HashesAcrossRows):
        drops_rows_only = True
        row_wise_hashes = True

        def apply(self, df: pl.DataFrame, index: pl.DataFrame) -> OpOutput:
            return super(Rewrites, self).apply(df, index)

    assert (Rewrites.drops_rows_only, Rewrites.row_wise_hashes) == (False, True)
    assert (HashesAcrossRows.drops_rows_only, HashesAcrossRows.row_wise_hashes) == (False, False)
    assert (Declared.drops_rows_only, Declared.row_wise_hashes) == (True, True)
    minhash = get_op("document_minhash_deduplicator")
    assert "hashes" in minhash.__dict__ and minhash.row_wise_hashes
    assert not get_op("document_line_deduplicator").drops_rows_only


def _tokens(seed: int, n: int = 24) -> list[str]:
    """n distinct words of letters only (the exact dedup ignores digits) for each seed."""

    def word(k: int) -> str:
        return "".join(chr(97 + (k // 26**p) % 26) for p in range(4))

    return [word(seed * 7919 + i * 104729) for i in range(n)]


def _corpus(path: Path) -> dict[str, str]:
    """Rows y, x, z among unrelated fillers: x is y with hyphens between word pairs (one text to the exact dedup,
    which ignores non-characters; other shingles to MinHash), z is x with its last word changed (a near-duplicate
    of x only). After the exact dedup drops x, z has no near-duplicate left and is kept."""
    words = _tokens(7)
    y = " ".join(words)
    x = " ".join(f"{a}-{b}" for a, b in zip(words[::2], words[1::2], strict=True))
    z = x.rsplit(" ", 1)[0] + " tail-word"
    rows = [{"text": " ".join(_tokens(100 + i)), "n": i} for i in range(30)]
    rows[3], rows[14], rows[26] = {"text": y, "n": 3}, {"text": x, "n": 14}, {"text": z, "n": 26}
    path.mkdir(parents=True, exist_ok=True)
    for name, part in (("a.jsonl", rows[:15]), ("b.jsonl", rows[15:])):
        (path / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    return {"y": "a.jsonl:4", "x": "a.jsonl:15", "z": "b.jsonl:12"}


def _kept_and_dropped(export: Path) -> tuple[list[int], dict[int, tuple[str, str]]]:
    kept = [json.loads(line)["n"] for line in export.read_text().splitlines()]
    side = export.with_name(export.name.replace(".jsonl", ".dropped.jsonl"))
    dropped = {}
    for line in side.read_text().splitlines():
        row = json.loads(line)
        dropped[row["n"]] = (row["sluice_op"], row.get("sluice_duplicate_of", ""))
    return kept, dropped


@pytest.mark.slow
def test_chained_dedups_keep_what_they_keep_one_after_the_other_in_two_runs_fewer(
    tmp_path: Path, sluice_home: Path
) -> None:
    ids = _corpus(tmp_path / "data")
    path = _write_recipe(tmp_path, "chain", [{"whitespace_normalization_mapper": None}, EXACT, MINHASH])
    report = run_recipe(path, echo=lambda _: None)
    graph = build_recipe_graph(load_recipe(path))
    names = [[k.path[-1] for k in p.keys] for p in graph.phases]
    assert names == [
        [
            "source",
            "op00_whitespace_normalization_mapper",
            "op01_document_deduplicator__hashes",
            "op02_document_minhash_deduplicator__hashes",
        ],
        ["op01_document_deduplicator__index", "op02_document_minhash_deduplicator__index"],
        ["op01_document_deduplicator", "op02_document_minhash_deduplicator"],
        ["export"],
    ]
    assert report.runs == 4  # one per phase: six when each dedup's stages had runs of their own
    # the planner's expected fingerprints are the ones the steps wrote: an unchanged rerun runs nothing
    assert run_recipe(path, echo=lambda _: None).runs == 0
    minhash_hashes = graph.nodes[dg.AssetKey(["chain", "op02_document_minhash_deduplicator__hashes"])]
    assert [u.path[-1] for u in minhash_hashes.upstream] == ["op00_whitespace_normalization_mapper"]

    kept, dropped = _kept_and_dropped(Path(report.recipe.export_path))
    assert dropped == {14: ("document_deduplicator", ids["y"])}  # x; z is kept: its only near-duplicate is gone
    assert kept == [n for n in range(30) if n != 14]
    # The same ops applied one after another on one frame (no engine) keep the same rows.
    frame = pl.concat(
        pl.read_ndjson(f).with_columns(pl.format("{}:{}", pl.lit(f.name), pl.int_range(1, pl.len() + 1)).alias(ROW_ID))
        for f in sorted((tmp_path / "data").glob("*.jsonl"))
    )
    for spec in load_recipe(path).process:
        frame = spec.build().run(frame).kept
    assert frame["n"].to_list() == kept
    index = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey(["chain", "op02_document_minhash_deduplicator__index"])
    )
    assert index is not None and index.asset_materialization is not None
    meta = index.asset_materialization.metadata
    assert (meta["rows_left_out"].value, meta["rows_indexed"].value) == (1, 29)

    # The exact dedup no longer ignores punctuation: x is kept, and z is x's near-duplicate. Only the exact dedup's
    # params changed, so MinHash's hashes are reused; its index must not be: it left out the rows x was one of.
    changed = dict(EXACT["document_deduplicator"], ignore_non_character=False)
    path.write_text(path.read_text().replace("ignore_non_character: true", "ignore_non_character: false"))
    assert load_recipe(path).process[1].params.model_dump() == changed
    again = run_recipe(path, echo=lambda _: None)
    kept, dropped = _kept_and_dropped(Path(again.recipe.export_path))
    assert dropped == {26: ("document_minhash_deduplicator", ids["x"])}
    assert kept == [n for n in range(30) if n != 26]
