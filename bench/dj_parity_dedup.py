"""Sluice's near-duplicate and line dedup against real Data-Juicer 1.6.1, on the near-duplicate quality set.

Runs each case with Sluice's op here (`hash_mode: datajuicer` for MinHash and SimHash) and with Data-Juicer's
own op class in the Data-Juicer virtualenv (--djvenv, default /work/djvenv; offline; simhash-pybind is lent from
this venv when that one lacks it), on the same texts in the same order, and compares the kept rows (line dedup:
the rewritten texts). Also shows how far the fast hash mode is from Data-Juicer.

    python bench/dj_parity_dedup.py [--djvenv /work/djvenv] [--limit 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES: list[tuple[str, dict]] = [
    ("document_minhash_deduplicator", {}),
    ("document_minhash_deduplicator", {"tokenization": "character", "window_size": 8, "jaccard_threshold": 0.8}),
    ("document_simhash_deduplicator", {}),
    ("document_line_deduplicator", {}),
    ("document_line_deduplicator", {"lowercase": True, "ignore_special_character": True, "frequency_threshold": 3}),
]


def data_juicer_side(job_path: str, out_path: str) -> None:
    """Run inside the Data-Juicer venv: every case over the texts with Data-Juicer's op classes."""
    import data_juicer.ops.deduplicator  # noqa: F401  (registers the deduplicators)
    from data_juicer.ops.base_op import OPERATORS
    from datasets import Dataset

    job = json.loads(Path(job_path).read_text())
    results = []
    for name, params in job["cases"]:
        op = OPERATORS.modules[name](**params)
        ds = Dataset.from_dict({"text": job["texts"], "idx": list(range(len(job["texts"])))})
        ds = ds.map(op.compute_hash, num_proc=1, load_from_cache_file=False)
        out, _ = op.process(ds)
        results.append({"kept": list(out["idx"]), "texts": list(out["text"])})
    Path(out_path).write_text(json.dumps(results))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--djvenv", default="/work/djvenv")
    ap.add_argument("--limit", type=int, default=3000, help="first N docs of the quality set")
    args = ap.parse_args()
    import polars as pl  # here: the Data-Juicer side imports this module where polars is absent
    from neardup_quality import corpus

    from ops_library.columns import ROW_ID
    from ops_library.registry import get_op

    _, texts = corpus()
    texts = texts[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="dj_parity_dedup_"))
    job, out = work / "job.json", work / "out.json"
    job.write_text(json.dumps({"cases": CASES, "texts": texts}))
    env = {**os.environ, "UV_OFFLINE": "1", "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    simhash = find_spec("simhash")
    if simhash is not None and simhash.origin:
        lend = work / "lend"
        lend.mkdir()
        (lend / "simhash").symlink_to(Path(simhash.origin).parent)
        env["PYTHONPATH"] = str(lend)
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import dj_parity_dedup as m; "
    code += f"m.data_juicer_side({str(job)!r}, {str(out)!r})"
    subprocess.run([f"{args.djvenv}/bin/python", "-c", code], check=True, env=env, cwd=work)
    dj = json.loads(out.read_text())
    df = pl.DataFrame({"text": texts, ROW_ID: [str(i) for i in range(len(texts))]})
    print(f"{len(texts)} docs of the near-duplicate quality set")
    for (name, params), ref in zip(CASES, dj, strict=True):
        op_class = get_op(name)
        modes = ["datajuicer", "fast"] if "hash_mode" in op_class.Params.model_fields else [None]
        for mode in modes:
            p = {**params, **({"hash_mode": mode} if mode else {})}
            res = op_class(p).run(df)
            if name == "document_line_deduplicator":
                diff = sum(a != b for a, b in zip(res.kept["text"].to_list(), ref["texts"], strict=True))
                print(f"{name} {params}: {res.changed} texts rewritten; texts differing from Data-Juicer: {diff}")
                continue
            kept = {int(i) for i in res.kept[ROW_ID].to_list()}
            ref_kept = set(ref["kept"])
            print(
                f"{name} {p}: kept {len(kept)} (Data-Juicer {len(ref_kept)}); "
                f"only Sluice keeps {len(kept - ref_kept)}, only Data-Juicer keeps {len(ref_kept - kept)}"
            )


if __name__ == "__main__":
    main()
