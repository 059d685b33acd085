"""The benchmark corpus: real English text from Debian packages, installed by this script, nothing committed.

Sources (each a Debian package's files, read in sorted order, so the same packages give the same corpus):

* ``linux-doc-6.1``: the kernel's reST and text documentation (``Documentation/**/*.rst.gz``, ``*.txt.gz``);
* ``python3.11-doc``: the reST sources of the Python documentation (``html/_sources/**/*.txt``);
* ``manpages``, ``manpages-dev``: man pages, troff source turned into plain text here (no groff run, so the
  text does not depend on the terminal width or groff's version);
* ``/usr/share/doc/*/copyright``, ``changelog.Debian.gz`` and upstream ``changelog.gz`` of every installed
  package (licence texts repeat across packages: natural exact and near duplicates for the dedup ops);
* ``fortunes``, ``fortunes-min``: fortune cookies.

Every file is cut into paragraphs (blank-line separated) that are grouped into documents of about 2-4 KB; a
paragraph longer than that is split at line breaks. Sources are interleaved document by document, so any prefix
of the corpus (the 25 / 50 % workloads) samples every source. Each document is
``{"id": "<source>:<path>#<n>", "text", "source", "kind"}``; the id is stable for the same package versions.

Written to ``<out>/jsonl/part-NNNNN.jsonl`` and ``<out>/parquet/part-NNNNN.parquet`` (same rows, same order) and
``<out>/_corpus.json`` (counts, bytes, package versions), the manifest last: a directory without it is an
unfinished build.

    python bench/corpus.py [OUT_DIR] [--target-mb 110] [--shard-docs 5000] [--no-install]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("linux-doc-6.1", "python3.11-doc", "manpages", "manpages-dev", "fortunes", "fortunes-min")
MANIFEST = "_corpus.json"
MIN_DOCS = 25_000
MIN_BYTES = 100_000_000
DOC_MIN_BYTES = 3072  # a document collects paragraphs until it reaches this ...
DOC_MAX_BYTES = 4096  # ... and never grows past this (a longer paragraph is split at line breaks)

Doc = dict[str, str]


# --- packages -----------------------------------------------------------------------------------------------


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    missing = []
    for name in packages:
        probe = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False)
        if "install ok installed" not in probe.stdout:
            missing.append(name)
    return missing


def install_packages(packages: list[str]) -> None:
    """apt-get install the packages (root, or through sudo); a one-line error when that is impossible."""
    if not packages:
        return
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]
    print(f"installing {' '.join(packages)} ...", flush=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # a stale package list is the usual cause
        subprocess.run([*prefix, "apt-get", "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        sys.exit(f"corpus: `{' '.join(cmd)}` failed: {tail[0]}")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\n", *packages], capture_output=True, text=True, check=False
    ).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def package_files(package: str) -> list[Path]:
    out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False).stdout
    return sorted(Path(line) for line in out.splitlines() if line.startswith("/"))


# --- text extraction ----------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return raw.decode("utf-8", errors="replace").replace("\x00", "").replace("\r\n", "\n")


_TROFF_NAMED = {
    "em": "—",
    "en": "–",
    "aq": "'",
    "dq": '"',
    "bu": "•",
    "co": "©",
    "rg": "®",
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "hy": "-",
    "mi": "-",
    "pl": "+",
    "mu": "×",
    "di": "÷",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "->": "→",
    "<-": "←",
    "de": "°",
    "ti": "~",
    "ha": "^",
    "ga": "`",
    "ua": "↑",
    "da": "↓",
    "lh": "☜",
    "rh": "☞",
    "sc": "§",
    "ps": "¶",
    "tm": "™",
    "fm": "′",
    "sq": "□",
    "ba": "|",
    "br": "|",
    "rs": "\\",
    "sl": "/",
    "at": "@",
    "sh": "#",
    "Do": "$",
    "Eu": "€",
    "Po": "£",
    "ct": "¢",
}
_TROFF_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|s[+-]?(?:\d+|\[[^\]]*\]|\(..)|\*(?:\[[^\]]*\]|\(..|.)|\((..)|\[([^\]]*)\]"
    r"|[&|^%c:)]|[-e~ 0]|(.))"
)
_TEXT_MACROS = {"B", "I", "SM", "SB", "SH", "SS", "TP", "IP", "HP", "UR", "MT", "Nm", "Nd", "Sh", "Ss"}
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
_BREAK_MACROS = {"PP", "LP", "P", "TP", "IP", "HP", "SH", "SS", "sp", "Sh", "Ss", "Pp", "EX", "EE", "nf", "fi"}


def _troff_escape(m: re.Match[str]) -> str:
    whole, named, bracket, other = m.group(0), m.group(1), m.group(2), m.group(3)
    if named is not None:
        return _TROFF_NAMED.get(named, "")
    if bracket is not None:
        return _TROFF_NAMED.get(bracket, "")
    if other is not None:
        return other  # "\\" -> "\", "\." -> "."
    return {"\\-": "-", "\\e": "\\", "\\~": " ", "\\ ": " ", "\\0": " "}.get(whole, "")


def _macro_args(rest: str) -> list[str]:
    return [a[1:-1] if len(a) > 1 and a[0] == a[-1] == '"' else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def troff_to_text(source: str) -> str:
    """Plain text of a man page's troff source: macro lines give their text arguments, escapes become characters.

    A deliberately small reader (man(7) and the common mdoc macros), not a renderer: it keeps the words, headings
    and paragraph breaks, which is what the ops look at.
    """
    out: list[str] = []
    fill = True  # in fill mode text lines flow into one paragraph line, as a renderer prints them

    def emit(text: str) -> None:
        if fill and out and out[-1] and text:
            out[-1] += " " + text
        else:
            out.append(text)

    for line in source.replace("\\\n", "").split("\n"):
        if line.startswith(('.\\"', "'\\\"", "'''")) or line.strip() in {".", "'"}:
            continue
        if line.startswith((".", "'")):
            name, _, rest = line[1:].strip().partition(" ")
            if name in _BREAK_MACROS:
                out.append("")
            if name in {"nf", "EX"}:
                fill = False
            elif name in {"fi", "EE"}:
                fill = True
            if name in _ALTERNATING:
                emit("".join(_macro_args(rest)))
            elif name in _TEXT_MACROS and rest.strip():
                emit(" ".join(_macro_args(rest)))
            elif name == "TH" and rest.strip():
                out.append(" ".join(_macro_args(rest)[:2]))
            if name in {"SH", "SS", "Sh", "Ss"}:
                out.append("")
            continue
        emit(line)
    return _TROFF_ESCAPE.sub(_troff_escape, "\n".join(out))


_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


def paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in _BLANK_LINES.split(text) if p.strip()]


def _pieces(paragraph: str) -> Iterator[str]:
    """The paragraph, or its line groups (hard cuts for a single huge line) when it exceeds DOC_MAX_BYTES."""
    if len(paragraph.encode()) <= DOC_MAX_BYTES:
        yield paragraph
        return
    chunk: list[str] = []
    size = 0
    for line in paragraph.split("\n"):
        while len(line.encode()) > DOC_MAX_BYTES:  # e.g. a minified blob: cut by characters
            yield line[: DOC_MAX_BYTES // 4]
            line = line[DOC_MAX_BYTES // 4 :]
        n = len(line.encode()) + 1
        if chunk and size + n > DOC_MAX_BYTES:
            yield "\n".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += n
    if chunk:
        yield "\n".join(chunk)


def group(paras: list[str]) -> Iterator[str]:
    """Paragraphs joined by blank lines into documents of DOC_MIN_BYTES..DOC_MAX_BYTES where the text allows."""
    current: list[str] = []
    size = 0
    for piece in itertools.chain.from_iterable(_pieces(p) for p in paras):
        n = len(piece.encode()) + 2
        if current and size + n > DOC_MAX_BYTES:
            yield "\n\n".join(current)
            current, size = [], 0
        current.append(piece)
        size += n
        if size >= DOC_MIN_BYTES:
            yield "\n\n".join(current)
            current, size = [], 0
    if current:
        yield "\n\n".join(current)


# --- sources ------------------------------------------------------------------------------------------------


def _file_docs(source: str, kind: str, rel: str, text: str) -> Iterator[Doc]:
    for n, body in enumerate(group(paragraphs(text))):
        yield {"id": f"{source}:{rel}#{n}", "text": body, "source": source, "kind": kind}


def linux_docs() -> Iterator[Doc]:
    root = Path("/usr/share/doc/linux-doc-6.1/Documentation")
    for path in package_files("linux-doc-6.1"):
        if path.is_relative_to(root) and path.name.endswith((".rst.gz", ".txt.gz")) and path.is_file():
            rel = path.relative_to(root).as_posix().removesuffix(".gz")
            yield from _file_docs("linux-doc", "rst", rel, read_text(path))


def python_docs() -> Iterator[Doc]:
    root = Path("/usr/share/doc/python3.11/html/_sources")
    files = sorted(p for p in root.rglob("*.txt") if p.is_file()) if root.is_dir() else []
    for path in files:
        yield from _file_docs("python-doc", "rst", path.relative_to(root).as_posix(), read_text(path))


def man_pages() -> Iterator[Doc]:
    for package in ("manpages", "manpages-dev"):
        for path in package_files(package):
            if "/man/man" not in path.as_posix() or not path.name.endswith(".gz") or path.is_symlink():
                continue
            if not path.is_file():
                continue
            source = read_text(path)
            if source.lstrip().startswith(".so "):  # an alias page: one line pointing at another
                continue
            yield from _file_docs("man", "man", path.name.removesuffix(".gz"), troff_to_text(source))


def debian_docs(name: str, kind: str, unique: bool = False) -> Iterator[Doc]:
    """`/usr/share/doc/<package>/<name>` of every installed package (regular files; symlinked dirs skipped).

    `unique`: a file whose bytes were already read is skipped (upstream changelogs are shipped once per binary
    package of a source package: four identical copies of gnutls' would make a third of the corpus duplicates).
    """
    root = Path("/usr/share/doc")
    seen: set[str] = set()
    for package_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        path = package_dir / name
        if not path.is_file() or path.is_symlink():
            continue
        text = read_text(path)
        digest = hashlib.sha1(text.encode()).hexdigest()
        if unique and digest in seen:
            continue
        seen.add(digest)
        yield from _file_docs("debian", kind, f"{package_dir.name}/{name}", text)


def fortunes() -> Iterator[Doc]:
    root = Path("/usr/share/games/fortunes")
    files = sorted(p for p in root.iterdir() if p.is_file() and "." not in p.name) if root.is_dir() else []
    for path in files:
        cookies = [c.strip("\n") for c in re.split(r"\n%\n", read_text(path)) if c.strip()]
        yield from _file_docs("fortunes", "fortune", path.name, "\n\n".join(cookies))


def sources() -> list[Iterator[Doc]]:
    return [
        linux_docs(),
        python_docs(),
        man_pages(),
        debian_docs("copyright", "copyright"),
        debian_docs("changelog.Debian.gz", "changelog"),
        fortunes(),
        debian_docs("changelog.gz", "changelog", unique=True),
    ]


def interleave(iterators: list[Iterator[Doc]]) -> Iterator[Doc]:
    """One document from each source in turn, until every source is exhausted."""
    live = list(iterators)
    while live:
        still = []
        for it in live:
            doc = next(it, None)
            if doc is not None:
                yield doc
                still.append(it)
        live = still


# --- writing ------------------------------------------------------------------------------------------------


def build(out_dir: Path, target_bytes: int, shard_docs: int) -> dict:
    import polars as pl

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for sub in ("jsonl", "parquet"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / sub).mkdir()

    docs: list[Doc] = []
    total = 0
    for doc in interleave(sources()):
        docs.append(doc)
        total += len(doc["text"].encode())
        if total >= target_bytes:
            break
    ids = [d["id"] for d in docs]
    if len(set(ids)) != len(ids):
        raise RuntimeError("corpus ids are not unique")

    frame = pl.DataFrame(docs, schema={"id": pl.String, "text": pl.String, "source": pl.String, "kind": pl.String})
    shards = []
    for index, start in enumerate(range(0, frame.height, shard_docs)):
        part = frame.slice(start, shard_docs)
        name = f"part-{index:05d}"
        part.write_ndjson(out_dir / "jsonl" / f"{name}.jsonl")
        part.write_parquet(out_dir / "parquet" / f"{name}.parquet", compression="zstd")
        shards.append({"name": name, "docs": part.height, "bytes": int(part["text"].str.len_bytes().sum())})

    per_source = frame.group_by("source", maintain_order=True).agg(
        pl.len().alias("docs"), pl.col("text").str.len_bytes().sum().alias("bytes")
    )
    manifest = {
        "version": 1,
        "docs": frame.height,
        "text_bytes": total,
        "mean_doc_bytes": round(total / max(frame.height, 1)),
        "per_source": {r["source"]: {"docs": r["docs"], "bytes": r["bytes"]} for r in per_source.to_dicts()},
        "shards": shards,
        "packages": package_versions(),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(out_dir: Path) -> dict | None:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    complete = all((out_dir / "jsonl" / f"{s['name']}.jsonl").is_file() for s in manifest.get("shards", []))
    return manifest if complete else None


def ensure(out_dir: Path, target_bytes: int = 110_000_000, shard_docs: int = 5000, install: bool = True) -> dict:
    """The manifest of the corpus in `out_dir`, building it (and installing its packages) when it is missing."""
    manifest = read_manifest(out_dir)
    if manifest is not None:
        return manifest
    if install:
        install_packages(missing_packages())
    return build(out_dir, target_bytes, shard_docs)


def default_dir() -> Path:
    """Absolute: the benchmarks run their tools from other working directories."""
    home = Path(os.environ.get("SLUICE_HOME", ".sluice"))
    return (home / "corpus" / "bench").resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=None, help="default: $SLUICE_HOME/corpus/bench")
    parser.add_argument("--target-mb", type=float, default=110, help="stop after this many MB (1e6) of text")
    parser.add_argument("--shard-docs", type=int, default=5000)
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install missing packages")
    parser.add_argument("--force", action="store_true", help="rebuild even when a complete corpus is there")
    args = parser.parse_args()
    out_dir = args.out_dir or default_dir()
    if args.force:
        (out_dir / MANIFEST).unlink(missing_ok=True)
    manifest = ensure(out_dir, int(args.target_mb * 1e6), args.shard_docs, install=not args.no_install)
    print(f"{out_dir}: {manifest['docs']:,} docs, {manifest['text_bytes'] / 1e6:.1f} MB of text")
    for source, row in manifest["per_source"].items():
        print(f"  {source:<12}{row['docs']:>8,} docs {row['bytes'] / 1e6:>8.1f} MB")
    if manifest["docs"] < MIN_DOCS or manifest["text_bytes"] < MIN_BYTES:
        print(f"warning: below the benchmark's minimum ({MIN_DOCS:,} docs, {MIN_BYTES / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
