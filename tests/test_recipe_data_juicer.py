"""Data-Juicer recipes accepted unchanged (issue 9): every global key of Data-Juicer 1.6.1's config_all.yaml is
honoured or listed as ignored with why; op names Sluice lacks are named as such; `Op.unavailable` is a validation
problem; custom_operator_paths is checked before anything is imported (issue 11 item 14)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import Field

from ops_library.base import Filter, OpParams
from ops_library.dj_ops import DATA_JUICER_OPS
from ops_library.registry import OPS, close_op_names, load_all
from pipeline_defs.cli import main
from pipeline_defs.planning import plan_for
from pipeline_defs.recipe import IGNORED_KEYS, RecipeError, parse_recipe
from resources.hardware import Hardware

DJ_GLOBALS = Path(__file__).parent / "data" / "dj_1.6.1_config_all_globals.yaml"
# Global keys whose meaning Sluice keeps (mapped onto its own keys where the names differ).
HONOURED = {
    "project_name",
    "dataset_path",
    "export_path",
    "export_type",
    "np",
    "text_keys",
    "auto_op_parallelism",
    "keep_stats_in_res_ds",
    "executor_type",
    "custom_operator_paths",
    "partition",
    "checkpoint",
    "checkpoint_dir",
    "event_log_dir",
}
BASE: dict[str, Any] = {
    "project_name": "t",
    "dataset_path": "/data/in.jsonl",
    "export_path": "/data/out.jsonl",
    "process": [{"text_length_filter": {"min_len": 5}}],
}


def _problems(data: dict[str, Any], source: str = "r.yaml") -> list[str]:
    with pytest.raises(RecipeError) as err:
        parse_recipe(data, source)
    return err.value.problems


# --- global keys ----------------------------------------------------------------------------------------------


def test_every_global_key_of_data_juicers_config_all_is_accepted() -> None:
    config_all = yaml.safe_load(DJ_GLOBALS.read_text())
    assert len(config_all) == 77
    recipe = parse_recipe({**config_all, "process": BASE["process"]}, "config_all.yaml")
    ignored_top = {key.split(".")[0] for key in recipe.ignored_keys}
    assert set(config_all) - HONOURED <= ignored_top, sorted(set(config_all) - HONOURED - ignored_top)
    assert not (HONOURED - {"partition"}) & ignored_top
    assert {"open_tracer", "use_cache", "cache_compress", "ray_address", "trace_num", "work_dir"} <= ignored_top
    assert "partition.mode" in recipe.ignored_keys and "partition.size" not in recipe.ignored_keys
    for key, why in recipe.ignored_keys.items():
        assert why and "\n" not in why and len(why) < 160, key
    # the honoured ones kept their meaning
    assert (recipe.project_name, recipe.np, recipe.text_keys) == ("all", 4, ["text"])
    # size: null is Data-Juicer's "no target": Sluice's default byte-sized shards
    assert recipe.partition.size is None and recipe.partition.shard_bytes == 64_000_000
    assert (recipe.checkpoint.strategy, recipe.checkpoint.n_ops) == ("every_n_ops", 5)


def test_ignored_keys_are_listed_by_sluice_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dj.yaml"
    path.write_text(yaml.safe_dump({**BASE, "open_tracer": False, "use_cache": False, "executor_type": "ray"}))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  ignored open_tracer: {IGNORED_KEYS['open_tracer']}" in out
    assert f"  ignored use_cache: {IGNORED_KEYS['use_cache']}" in out
    assert "  ignored executor_type: 'ray': a setting of Data-Juicer's Ray executors" in out


def test_a_recipe_without_data_juicer_globals_ignores_nothing() -> None:
    assert parse_recipe(BASE).ignored_keys == {}


def test_unknown_keys_stay_errors_and_suggest_only_close_names() -> None:
    problems = _problems({**BASE, "use_cahce": True, "frobnicate": 1})
    assert "unknown key 'use_cahce'; did you mean 'use_cache'?" in problems
    assert "unknown key 'frobnicate'" in problems  # nothing is close: no suggestion


def test_a_dataset_config_without_dataset_path_says_what_to_set() -> None:
    data = {k: v for k, v in BASE.items() if k != "dataset_path"}
    problems = _problems({**data, "dataset": {"configs": [{"type": "local", "path": "/data/in.jsonl"}]}})
    assert "dataset: Sluice does not read dataset configs or mixtures; set dataset_path to the input" in problems


def test_unknown_executor_types_are_errors() -> None:
    assert parse_recipe({**BASE, "executor_type": "default"}).ignored_keys == {}
    assert any(p.startswith("executor_type:") for p in _problems({**BASE, "executor_type": "spark"}))


def test_encryption_asked_for_is_refused_not_ignored() -> None:
    for key in ("encrypt_before_export", "decrypt_after_reading"):
        assert parse_recipe({**BASE, key: False}).ignored_keys == {key: IGNORED_KEYS[key]}
        assert any(p.startswith(f"{key}: Sluice does not encrypt") for p in _problems({**BASE, key: True}))


def test_export_type_must_agree_with_export_path() -> None:
    parse_recipe({**BASE, "export_type": "jsonl"})
    parse_recipe({**BASE, "export_type": "json"})
    parse_recipe({**BASE, "export_path": "/data/out.parquet", "export_type": "parquet"})
    (problem,) = _problems({**BASE, "export_type": "parquet"})
    assert problem.startswith("export_type: 'parquet' disagrees with export_path '/data/out.jsonl'")
    (problem,) = _problems({**BASE, "export_type": "csv"})
    assert problem.startswith("export_type: 'csv' is not an export Sluice writes")


def test_checkpoint_dir_and_event_log_dir_are_storage_dirs() -> None:
    recipe = parse_recipe({**BASE, "checkpoint_dir": "/ck", "event_log_dir": "/ev"})
    assert (recipe.storage.checkpoint_dir, recipe.storage.event_log_dir) == ("/ck", "/ev")
    assert recipe.checkpoint_root == Path("/ck") and recipe.jobs_root == Path("/ev")
    (problem,) = _problems({**BASE, "checkpoint_dir": "/ck", "storage": {"checkpoint_dir": "/other"}})
    assert problem == "checkpoint_dir: '/ck' disagrees with storage.checkpoint_dir '/other'; keep one"


def test_checkpoint_enabled_false_keeps_no_checkpoints() -> None:
    recipe = parse_recipe({**BASE, "checkpoint": {"enabled": False, "strategy": "every_n_ops", "n_ops": 5}})
    assert recipe.checkpoint.strategy == "disabled"
    assert parse_recipe({**BASE, "checkpoint": {"enabled": True}}).checkpoint.strategy == "every_op"


def test_top_level_auto_op_parallelism_false_runs_ops_at_np_workers() -> None:
    hw = Hardware.fake(cpus=16, memory_gb=64)
    auto = parse_recipe({**BASE, "np": 3})
    assert plan_for(auto, hw).ops[0].num_proc == 16  # auto: one worker per CPU
    fixed = parse_recipe({**BASE, "np": 3, "auto_op_parallelism": False})
    assert fixed.process[0].resources.auto_op_parallelism is False
    assert (plan_for(fixed, hw).ops[0].num_proc, plan_for(fixed, hw).ops[0].source) == (3, "explicit")
    own = {"text_length_filter": {"min_len": 5, "auto_op_parallelism": True}}
    assert plan_for(parse_recipe({**BASE, "auto_op_parallelism": False, "process": [own]}), hw).ops[0].num_proc == 16


# --- op names ----------------------------------------------------------------------------------------------------


def test_did_you_mean_suggests_only_close_op_names() -> None:
    """Issue 9: `clean_email_mapper` suggested 'clean_links_mapper' or 'text_embedding_mapper'."""
    assert close_op_names("clean_email_mapper", {"clean_links_mapper", "text_embedding_mapper"}) == []
    assert close_op_names("text_lenght_filter", {"text_length_filter", "words_num_filter"}) == ["text_length_filter"]
    assert close_op_names("word_num_filter", {"text_length_filter", "words_num_filter"}) == ["words_num_filter"]
    assert close_op_names("text_length_mapper", {"text_length_filter"}) == ["text_length_filter"]


def test_a_data_juicer_op_sluice_lacks_is_named_as_such() -> None:
    name = "image_aesthetics_filter"  # an image op: Sluice is text-only
    assert name in DATA_JUICER_OPS and name not in load_all()
    (problem,) = _problems({**BASE, "process": [{"text_length_filter": {}}, {name: {"min_score": 0.5}}]})
    assert problem.startswith(f"process[1]: {name!r} is a Data-Juicer op Sluice does not implement; see `sluice ops`")
    assert problem.endswith("add one with `custom_operator_paths`")
    (problem,) = _problems({**BASE, "process": [{"not_an_op_at_all_mapper": {}}]})
    assert problem.startswith("process[0]: unknown op 'not_an_op_at_all_mapper' (`sluice ops` lists")


def test_the_data_juicer_op_list_is_the_1_6_1_one() -> None:
    assert len(DATA_JUICER_OPS) == 228
    builtin = {"whitespace_normalization_mapper", "clean_links_mapper", "text_length_filter", "words_num_filter"}
    assert builtin | {"clean_email_mapper", "fix_unicode_mapper", "language_id_score_filter"} <= DATA_JUICER_OPS
    assert "document_minhash_deduplicator_with_uid" in DATA_JUICER_OPS  # registered under an f-string name


class _NeedsAModelFilter(Filter):
    """Test op: unavailable unless its model is "installed"."""

    installed: ClassVar[set[str]] = {"small"}

    class Params(OpParams):
        model: str = Field("small", description="Which model.")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        model = params.model  # type: ignore[attr-defined]
        return None if model in cls.installed else f"model {model!r} is not installed; pip install a-package"


def test_unavailable_ops_are_validation_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    load_all()
    monkeypatch.setitem(OPS, "needs_model_filter", _NeedsAModelFilter)
    parse_recipe({**BASE, "process": [{"needs_model_filter": {}}]})
    problems = _problems({**BASE, "process": [{"text_length_filter": {}}, {"needs_model_filter": {"model": "big"}}]})
    assert problems == ["process[1].needs_model_filter: model 'big' is not installed; pip install a-package"]


def test_ops_are_available_by_default() -> None:
    refused = {"perplexity_filter", "text_action_filter", "text_entity_dependency_filter"}  # models not shippable
    ops = load_all()
    assert all(ops[n].unavailable(ops[n].Params()) is None for n in ops if _defaults_valid(ops[n]) and n not in refused)
    assert all(ops[n].unavailable(ops[n].Params()) for n in refused)


def _defaults_valid(op: Any) -> bool:
    return all(not f.is_required() for f in op.Params.model_fields.values())


# --- custom_operator_paths (issue 11 item 14) ---------------------------------------------------------------------

OP_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
from ops_library.base import Mapper, OpParams
from ops_library.registry import register


@register({name!r})
class {cls}(Mapper):
    \"\"\"Test op (Data-Juicer: none).\"\"\"

    def map_text(self, text):
        return text
"""


