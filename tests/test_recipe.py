from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_defs.recipe import RecipeError, load_recipe, parse_recipe
from tests.conftest import ROOT

BASE = {
    "project_name": "t",
    "dataset_path": "/data/in.jsonl",
    "export_path": "/data/out.jsonl",
    "process": [{"text_length_filter": {"min_len": 5}}],
}


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_project_recipe_validates(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.process, path


def test_demo_recipe_parses_into_typed_ops() -> None:
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml")
    assert [op.name for op in recipe.process] == [
        "whitespace_normalization_mapper",
        "clean_links_mapper",
        "text_length_filter",
        "words_num_filter",
        "document_deduplicator",
    ]
    length = recipe.process[2]
    assert length.params.min_len == 30  # type: ignore[attr-defined]
    assert length.step_name == "op02_text_length_filter"
    assert recipe.job_name == "demo_job"
    assert recipe.partition.size is None and recipe.partition.shard_bytes == 64_000_000


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe({**BASE, "export_pth": "x"}, "r.yaml")
    msg = str(err.value)
    assert "r.yaml" in msg and "unknown key 'export_pth'" in msg and "did you mean 'export_path'" in msg


def test_unknown_op_suggests_the_registered_name() -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe({**BASE, "process": [{"text_lenght_filter": {}}]}, "r.yaml")
    assert "process[0]: unknown op 'text_lenght_filter'; did you mean 'text_length_filter'" in str(err.value)


def test_unknown_param_names_op_position_and_suggestion() -> None:
    recipe = {
        **BASE,
        "process": [{"whitespace_normalization_mapper": None}, {"words_num_filter": {"min_nm": 3}}],
    }
    with pytest.raises(RecipeError) as err:
        parse_recipe(recipe, "r.yaml")
    msg = str(err.value)
    assert "process[1].words_num_filter: unknown param 'min_nm'; did you mean 'min_num'" in msg


def test_wrong_param_type_names_the_key() -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe({**BASE, "process": [{"text_length_filter": {"min_len": "ten"}}]}, "r.yaml")
    assert "process[0].text_length_filter.min_len" in str(err.value)


def test_all_problems_are_reported_at_once() -> None:
    bad = {**BASE, "np": 0, "colour": 1, "process": [{"nope_mapper": {}}]}
    with pytest.raises(RecipeError) as err:
        parse_recipe(bad, "r.yaml")
    assert len(err.value.problems) == 3, err.value.problems


def test_common_op_keys_are_accepted_beside_params() -> None:
    recipe = parse_recipe(
        {**BASE, "process": [{"text_length_filter": {"min_len": 5, "num_proc": 2, "batch_size": 100}}]}
    )
    assert recipe.process[0].resources.num_proc == 2


def test_env_vars_expand_in_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUS", "/mnt/c")
    recipe = parse_recipe({**BASE, "dataset_path": "${CORPUS}/x", "export_path": "${NOPE:-/tmp}/o.jsonl"})
    assert recipe.dataset_path == "/mnt/c/x"
    assert recipe.export_path == "/tmp/o.jsonl"


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("process: [\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)


def test_fingerprint_changes_with_params_only() -> None:
    a = parse_recipe(BASE)
    b = parse_recipe({**BASE, "export_path": "/elsewhere.jsonl"})
    c = parse_recipe({**BASE, "process": [{"text_length_filter": {"min_len": 6}}]})
    assert a.fingerprint == b.fingerprint != c.fingerprint
