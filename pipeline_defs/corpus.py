"""The demo corpus: real human text that every Python install already has, gathered on the user's machine.

Three sources, no download and nothing third-party committed:

* docstrings of modules, classes and functions in the standard library and the installed packages;
* comment blocks (consecutive full-line ``#`` comments merged into one document) from the same files;
* package long descriptions (README text) and summaries from the installed distributions' metadata.

Natural duplicates (one docstring in several places, vendored copies, repeated licence headers) are kept on
purpose: removing them is the pipeline's dedup stage's job. The corpus is written as three files of three
formats, so the pipeline also meets several readers and cross-file duplicates, and a ``_corpus.json`` manifest
is written last: a directory without it is an unfinished build.
"""

from __future__ import annotations

import ast
import contextlib
import gzip
import importlib.metadata
import io
import itertools
import json
import os
import re
import sys
import sysconfig
import time
import tokenize
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import polars as pl

DOCSTRINGS_FILE = "docstrings.jsonl"
COMMENTS_FILE = "comments.jsonl.gz"
READMES_FILE = "readmes.parquet"
MANIFEST_FILE = "_corpus.json"  # leading underscore: not an input file (shards skip "_" and "." names)
CORPUS_FILES = (DOCSTRINGS_FILE, COMMENTS_FILE, READMES_FILE)
MANIFEST_VERSION = 1

DocKind = Literal["docstring", "comment", "readme"]
Document = dict[str, str]  # {"id", "text", "source", "kind"}, in that key order
DOCUMENT_SCHEMA = {"id": pl.String, "text": pl.String, "source": pl.String, "kind": pl.String}

_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# PEP 263: an encoding declaration is only honoured on the first two lines.
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
# Tool directives are instructions to linters and type checkers, not prose.
_DIRECTIVE = re.compile(r"(?:noqa|nosec|type:|pragma:|pylint:|fmt:|isort:|mypy:|pyright:|ruff:|flake8:)", re.IGNORECASE)
_HAS_WORD = re.compile(r"\w")
_OLD_DESCRIPTION_INDENT = re.compile(r"^(?: {8}| {7}\|)")


@dataclass(frozen=True)
class CorpusInfo:
    """A finished demo corpus: where its files are and how many documents each holds."""

    out_dir: Path
    doc_counts: dict[str, int]  # file name -> documents in it
    build_seconds: float
    python_version: str

    @property
    def total_docs(self) -> int:
        return sum(self.doc_counts.values())

    @property
    def paths(self) -> dict[str, Path]:
        return {name: self.out_dir / name for name in self.doc_counts}

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_FILE


def build_demo_corpus(out_dir: str | Path, min_docs: int = 12_000, max_docs: int = 30_000) -> CorpusInfo:
    """Gather up to `max_docs` documents into `out_dir`; RuntimeError when fewer than `min_docs` exist."""
    if min_docs > max_docs:
        raise ValueError(f"min_docs ({min_docs}) is larger than max_docs ({max_docs})")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A rebuild over an old corpus must not leave the old manifest vouching for new, half-written files.
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)

    readmes = list(itertools.islice(_readme_documents(), max_docs))
    docstrings: list[Document] = []
    comments: list[Document] = []
    budget = max_docs - len(readmes)
    for doc in itertools.islice(_source_documents(), budget):
        (docstrings if doc["kind"] == "docstring" else comments).append(doc)

    total = len(readmes) + len(docstrings) + len(comments)
    if total < min_docs:
        raise RuntimeError(
            f"only {total} documents found in the standard library and installed packages of "
            f"{sys.executable}; the demo corpus needs at least {min_docs} documents"
        )

    _write_jsonl(out_dir / DOCSTRINGS_FILE, docstrings)
    _write_jsonl_gz(out_dir / COMMENTS_FILE, comments)
    _write_parquet(out_dir / READMES_FILE, readmes)
    info = CorpusInfo(
        out_dir=out_dir,
        doc_counts={
            DOCSTRINGS_FILE: len(docstrings),
            COMMENTS_FILE: len(comments),
            READMES_FILE: len(readmes),
        },
        build_seconds=round(time.perf_counter() - started, 3),
        python_version=sys.version.split()[0],
    )
    _write_manifest(info)
    return info


