import json
from pathlib import Path

from pipeline_defs.cli import main
from pipeline_defs.explain import explain

ROWS = [
    {"sluice_id": "a.jsonl:2", "sluice_op": "words_num_filter", "sluice_drop": "filtered",
     "sluice_reason": "num_words=1 outside [5, inf]", "text": "hi"},
    {"sluice_id": "a.jsonl:5", "sluice_op": "document_minhash_deduplicator", "sluice_drop": "duplicate",
     "sluice_reason": "near-duplicate of a.jsonl:1 (minhash cluster 0)", "sluice_duplicate_of": "a.jsonl:1",
     "text": "the same words again"},
    {"sluice_id": "b.jsonl:3", "sluice_op": "document_minhash_deduplicator", "sluice_drop": "duplicate",
     "sluice_reason": "near-duplicate of a.jsonl:1 (minhash cluster 0)", "sluice_duplicate_of": "a.jsonl:1",
     "text": "the same words once more"},
]  # fmt: skip


def sidecar(tmp_path: Path) -> Path:
    path = tmp_path / "out.dropped.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_explains_a_duplicate_with_its_kept_row_and_cluster(tmp_path: Path) -> None:
    text = explain(sidecar(tmp_path), "b.jsonl:3")
    assert text.splitlines() == [
        "b.jsonl:3: dropped by document_minhash_deduplicator (duplicate): "
        "near-duplicate of a.jsonl:1 (minhash cluster 0)",
        "  duplicates a.jsonl:1, the row its cluster keeps",
        "  cluster: a.jsonl:1 (kept) and 2 dropped rows; also a.jsonl:5",
        "  text: 'the same words once more'",
    ]


def test_explains_a_filtered_row_and_a_kept_row(tmp_path: Path) -> None:
    path = sidecar(tmp_path)
    assert explain(path, "a.jsonl:2").splitlines()[0] == (
        "a.jsonl:2: dropped by words_num_filter (filtered): num_words=1 outside [5, inf]"
    )
    assert "not dropped" in explain(path, "a.jsonl:1")
    assert "no dropped-rows file" in explain(tmp_path / "missing.jsonl", "a.jsonl:1")


def test_cli_reads_the_recipes_export_sidecar(tmp_path: Path, capsys) -> None:
    sidecar(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"project_name: r\ndataset_path: {tmp_path / 'data'}\nexport_path: {tmp_path / 'out.jsonl'}\n"
        "process:\n  - document_minhash_deduplicator:\n"
    )
    assert main(["explain", str(recipe), "a.jsonl:5"]) == 0
    assert "duplicates a.jsonl:1" in capsys.readouterr().out
