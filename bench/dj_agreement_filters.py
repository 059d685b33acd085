"""Sluice's filters against real Data-Juicer 1.6.1 on the demo corpus: stats and keep decisions, row by row.

Runs each case twice: with Sluice's op here, and with Data-Juicer's own op class in a separate Data-Juicer
virtualenv (--djvenv, default /work/djvenv; run offline), on the same rows. Data-Juicer downloads its word
lists and model; here it is handed what Sluice ships instead, so the comparison is of the code: the shipped
word lists are written to a temp dir as `stopwords.json` / `flagged_words.json` (its `*_dir` params), and
fastText's shipped lid.176.ftz is put in its model cache as `lid.176.bin` (the fasttext package is lent
from this venv when the Data-Juicer venv lacks it). token_num_filter is left out: that venv has no
`transformers`. Prints, per case, rows kept by each and the rows where the decision or a stat differs.

    python bench/dj_agreement_filters.py [--djvenv /work/djvenv] [--every 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

CASES: list[tuple[str, dict]] = [
    ("alphanumeric_filter", {}),
    ("alphanumeric_filter", {"min_ratio": 0.7, "max_ratio": 0.8, "reversed_range": True}),
    ("special_characters_filter", {}),
    ("special_characters_filter", {"min_ratio": 0.1, "max_ratio": 0.3, "min_closed_interval": False}),
    ("average_line_length_filter", {}),
    ("average_line_length_filter", {"min_len": 20, "max_len": 60, "max_closed_interval": False}),
    ("maximum_line_length_filter", {}),
    ("maximum_line_length_filter", {"min_len": 40, "max_len": 79, "reversed_range": True}),
    ("character_repetition_filter", {}),
    ("character_repetition_filter", {"rep_len": 3, "min_ratio": 0.05, "max_ratio": 0.2}),
    ("word_repetition_filter", {}),
    ("word_repetition_filter", {"rep_len": 2, "max_ratio": 0.1}),
    ("stopwords_filter", {}),
    ("stopwords_filter", {"lang": "all", "min_ratio": 0.2, "max_ratio": 0.6}),
    ("stopwords_filter", {"use_words_aug": True, "words_aug_group_sizes": [2, 3], "words_aug_join_char": "_"}),
    ("flagged_words_filter", {}),
    ("flagged_words_filter", {"max_ratio": 0.0}),
    ("language_id_score_filter", {}),
    ("language_id_score_filter", {"lang": ["en", "fr"], "min_score": 0.5}),
    ("specified_field_filter", {"field_key": "kind", "target_value": ["readme", "comment"]}),
    ("specified_numeric_field_filter", {"field_key": "meta.lines", "min_value": 3, "max_value": 40}),
    ("suffix_filter", {"suffixes": [".jsonl", ".parquet"]}),
    ("words_num_filter", {}),
    ("text_length_filter", {"min_len": 50, "max_len": 2000}),
]
LIST_DIR_PARAM = {"stopwords_filter": "stopwords_dir", "flagged_words_filter": "flagged_words_dir"}


def data_juicer_side(job_path: str, out_path: str) -> None:
    """Run inside the Data-Juicer venv: every case over the rows, with Data-Juicer's op classes."""
    import data_juicer.ops.filter  # noqa: F401  (registers the filters)
    from data_juicer.ops.base_op import OPERATORS
    from data_juicer.utils.file_utils import find_files_with_suffix

    job = json.loads(Path(job_path).read_text())
    suffix_of = {Path(f).name: s for s, files in find_files_with_suffix(job["corpus"]).items() for f in files}
    rows = job["rows"]
    for row in rows:
        row["__dj__suffix__"] = suffix_of[row["__sluice_id__"].rsplit(":", 1)[0]]
    results = []
    for name, params in job["cases"]:
        op = OPERATORS.modules[name](**params)
        samples = [{**row, "__dj__stats__": {}} for row in rows]
        if op.is_batched_op():
            batch = {key: [s[key] for s in samples] for key in samples[0]}
            batch = op.compute_stats_batched(batch)
            keep = list(op.process_batched(batch))
            stats = batch["__dj__stats__"]
        else:
            samples = [op.compute_stats_single(s) for s in samples]
            keep = [op.process_single(s) for s in samples]
            stats = [s["__dj__stats__"] for s in samples]
        results.append({"keep": [bool(k) for k in keep], "stats": stats})
    Path(out_path).write_text(json.dumps(results))