def ensure_demo_corpus(out_dir: str | Path, min_docs: int = 12_000, max_docs: int = 30_000) -> CorpusInfo:
    """Return the corpus in `out_dir`, building it first unless a complete one (its manifest) is there."""
    out_dir = Path(out_dir)
    info = read_corpus_info(out_dir)
    if info is not None:
        return info
    return build_demo_corpus(out_dir, min_docs=min_docs, max_docs=max_docs)


def read_corpus_info(out_dir: str | Path) -> CorpusInfo | None:
    """The manifest of a complete corpus in `out_dir`, or None when the build never finished."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        info = CorpusInfo(
            out_dir=out_dir,
            doc_counts={name: int(count) for name, count in manifest["doc_counts"].items()},
            build_seconds=float(manifest["build_seconds"]),
            python_version=str(manifest["python_version"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    complete = set(info.doc_counts) == set(CORPUS_FILES) and all(p.is_file() for p in info.paths.values())
    if manifest.get("version") != MANIFEST_VERSION or not complete:
        return None
    return info


# --- sources ------------------------------------------------------------------------------------------------


def _source_roots() -> list[tuple[str, Path]]:
    """(prefix, directory) of the standard library and of this interpreter's site-packages."""
    paths = sysconfig.get_paths()
    roots = [("stdlib", Path(paths["stdlib"]).resolve())]
    for key in ("purelib", "platlib"):
        site_packages = Path(paths[key]).resolve()
        if site_packages.is_dir() and all(site_packages != root for _, root in roots):
            roots.append(("pkg", site_packages))
    return roots


def _python_files(root: Path) -> list[list[Path]]:
    """The .py files under `root`, sorted, one list per top-level module or package."""
    units: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        # site-packages inside the stdlib directory belongs to another interpreter (or is walked as "pkg").
        dirnames[:] = sorted(d for d in dirnames if d not in {"__pycache__", "site-packages", "dist-packages"})
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = Path(dirpath, name)
                units.setdefault(path.relative_to(root).parts[0], []).append(path)
    return [units[top] for top in sorted(units)]


def _interleaved_files() -> Iterator[tuple[str, Path]]:
    """Every file as (source prefix, path), round-robin over the top-level packages.

    Files stay sorted within a package and packages in sorted order within a round; interleaving means the
    `max_docs` cap samples the whole install (stdlib, dagster, polars, ...) rather than its first letters.
    """
    units = [
        [(f"{prefix}:{path.relative_to(root).as_posix()}", path) for path in files]
        for prefix, root in _source_roots()
        for files in _python_files(root)
    ]
    for round_ in itertools.zip_longest(*units):
        yield from (entry for entry in round_ if entry is not None)


def _source_documents() -> Iterator[Document]:
    for location, path in _interleaved_files():
        yield from _file_documents(location, path)


