"""`sluice explain RECIPE ROW_ID`: why a row is not in the export, from the export's dropped-rows sidecar.

Prints the op that dropped it, the reason, and for a duplicate the row it duplicates and the other rows dropped
as duplicates of that same row (its cluster). A row that is not in the sidecar was kept (or never read).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, DUPLICATE_OF, PUBLIC_PROVENANCE, ROW_ID
from pipeline_defs.export import sidecar
from pipeline_defs.recipe import load_recipe

_ID, _OP, _KIND, _REASON, _DUP = (PUBLIC_PROVENANCE[c] for c in (ROW_ID, DROP_OP, DROP_KIND, DROP_REASON, DUPLICATE_OF))
_SHOWN = 10


def explain(dropped_path: Path, row_id: str, text_key: str = "text") -> str:
    """The explanation of `row_id` from a `<stem>.dropped.jsonl` sidecar, as lines of text."""
    if not dropped_path.is_file():
        return f"{row_id}: no dropped-rows file at {dropped_path} (run the recipe first)"
    rows = pl.scan_ndjson(dropped_path, infer_schema_length=None)
    names = rows.collect_schema().names()
    found = rows.filter(pl.col(_ID) == row_id).collect()
    if found.height == 0:
        return f"{row_id}: not dropped (kept in the export, or not an input row of this recipe)"
    row = found.row(0, named=True)
    lines = [f"{row_id}: dropped by {row[_OP]} ({row[_KIND]}): {row[_REASON]}"]
    original = row.get(_DUP)
    if original:
        lines.append(f"  duplicates {original}, the row its cluster keeps")
        if _DUP in names:
            cluster = rows.filter(pl.col(_DUP) == original).select(_ID).collect()[_ID].to_list()
            others = [r for r in cluster if r != row_id]
            shown = ", ".join(others[:_SHOWN]) + (
                f", ... ({len(others) - _SHOWN} more)" if len(others) > _SHOWN else ""
            )
            lines.append(
                f"  cluster: {original} (kept) and {len(cluster)} dropped rows" + (f"; also {shown}" if others else "")
            )
    text = row.get(text_key)
    if isinstance(text, str):
        lines.append(f"  text: {text[:200]!r}{' ...' if len(text) > 200 else ''}")
    return "\n".join(lines)


def _cmd_explain(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    print(explain(sidecar(recipe.export_path, "dropped"), args.row_id, recipe.text_key))
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explain", help="say why a row was dropped (and what it duplicates) from the export")
    parser.add_argument("recipe")
    parser.add_argument("row_id", help="the row's sluice_id, '<input path>:<line or row>'")
    parser.set_defaults(fn=_cmd_explain)