def _op_file(directory: Path, stem: str, name: str) -> tuple[Path, Path]:
    marker = directory / f"{stem}.imported"
    cls = "".join(part.capitalize() for part in name.split("_"))
    path = directory / f"{stem}.py"
    path.write_text(OP_MODULE.format(marker=str(marker), name=name, cls=cls))
    return path, marker


def _recipe_file(directory: Path, paths: list[str], op: str) -> Path:
    recipe = directory / "r.yaml"
    recipe.write_text(yaml.safe_dump({**BASE, "custom_operator_paths": paths, "process": [{op: {}}]}))
    return recipe


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ops these tests register, and their modules, are gone afterwards."""
    load_all()
    monkeypatch.setattr("ops_library.registry.OPS", dict(OPS))
    yield
    for name in [m for m in sys.modules if m.startswith(("cop_", "sluice_custom_"))]:
        del sys.modules[name]


def test_missing_paths_are_refused_before_anything_is_imported(
    tmp_path: Path, clean_registry: None, capsys: pytest.CaptureFixture[str]
) -> None:
    good, marker = _op_file(tmp_path, "good_ops", "cop_good_mapper")
    recipe = _recipe_file(tmp_path, [good.name, "missing_ops.py", "../nowhere/ops.py"], "cop_good_mapper")
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"custom_operator_paths: 'missing_ops.py' does not exist (looked for {tmp_path / 'missing_ops.py'})" in err
    assert "custom_operator_paths: '../nowhere/ops.py' does not exist" in err
    assert not marker.exists()  # good_ops.py was not run
    assert "imported" not in err


def test_sluice_validate_imports_custom_ops_and_says_so(
    tmp_path: Path, clean_registry: None, capsys: pytest.CaptureFixture[str]
) -> None:
    good, marker = _op_file(tmp_path, "good_ops", "cop_said_mapper")
    recipe = _recipe_file(tmp_path, [good.name], "cop_said_mapper")
    assert main(["validate", str(recipe)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert marker.read_text() == "imported"  # validate runs the file: it is trusted code
    assert err == [f"{recipe}: custom_operator_paths: imported 'good_ops.py' ({good.resolve()})"]


def test_custom_ops_from_a_package_directory_and_a_module_name(tmp_path: Path, clean_registry: None) -> None:
    package = tmp_path / "cop_pkg"
    package.mkdir()
    _, marker = _op_file(package, "__init__", "cop_pkg_mapper")
    data = {**BASE, "custom_operator_paths": ["cop_pkg"], "process": [{"cop_pkg_mapper": {}}]}
    recipe = parse_recipe(data, str(tmp_path / "r.yaml"))
    assert recipe.process[0].name == "cop_pkg_mapper" and marker.exists()
    (problem,) = _problems({**BASE, "custom_operator_paths": [str(tmp_path)]}, str(tmp_path / "r.yaml"))
    assert problem.endswith("is a directory without __init__.py")
    (problem,) = _problems({**BASE, "custom_operator_paths": ["no_such_module_xyz"]})
    assert problem == "custom_operator_paths: 'no_such_module_xyz' is neither a file nor an importable module"
    parse_recipe({**BASE, "custom_operator_paths": ["json"]})