def _file_documents(location: str, path: Path) -> list[Document]:
    """Docstrings and comment blocks of one file, in line order; none when it cannot be read or parsed."""
    try:
        data = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        source = data.decode(encoding)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like in old code
            tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeError, LookupError, RecursionError, MemoryError):
        return []

    found: list[tuple[int, DocKind, str]] = []
    string_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, _DOCSTRING_OWNERS):
            text = ast.get_docstring(node, clean=True)
            if text and text.strip() and _encodable(text):
                found.append((node.body[0].lineno, "docstring", text))
        elif isinstance(node, (ast.Constant, ast.JoinedStr)) and node.end_lineno != node.lineno:
            string_lines.update(range(node.lineno + 1, (node.end_lineno or node.lineno) + 1))
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found.extend((line, "comment", text) for line, text in _comment_blocks(lines, _comment_lines(lines, string_lines)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [_document(kind, f"{location}:{line}", text) for line, kind, text in found]


def _comment_lines(lines: list[str], string_lines: set[int]) -> set[int]:
    """Numbers of the lines that hold nothing but a comment.

    On Python 3.11 `tokenize` is pure Python and would double the build time, so a line scan finds the
    candidates. Only where a candidate lies in a multi-line string's span (a "#" line in a docstring, or a
    comment between implicitly concatenated strings) does the file go through `tokenize` to settle it.
    """
    candidates = {number for number, line in enumerate(lines, start=1) if line.lstrip(" \t\f").startswith("#")}
    if not candidates & string_lines:
        return candidates
    try:
        return {
            token.start[0]
            for token in tokenize.generate_tokens(io.StringIO("\n".join(lines)).readline)
            if token.type == tokenize.COMMENT and not token.line[: token.start[1]].strip()
        }
    except (tokenize.TokenError, SyntaxError):
        return candidates - string_lines


def _comment_blocks(lines: list[str], comment_lines: set[int]) -> Iterator[tuple[int, str]]:
    """(first line, text) of each run of consecutive full-line comments, tool directives left out."""
    block: list[str] = []
    start = previous = 0
    for number in sorted(comment_lines):
        if block and number != previous + 1:
            yield from _finish_block(start, block)
            block = []
        previous = number
        line = lines[number - 1]
        if number <= 2 and ((number == 1 and line.startswith("#!")) or _CODING_COOKIE.match(line)):
            continue
        content = line.lstrip(" \t\f").lstrip("#").rstrip()
        content = content[1:] if content.startswith(" ") else content
        if _DIRECTIVE.match(content.lstrip()):
            continue
        if not block:
            start = number
        # Separator rules ("# -----") and bare "#" lines become paragraph breaks.
        block.append(content if _HAS_WORD.search(content) else "")
    if block:
        yield from _finish_block(start, block)


def _finish_block(start: int, block: list[str]) -> Iterator[tuple[int, str]]:
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(block)).strip("\n")
    if text.strip():
        yield start, text


def _readme_documents() -> Iterator[Document]:
    """Summary and long description of each distribution installed in this interpreter's site-packages."""
    site_packages = [str(root) for prefix, root in _source_roots() if prefix == "pkg"]
    by_name: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=site_packages):
        try:
            name = dist.metadata["Name"]
        except Exception:  # a broken METADATA file must not stop the build
            continue
        if name:
            by_name.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist)
    for name in sorted(by_name):
        text = _readme_text(by_name[name])
        if text:
            yield _document("readme", f"readme:{name}", text)


def _readme_text(dist: importlib.metadata.Distribution) -> str:
    try:
        metadata = dist.metadata
        summary = metadata.get("Summary") or ""
        description = metadata.get_payload()
        if not description and "\n" in (folded := metadata.get("Description") or ""):
            # Metadata < 2.1 folds the description into a header, indented by 8 spaces or by "       |".
            head, *rest = folded.split("\n")
            description = "\n".join([head, *(_OLD_DESCRIPTION_INDENT.sub("", line) for line in rest)])
        else:
            description = description or metadata.get("Description") or ""
    except Exception:  # a broken METADATA file must not stop the build
        return ""
    parts = (str(part).strip() for part in (summary, description))
    text = "\n\n".join(part for part in parts if part and part.upper() != "UNKNOWN")
    return text if _encodable(text) else ""


def _document(kind: DocKind, source: str, text: str) -> Document:
    return {"id": f"{source}#{kind}", "text": text, "source": source, "kind": kind}


def _encodable(text: str) -> bool:
    """False for text with lone surrogates (a docstring may spell one as an escape): UTF-8 has no room."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- writers ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it only when the `with` block succeeds."""
    # Not mkstemp: its files are private (0600), and the corpus should get the usual umask permissions.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _jsonl_bytes(docs: Iterable[Document]) -> bytes:
    return "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs).encode("utf-8")


def _write_jsonl(target: Path, docs: list[Document]) -> None:
    with _atomic_path(target) as tmp:
        tmp.write_bytes(_jsonl_bytes(docs))


def _write_jsonl_gz(target: Path, docs: list[Document]) -> None:
    # mtime=0 and no file name in the header: the same documents always give the same bytes.
    with (
        _atomic_path(target) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
    ):
        gz.write(_jsonl_bytes(docs))


def _write_parquet(target: Path, docs: list[Document]) -> None:
    frame = pl.DataFrame(docs, schema=DOCUMENT_SCHEMA)
    with _atomic_path(target) as tmp:
        frame.write_parquet(tmp, compression="zstd")


def _write_manifest(info: CorpusInfo) -> None:
    manifest = {
        "version": MANIFEST_VERSION,
        "doc_counts": info.doc_counts,
        "total_docs": info.total_docs,
        "python_version": info.python_version,
        "python_executable": sys.executable,
        "build_seconds": info.build_seconds,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with _atomic_path(info.manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
