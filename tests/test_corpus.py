from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline_defs import corpus
from pipeline_defs.corpus import (
    COMMENTS_FILE,
    DOCSTRINGS_FILE,
    DOCUMENT_SCHEMA,
    MANIFEST_FILE,
    READMES_FILE,
    CorpusInfo,
    build_demo_corpus,
    ensure_demo_corpus,
)

SOURCE_PATTERN = r"^(?:(?:stdlib|pkg):[^:]+\.py:[1-9]\d*|readme:[a-z0-9][a-z0-9-]*)$"


def read_frames(info: CorpusInfo) -> dict[str, pl.DataFrame]:
    return {
        DOCSTRINGS_FILE: pl.read_ndjson(info.paths[DOCSTRINGS_FILE], schema=DOCUMENT_SCHEMA),
        COMMENTS_FILE: pl.read_ndjson(gzip.decompress(info.paths[COMMENTS_FILE].read_bytes()), schema=DOCUMENT_SCHEMA),
        READMES_FILE: pl.read_parquet(info.paths[READMES_FILE]),
    }


@pytest.fixture(scope="module")
def built(demo_corpus: CorpusInfo) -> CorpusInfo:
    return demo_corpus


@pytest.fixture(scope="module")
def frames(built: CorpusInfo) -> dict[str, pl.DataFrame]:
    return read_frames(built)


def test_build_writes_three_files_and_a_manifest(built: CorpusInfo) -> None:
    assert built.total_docs >= 10_000
    assert set(built.doc_counts) == {DOCSTRINGS_FILE, COMMENTS_FILE, READMES_FILE}
    assert all(count > 0 for count in built.doc_counts.values())
    manifest = json.loads(built.manifest_path.read_text(encoding="utf-8"))
    assert manifest["doc_counts"] == built.doc_counts
    assert manifest["total_docs"] == built.total_docs
    assert not [p.name for p in built.out_dir.iterdir() if p.name.endswith(".tmp")]


def test_each_file_has_the_document_schema(frames: dict[str, pl.DataFrame], built: CorpusInfo) -> None:
    kinds = {DOCSTRINGS_FILE: "docstring", COMMENTS_FILE: "comment", READMES_FILE: "readme"}
    for name, frame in frames.items():
        assert frame.schema == pl.Schema(DOCUMENT_SCHEMA), name
        assert frame.height == built.doc_counts[name]
        assert frame["kind"].unique().to_list() == [kinds[name]]
        assert frame["source"].str.contains(SOURCE_PATTERN).all(), name
        assert (frame["id"] == frame["source"] + "#" + frame["kind"]).all(), name


def test_documents_are_unique_by_id_and_never_empty(frames: dict[str, pl.DataFrame]) -> None:
    everything = pl.concat(frames.values())
    assert everything["id"].null_count() == 0
    assert everything["id"].n_unique() == everything.height
    assert everything["text"].null_count() == 0
    assert (everything["text"].str.strip_chars().str.len_chars() > 0).all()


def test_corpus_draws_on_stdlib_and_installed_packages(frames: dict[str, pl.DataFrame]) -> None:
    prefixes = pl.concat(frames.values())["source"].str.extract(r"^(\w+):").unique().to_list()
    assert sorted(prefixes) == ["pkg", "readme", "stdlib"]


def test_natural_duplicates_and_links_are_kept(frames: dict[str, pl.DataFrame]) -> None:
    texts = pl.concat(frames.values())["text"]
    assert texts.len() - texts.n_unique() > 0
    assert texts.str.contains(r"https?://").sum() > 0


def test_same_machine_gives_identical_bytes(built: CorpusInfo, tmp_path: Path) -> None:
    again = build_demo_corpus(tmp_path)
    assert again.doc_counts == built.doc_counts
    for name in (DOCSTRINGS_FILE, COMMENTS_FILE):
        assert again.paths[name].read_bytes() == built.paths[name].read_bytes(), name


def test_ensure_keeps_a_complete_corpus(built: CorpusInfo) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in built.out_dir.iterdir()}
    info = ensure_demo_corpus(built.out_dir)
    assert info == built
    assert {p.name: p.stat().st_mtime_ns for p in built.out_dir.iterdir()} == before


def test_ensure_rebuilds_a_half_built_corpus(built: CorpusInfo, tmp_path: Path) -> None:
    for name in (DOCSTRINGS_FILE, COMMENTS_FILE):
        shutil.copy(built.paths[name], tmp_path / name)
    (tmp_path / READMES_FILE).write_bytes(b"interrupted")

    info = ensure_demo_corpus(tmp_path, min_docs=100, max_docs=500)

    assert (tmp_path / MANIFEST_FILE).is_file()
    assert info.total_docs == 500
    assert sum(frame.height for frame in read_frames(info).values()) == 500


def test_too_few_documents_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_install = tmp_path / "lib"
    empty_install.mkdir()
    monkeypatch.setattr(corpus, "_source_roots", lambda: [("stdlib", empty_install)])
    with pytest.raises(RuntimeError, match="at least 10 documents"):
        build_demo_corpus(tmp_path / "out", min_docs=10, max_docs=20)
    assert not (tmp_path / "out" / MANIFEST_FILE).exists()


def test_comment_blocks_follow_python_tokens(tmp_path: Path) -> None:
    source = (
        "#!/usr/bin/env python\n"
        "# -*- coding: utf-8 -*-\n"
        "# Licence header, line one,\n"
        "# line two.\n"
        '"""Module docstring.\n'
        "\n"
        "    # not a comment: inside the docstring\n"
        '"""\n'
        "\n"
        "# -------------------\n"
        "# A section heading\n"
        "# -------------------\n"
        "import os  # noqa: F401\n"
        "# noqa\n"
        "\n"
        "MESSAGE = (\n"
        '    "first part "\n'
        "    # a real comment between string parts\n"
        '    "second part"\n'
        ")\n"
        "\n"
        "\n"
        "def f():\n"
        "    '''Say hi.'''\n"
    )
    path = tmp_path / "sample.py"
    path.write_text(source, encoding="utf-8")

    docs = corpus._file_documents("pkg:sample.py", path)

    assert [(d["source"], d["kind"], d["text"]) for d in docs] == [
        ("pkg:sample.py:3", "comment", "Licence header, line one,\nline two."),
        ("pkg:sample.py:5", "docstring", "Module docstring.\n\n# not a comment: inside the docstring"),
        ("pkg:sample.py:10", "comment", "A section heading"),
        ("pkg:sample.py:18", "comment", "a real comment between string parts"),
        ("pkg:sample.py:24", "docstring", "Say hi."),
    ]


def test_unreadable_files_are_skipped(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    '''never parsed'''\n", encoding="utf-8")
    undecodable = tmp_path / "latin.py"
    undecodable.write_bytes(b"# caf\xe9\nx = 1\n")
    assert corpus._file_documents("pkg:broken.py", broken) == []
    assert corpus._file_documents("pkg:latin.py", undecodable) == []


def test_min_docs_above_max_docs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_docs"):
        build_demo_corpus(tmp_path, min_docs=10, max_docs=5)


def test_readmes_are_one_per_distribution_in_name_order(frames: dict[str, pl.DataFrame]) -> None:
    names = frames[READMES_FILE]["source"].str.strip_prefix("readme:").to_list()
    assert names == sorted(set(names))
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) for name in names)
