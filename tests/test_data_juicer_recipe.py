"""Issue 9: a Data-Juicer-style text recipe with 15+ of Sluice's ops and Data-Juicer's own top-level keys
(`open_tracer`, `use_cache`, ...) validates and runs unchanged on the real demo corpus, rows reconciling."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline_defs.cli import main
from pipeline_defs.execute import run_recipe
from pipeline_defs.recipe import load_recipe

pytestmark = pytest.mark.slow

RECIPE = {
    "project_name": "dj_text",
    "dataset_path": "${SLUICE_HOME}/corpus/demo",
    "export_path": "${SLUICE_HOME}/export/dj_text.jsonl",
    "np": 2,
    "open_tracer": False,
    "use_cache": False,
    "cache_compress": None,
    "trace_num": 10,
    "dataset_builder": {"name": "demo_corpus"},
    "process": [
        {"fix_unicode_mapper": None},
        {"whitespace_normalization_mapper": None},
        {"punctuation_normalization_mapper": None},
        {"clean_links_mapper": None},
        {"clean_email_mapper": None},
        {"clean_ip_mapper": None},
        {"remove_specific_chars_mapper": None},
        {"remove_long_words_mapper": {"max_len": 60}},
        {"text_length_filter": {"min_len": 30, "max_len": 100000}},
        {"words_num_filter": {"min_num": 5}},
        {"alphanumeric_filter": {"min_ratio": 0.25}},
        {"special_characters_filter": {"max_ratio": 0.4}},
        {"average_line_length_filter": {"min_len": 10}},
        {"maximum_line_length_filter": {"max_len": 1000}},
        {"character_repetition_filter": None},
        {"word_repetition_filter": None},
        {"stopwords_filter": {"min_ratio": 0.1}},
        {"flagged_words_filter": None},
        {"language_id_score_filter": {"lang": "en", "min_score": 0.5}},
        {"document_deduplicator": {"lowercase": True}},
    ],
}


def test_a_data_juicer_text_recipe_runs_unchanged(tmp_path: Path, sluice_home: Path, demo_corpus, capsys) -> None:
    # dataset_path already holds the demo corpus (the session's), so `dataset_builder` finds it built
    shutil.copytree(demo_corpus.out_dir, sluice_home / "corpus" / "demo")
    path = tmp_path / "dj_text.yaml"
    path.write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    for key in ("open_tracer", "use_cache", "cache_compress", "trace_num"):
        assert f"ignored {key}:" in out
    recipe = load_recipe(path)
    assert len(recipe.process) >= 15
    report = run_recipe(path, echo=lambda _: None)
    e = report.export
    assert e["input"] == e["kept"] + e["filtered"] + e["duplicate"] + e["quarantined"] >= 10_000
    dropped = pl.read_ndjson(Path(recipe.export_path).with_name("dj_text.dropped.jsonl"), infer_schema_length=None)
    # several different filters each removed rows, each with its reason
    assert dropped.filter(pl.col("sluice_drop") == "filtered")["sluice_op"].n_unique() >= 5
    assert dropped["sluice_reason"].null_count() == 0