def load_rows(corpus: Path, every: int) -> list[dict]:
    rows: list[dict] = []
    import polars as pl

    for path in sorted(p for p in corpus.iterdir() if not p.name.startswith("_")):
        if path.suffix == ".parquet":
            file_rows = pl.read_parquet(path).to_dicts()
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                file_rows = [json.loads(line) for line in fh]
        rows += [
            {
                "text": r["text"],
                "kind": r["kind"],
                "meta": {"lines": str(r["text"].count("\n"))},
                "__sluice_id__": f"{path.name}:{i}",
            }
            for i, r in enumerate(file_rows, 1)
        ]
    return rows[::every]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--dj":
        data_juicer_side(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--djvenv", type=Path, default=Path("/work/djvenv"))
    parser.add_argument("--every", type=int, default=1, help="use every n-th corpus row")
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import polars as pl

    from ops_library.filters.language_id_score_filter import model_path
    from ops_library.registry import get_op
    from ops_library.wordlists import load_words
    from pipeline_defs.corpus import ensure_demo_corpus

    work = Path(tempfile.mkdtemp(prefix="sluice_dj_agreement_"))
    corpus = args.corpus or ensure_demo_corpus(work / "corpus").out_dir
    rows = load_rows(Path(corpus), args.every)
    cases = []
    for name, params in CASES:
        if name in LIST_DIR_PARAM:
            kind = name.removesuffix("_filter")
            folder = work / kind
            folder.mkdir(exist_ok=True)
            lists = {lang: sorted(words) for lang, words in load_words(kind).items() if lang != "all"}
            (folder / f"{kind}.json").write_text(json.dumps(lists))
            params = {**params, LIST_DIR_PARAM[name]: str(folder)}
        cases.append((name, params))
    job = work / "job.json"
    job.write_text(json.dumps({"corpus": str(corpus), "rows": rows, "cases": cases}))

    models = work / "models"
    models.mkdir()
    (models / "lid.176.bin").symlink_to(model_path())
    lend = work / "lend"
    lend.mkdir()
    site = Path(find_spec("fasttext").origin).parent.parent
    for lent in [site / "fasttext", *site.glob("fasttext_pybind*"), *site.glob("fasttext_predict-*.dist-info")]:
        (lend / lent.name).symlink_to(lent)
    env = {
        **os.environ,
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        "HF_HUB_OFFLINE": "1",
        "DATA_JUICER_MODELS_CACHE": str(models),
        "DATA_JUICER_ASSETS_CACHE": str(work / "assets"),
        "PYTHONPATH": str(lend),
    }
    out = work / "dj.json"
    subprocess.run([str(args.djvenv / "bin" / "python"), __file__, "--dj", str(job), str(out)], env=env, check=True)
    dj_results = json.loads(out.read_text())

    frame = pl.DataFrame(rows)
    print(f"{len(rows)} demo-corpus rows; Data-Juicer 1.6.1 from {args.djvenv}")
    print(f"{'case':<58}{'DJ kept':>9}{'Sluice':>9}{'decisions differ':>18}{'stats differ':>14}")
    for (name, params), dj in zip(cases, dj_results, strict=True):
        out_sluice = get_op(name)(params).run(frame)
        kept_ids = set(out_sluice.kept["__sluice_id__"])
        ours_keep = [r["__sluice_id__"] in kept_ids for r in rows]
        both = pl.concat([out_sluice.kept, out_sluice.dropped.select(out_sluice.kept.columns)])
        ours_stats = (
            dict(zip(both["__sluice_id__"], both["__dj__stats__"].to_list(), strict=True))
            if "__dj__stats__" in both.columns
            else {}
        )
        stat_diff = (
            sum(
                1
                for r, theirs in zip(rows, dj["stats"], strict=True)
                if {k: v for k, v in theirs.items()} != (ours_stats.get(r["__sluice_id__"]) or {})
            )
            if ours_stats
            else 0
        )
        decision_diff = sum(a != b for a, b in zip(ours_keep, dj["keep"], strict=True))
        shown = {k: v for k, v in params.items() if not k.endswith("_dir")}
        label = f"{name} {json.dumps(shown)}"[:57]
        print(f"{label:<58}{sum(dj['keep']):>9}{sum(ours_keep):>9}{decision_diff:>18}{stat_diff:>14}")


if __name__ == "__main__":
    main()
