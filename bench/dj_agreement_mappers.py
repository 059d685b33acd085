"""Compare the Sluice text mappers with real Data-Juicer 1.6.1 on the demo corpus and adversarial strings.

Needs a Data-Juicer venv (default /work/djvenv, run offline). The Data-Juicer side runs in that venv's Python
(calling each op's `process_batched` directly); packages that venv lacks (ftfy, selectolax, opencc) are taken
from this venv through PYTHONPATH, so both sides use the same versions. Prints, per op and corpus, the rows
compared and the rows that differ (with the first difference).

Run: python bench/dj_agreement_mappers.py [--dj-python /work/djvenv/bin/python] [--sample N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (op, params); sentence_split_mapper is left out: Data-Juicer downloads its Punkt model at run time.
CASES = [
    ("clean_email_mapper", {}),
    ("clean_ip_mapper", {}),
    ("clean_html_mapper", {}),
    ("clean_copyright_mapper", {}),
    ("fix_unicode_mapper", {}),
    ("punctuation_normalization_mapper", {}),
    ("chinese_convert_mapper", {}),
    ("chinese_convert_mapper", {"mode": "t2s"}),
    ("remove_bibliography_mapper", {}),
    ("remove_comments_mapper", {}),
    ("remove_header_mapper", {}),
    ("remove_long_words_mapper", {"min_len": 2, "max_len": 15}),
    ("remove_non_chinese_character_mapper", {}),
    ("remove_specific_chars_mapper", {}),
    ("remove_repeat_sentences_mapper", {}),
    ("remove_table_text_mapper", {}),
    ("remove_words_with_incorrect_substrings_mapper", {}),
    ("expand_macro_mapper", {}),
    ("text_chunk_mapper", {}),
    ("text_chunk_mapper", {"max_len": 60, "split_pattern": r"\n|\. ", "overlap_len": 5}),
]

DJ_SIDE = r"""
import importlib, json, sys
import selectolax.lexbor  # Data-Juicer's lazy `selectolax` imports the submodule only when installed
cases, texts, out = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), {}
for i, (name, params) in enumerate(cases):
    module = importlib.import_module(f"data_juicer.ops.mapper.{name}")
    cls = next(v for v in vars(module).values() if getattr(v, "_name", None) == name or
               (isinstance(v, type) and v.__module__ == module.__name__ and hasattr(v, "process_batched")))
    op = cls(**params)
    for source, rows in texts.items():
        try:
            samples = op.process_batched({"text": list(rows), "id": list(range(len(rows)))})
            out[f"{i}/{source}"] = {"text": samples["text"], "id": samples["id"]}
        except Exception as err:  # noqa: BLE001
            out[f"{i}/{source}"] = {"error": f"{type(err).__name__}: {err}"[:300]}
json.dump(out, open(sys.argv[3], "w"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dj-python", default="/work/djvenv/bin/python")
    parser.add_argument("--sample", type=int, default=0, help="first N demo docs (0: all)")
    parser.add_argument("ops", nargs="*", help="only these ops (default: all)")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.ops or case[0] in args.ops]

    sys.path.insert(0, str(ROOT))
    import polars as pl

    from bench.ops_throughput_mappers import load_corpus
    from ops_library.columns import PARENT_ID, ROW_ID
    from ops_library.registry import get_op
    from tests.ops_library.test_reference_agreement_mappers import adversarial_texts

    demo = load_corpus(Path(tempfile.gettempdir()) / "sluice-bench-demo-corpus")["text"].to_list()
    texts = {"demo": demo[: args.sample] if args.sample else demo, "adversarial": adversarial_texts(3000)}
    site = next(p for p in sys.path if p.endswith("site-packages"))
    with tempfile.TemporaryDirectory(prefix="dj-agree-") as tmp:
        extra = Path(tmp) / "extra"
        extra.mkdir()
        for package in ("ftfy", "wcwidth", "selectolax", "opencc"):
            (extra / package).symlink_to(Path(site) / package)
        paths = [Path(tmp) / n for n in ("cases.json", "texts.json", "out.json")]
        paths[0].write_text(json.dumps(cases))
        paths[1].write_text(json.dumps(texts))
        env = os.environ | {"PYTHONPATH": str(extra), "UV_OFFLINE": "1", "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1"}
        subprocess.run([args.dj_python, "-c", DJ_SIDE, *map(str, paths)], env=env, check=True, cwd=tmp)
        dj = json.loads(paths[2].read_text())

    print(f"{'op':48s} {'params':40s} {'corpus':12s} {'rows':>7s} {'differ':>7s}")
    for i, (name, params) in enumerate(cases):
        for source, rows in texts.items():
            theirs = dj[f"{i}/{source}"]
            df = pl.DataFrame({"text": rows, ROW_ID: [str(n) for n in range(len(rows))]})
            kept = get_op(name)(params).run(df).kept
            if "error" in theirs:
                print(f"{name:48s} {json.dumps(params)[:40]:40s} {source:12s} Data-Juicer failed: {theirs['error']}")
                continue
            ours = kept["text"].to_list()
            ids = kept.select(pl.coalesce(PARENT_ID, ROW_ID) if PARENT_ID in kept.columns else ROW_ID)
            same_ids = [int(x) for x in ids.to_series().to_list()] == theirs["id"]
            differ = sum(a != b for a, b in zip(ours, theirs["text"], strict=False)) + abs(
                len(ours) - len(theirs["text"])
            )
            first = next(
                (f" first: {a[:60]!r} vs {b[:60]!r}" for a, b in zip(ours, theirs["text"], strict=False) if a != b), ""
            )
            ids_note = "" if same_ids else " (row ids differ)"
            row = f"{name:48s} {json.dumps(params)[:40]:40s} {source:12s} {len(theirs['text']):7d} {differ:7d}"
            print(f"{row}{ids_note}{first}")


if __name__ == "__main__":
    main()
