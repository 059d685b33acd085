"""Real documents for the dedup benchmarks, read from files every Python install has (no download)."""

from __future__ import annotations

import sysconfig
from pathlib import Path


def stdlib_docs(n: int, lo: int = 1000, hi: int = 2000) -> list[str]:
    """Consecutive lines of the standard library's .py files grouped into docs of lo..hi bytes, in sorted file
    order (the first `n`)."""
    docs: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        chunk: list[str] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line.encode())
            if size >= lo:
                if size <= hi:
                    docs.append("".join(chunk))
                    if len(docs) == n:
                        return docs
                chunk, size = [], 0
    return docs
