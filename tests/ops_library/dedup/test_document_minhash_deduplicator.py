import hashlib
import os
import random
import re
import struct
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library import native_kernels
from ops_library.base import OpUnavailableError
from ops_library.clusters import BandIndex, first_rows, smallest_in_component
from ops_library.columns import CLUSTER_ID, DROP_REASON, DUPLICATE_OF, HASH, ROW_ID
from ops_library.dedup.document_minhash_deduplicator import DocumentMinhashDeduplicator
from ops_library.minhash import (
    band_keys,
    fused_kernel_available,
    minhash_signatures,
    numba_available,
    optimal_param,
    signatures_of_bytes,
)
from ops_library.shingles import (
    ShingleHashes,
    byte_split,
    exact_shingles,
    fast_shingle_hashes,
    marker_absent_from,
    sha1_shingle_hashes,
    shingle_text_parts,
    shingle_tokens,
    tokenize,
    utf8_buffer,
)
from tests.conftest import ROOT

NOT_BUILT = "Sluice's C kernels are not built (no C compiler at install)"

WORDS = (
    "river stone cloud maple silver orbit candle harbor velvet meadow lantern copper thistle ember glacier "
    "falcon willow prism quartz saddle tundra beacon cobalt dune fern grove haze iris jade kelp lotus moss "
    "nectar onyx pebble quill reed sage thorn umber vale wren yarrow zephyr amber birch cedar delta"
).split()


def doc(seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def edit(text: str, changes: int, seed: int) -> str:
    """`text` with `changes` words replaced by a word not in WORDS."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in rng.sample(range(len(words)), changes):
        words[i] = f"x{rng.randrange(10**6)}"
    return " ".join(words)


def frame(*texts: str, file: str = "f.jsonl") -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"{file}:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def dj_shingles(text: str, tokenization: str = "space", window: int = 5) -> set[bytes]:
    """Data-Juicer's `compute_hash` shingling, written out."""
    text = text.lower()
    if tokenization == "character":
        return {text[i : i + window].encode() for i in range(len(text) - window + 1)}
    tokens = [w for w in re.split(" ", text) if w]
    return {" ".join(tokens[i : i + window]).encode() for i in range(len(tokens) - window + 1)}


def dj_signature(text: str, num_perm: int, tokenization: str = "space", window: int = 5) -> list[int]:
    """Data-Juicer's signature from its formula, with Python integers: sha1 first 4 bytes little-endian, then
    ((a*h + b) mod 2**64) mod (2**61 - 1) & (2**32 - 1), (a, b) from RandomState(42)."""
    gen = np.random.RandomState(seed=42)
    prime = (1 << 61) - 1
    perms = [
        (int(gen.randint(1, prime, dtype=np.uint64)), int(gen.randint(0, prime, dtype=np.uint64)))
        for _ in range(num_perm)
    ]
    base = [struct.unpack("<I", hashlib.sha1(s).digest()[:4])[0] for s in dj_shingles(text, tokenization, window)]
    if not base:
        return [(1 << 32) - 1] * num_perm
    return [min((((a * h + b) % (1 << 64)) % prime) & 0xFFFFFFFF for h in base) for a, b in perms]


# --- parameters ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "num_perm", "expected"), [(0.7, 256, (25, 10)), (0.8, 128, (9, 13)), (0.5, 64, (14, 4))]
)
def test_bands_and_rows_are_data_juicers_optimal_param(threshold: float, num_perm: int, expected: tuple) -> None:
    # Expected values: Data-Juicer 1.6.1's own `optimal_param`, run once on these inputs.
    assert optimal_param(threshold, num_perm) == expected
    op = DocumentMinhashDeduplicator({"jaccard_threshold": threshold, "num_permutations": num_perm})
    assert (op.bands, op.rows_per_band) == expected
    assert op.hashes(frame("a b c d e f"))[HASH].dtype == pl.Array(pl.UInt64, expected[0])


def test_explicit_bands_and_rows_are_used_and_validated() -> None:
    op = DocumentMinhashDeduplicator({"num_bands": 4, "num_rows_per_band": 3})
    assert (op.bands, op.rows_per_band) == (4, 3)
    with pytest.raises(ValueError, match="exceeds num_permutations"):
        DocumentMinhashDeduplicator({"num_permutations": 16, "num_bands": 5, "num_rows_per_band": 4})
    with pytest.raises(ValueError, match="jaccard_threshold"):
        DocumentMinhashDeduplicator({"jaccard_threshold": 1.5})


def test_sentencepiece_is_refused_with_a_reason() -> None:
    params = DocumentMinhashDeduplicator.Params(tokenization="sentencepiece")
    assert "sentencepiece" in (DocumentMinhashDeduplicator.unavailable(params) or "")
    assert DocumentMinhashDeduplicator.unavailable(DocumentMinhashDeduplicator.Params()) is None
    with pytest.raises(OpUnavailableError, match="sentencepiece"):  # the op cannot even be built
        DocumentMinhashDeduplicator(params)


# --- signatures ------------------------------------------------------------------------------------------------

HAND_PICKED = [
    "The quick brown fox jumps over the lazy dog again and again",
    "ΟΔΟΣ  κόσμε,  καλημέρα σας φίλοι μου εδώ",  # double spaces: empty tokens are dropped
    "line one\nline two\tthree four five six",  # only spaces split: newlines and tabs stay in tokens
    "too short",
    "",
]


@pytest.mark.parametrize("tokenization", ["space", "character"])
def test_datajuicer_mode_signatures_equal_the_formula(tokenization: str) -> None:
    op = DocumentMinhashDeduplicator({"hash_mode": "datajuicer", "num_permutations": 32, "tokenization": tokenization})
    sig = op.signatures(pl.Series(HAND_PICKED))
    expected = [dj_signature(t, 32, tokenization) for t in HAND_PICKED]
    assert sig.tolist() == expected


def test_shingles_are_data_juicers_for_each_tokenization() -> None:
    texts = ["Hello, world! This is it.", "a,,b", "中文字符测试", "x  y z"]
    for tokenization, window in [("space", 2), ("punctuation", 3), ("character", 3)]:
        tokens, _ = shingle_tokens(pl.Series(texts), tokenization=tokenization, lowercase=True, ignore_pattern=None)
        got = [set(s) for s in exact_shingles(tokens, window, tokenization)]
        if tokenization == "punctuation":
            # \p{P} splits keep empty pieces: "hello", " world", " this is it", "" -> joined by spaces
            assert got[0] == {b"hello  world  this is it", b" world  this is it "}
            assert got[1] == {b"a  b"}
        else:
            assert got == [dj_shingles(t, tokenization, window) for t in texts]


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
@pytest.mark.parametrize("tokenization", ["space", "punctuation", "character"])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_the_sha1_kernel_is_hashlibs_sha1_of_every_shingle(tokenization: str, window: int) -> None:
    # shingles of one, two and three 64-byte blocks (55 and 56 bytes: the padding's edge), non-ASCII bytes,
    # empty punctuation pieces, repeated shingles, texts with no shingle at all
    rng = random.Random(window)
    words = ["a", "bb", "dé", "ü", "x" * 54, "y" * 55, "z" * 130, "日本", ",", "!", "!!", "a b"]
    texts = ["", " ", "a a a a a a a a", None]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 30))) for _ in range(200)]
    tokens, _ = shingle_tokens(pl.Series(texts), tokenization=tokenization, lowercase=True, ignore_pattern=None)
    sh = sha1_shingle_hashes(tokens, window, tokenization)
    assert sh is not None
    expected = [
        [struct.unpack("<I", hashlib.sha1(s).digest()[:4])[0] for s in shingles]
        for shingles in exact_shingles(tokens, window, tokenization)
    ]
    assert [sh.hashes[sh.offsets[i] : sh.offsets[i + 1]].tolist() for i in range(sh.num_docs)] == expected
    assert sum(map(len, expected)) > 100


def test_datajuicer_mode_signatures_without_the_sha1_kernel_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from ops_library import shingles

    texts = pl.Series([doc(i, 8 + i) for i in range(30)] + HAND_PICKED + [None])
    op = DocumentMinhashDeduplicator({"hash_mode": "datajuicer", "num_permutations": 64, "window_size": 3})
    compiled = op.signatures(texts)
    monkeypatch.setattr(shingles, "_numba_sha1", lambda: None)  # hashlib over each text's distinct shingles
    assert (op.signatures(texts) == compiled).all()


def test_ignore_pattern_and_lowercase_change_the_signature() -> None:
    texts = pl.Series(["Alpha beta gamma delta epsilon [1]", "alpha beta gamma delta epsilon [2]"])
    plain = DocumentMinhashDeduplicator({"window_size": 3}).signatures(texts)
    assert not (plain[0] == plain[1]).all()
    ignored = DocumentMinhashDeduplicator({"window_size": 3, "ignore_pattern": r"\[\d\]"}).signatures(texts)
    assert (ignored[0] == ignored[1]).all()
    cased = DocumentMinhashDeduplicator({"window_size": 3, "lowercase": False, "ignore_pattern": r"\[\d\]"})
    sig = cased.signatures(texts)
    assert not (sig[0] == sig[1]).all()


@pytest.mark.parametrize("mode", ["fast", "oph", "datajuicer"])
def test_backends_agree_bit_for_bit(mode: str) -> None:
    texts = pl.Series([doc(i, 20 + i) for i in range(40)] + ["", "one two"])
    op = DocumentMinhashDeduplicator({"hash_mode": mode, "num_permutations": 64})
    numpy_sig = op.signatures(texts, backend="numpy")
    assert (op.signatures(texts, backend="torch") == numpy_sig).all()
    if numba_available():
        assert (op.signatures(texts, backend="numba") == numpy_sig).all()
    assert (numpy_sig[-2:] == (1 << 32) - 1).all()  # no shingle: all MAX_HASH, as in Data-Juicer


@pytest.mark.parametrize("tokenization", ["space", "punctuation"])
def test_numba_and_numpy_tokens_and_shingle_hashes_agree(tokenization: str) -> None:
    texts = pl.Series([doc(i, 5 + i) for i in range(30)] + ["", "  a  b ", ",x,,y,", "...", " ", "ΟΔΟΣ, κόσμε!"])
    tokens, norm = shingle_tokens(texts, tokenization=tokenization, lowercase=True, ignore_pattern=None)
    data, offsets = utf8_buffer(norm)
    marker = marker_absent_from(texts) if tokenization == "punctuation" else None  # what shingle_tokens cut at
    slow_tokens = tokenize(data, offsets, tokenization, marker, backend="numpy")
    for field in ("starts", "ends", "doc"):
        assert (getattr(tokens, field) == getattr(slow_tokens, field)).all()
    fast = fast_shingle_hashes(tokens, 3)
    slow = fast_shingle_hashes(slow_tokens, 3, backend="numpy")
    assert (fast.hashes == slow.hashes).all() and (fast.offsets == slow.offsets).all()


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
@pytest.mark.skipif(not native_kernels.available(), reason=NOT_BUILT)
@pytest.mark.parametrize("mode", ["fast", "oph"])
@pytest.mark.parametrize("tokenization", ["space", "punctuation"])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_one_pass_kernel_equals_tokens_then_shingles_then_signatures(mode: str, tokenization: str, window: int) -> None:
    edge = ["", "  a  b ", ",x,,y,", "...", " ", "ΟΔΟΣ, κόσμε!", "a b c d e", "a b c d", "tab\there  x y z w"]
    # upper case in ASCII-only texts (the kernel lower-cases them) and in texts polars lower-cases (non-ASCII),
    # and the bytes either side of A-Z
    edge += ["The Quick BROWN fox Jumps over THE lazy Dog", "ÄBC Def GHI jkl MNO pqr STU", "@A Z[ `a z{ @[ `{ AZ az"]
    texts = pl.Series([doc(i, 3 + 2 * i) for i in range(40)] + edge + [None], dtype=pl.String)
    params = {"tokenization": tokenization, "window_size": window, "num_permutations": 64, "hash_mode": mode}
    op = DocumentMinhashDeduplicator(params)
    one_pass = op.signatures(texts)
    assert (one_pass == op.signatures(texts, backend="numpy")).all()
    assert (one_pass == op.signatures(texts, backend="numba")).all()
    # and what the op records: the kernel it took and the shingles it hashed
    df = pl.DataFrame({"text": texts, ROW_ID: [str(i) for i in range(texts.len())]})
    keys = op.hashes(df, threads=1)[HASH].to_numpy()
    assert op.last_run_info["backend"] == "native"
    assert op.last_run_info["shingles"] == len(op.shingle_hashes(texts).hashes)
    # the kernel folds the bands itself: the keys of the two-stage signatures
    assert (keys == band_keys(op.signatures(texts, backend="numpy"), op.bands, op.rows_per_band)).all()
    # on two threads: the texts in two normalized parts, each cut into chunks of about equal bytes
    assert (op.hashes(df, threads=2)[HASH].to_numpy() == keys).all()
    assert op.last_run_info["kernel_threads"] == min(2, os.cpu_count() or 1)


def test_without_the_c_kernels_the_op_takes_the_two_stage_path_with_the_same_keys(monkeypatch) -> None:
    texts = pl.Series([doc(i, 4 + i) for i in range(60)] + ["", "a b"])
    df = pl.DataFrame({"text": texts, ROW_ID: [str(i) for i in range(texts.len())]})
    for mode in ("fast", "oph"):
        op = DocumentMinhashDeduplicator({"hash_mode": mode, "num_permutations": 64})
        expected = op.run(df)
        with monkeypatch.context() as patch:
            patch.setattr(native_kernels, "library", lambda: None)
            assert not fused_kernel_available()
            got = op.run(df)
            assert op.last_run_info["backend"] == ("numba" if numba_available() else "numpy")
            with pytest.raises(RuntimeError, match="the C kernels are not built"):
                first_rows(np.zeros((2, 3), dtype=np.uint64), kernel=True)
        assert_frame_equal(got.kept, expected.kept)
        assert_frame_equal(got.dropped, expected.dropped)


@pytest.mark.skipif(not native_kernels.available(), reason=NOT_BUILT)
def test_band_keys_from_the_bytes_refuse_a_wrong_shape() -> None:
    data, offsets = np.frombuffer(b"a b c d e f", dtype=np.uint8), np.array([0, 11], dtype=np.int64)
    split = byte_split("space", None)
    keys = np.empty((1, 26), dtype=np.uint64)
    with pytest.raises(ValueError, match="26 bands x 10 rows need 260 permutations, have 256"):
        signatures_of_bytes(data, offsets, split, 5, 256, "oph", out=keys, band_rows=10)
    with pytest.raises(ValueError, match=r"out must be a uint64 array of shape \(1, bands\)"):
        signatures_of_bytes(data, offsets, split, 5, 256, "oph", out=keys[:, :25].astype(np.uint32), band_rows=10)
    with pytest.raises(ValueError, match="no one-pass kernel for hash mode 'datajuicer'"):
        signatures_of_bytes(data, offsets, split, 5, 256, "datajuicer", out=keys[:, :25], band_rows=10)
    signatures_of_bytes(data, offsets, split, 5, 256, "oph", out=keys[:, :25].copy(), band_rows=10)


def test_fast_permutations_are_rensa_cores() -> None:
    # rensa-core's golden vector (`digest_prehashed_matches_golden_vector`: 16 permutations, seed 42).
    sh = ShingleHashes(np.array([1, 2, 3, 10, 20, 30, 999], dtype=np.uint64), np.array([0, 7]))
    assert minhash_signatures(sh, "fast", 16, backend="numpy")[0].tolist() == [
        571772611, 936133835, 752080753, 481772021, 45178047, 175317472, 470513164, 928706636,
        766355169, 186861125, 104841669, 219275888, 723396917, 903182598, 455784955, 153681280,
    ]  # fmt: skip


def oph_signature(hashes: list[int], num_bins: int) -> list[int]:
    """One permutation hashing with optimal densification, written out with Python integers."""
    mask = (1 << 64) - 1

    def fmix(x: int) -> int:
        x ^= x >> 33
        x = (x * 0xFF51AFD7ED558CCD) & mask
        x ^= x >> 33
        x = (x * 0xC4CEB9FE1A85EC53) & mask
        return x ^ (x >> 33)

    bins: dict[int, int] = {}
    for x in hashes:
        j = ((x >> 32) * num_bins) >> 32
        bins[j] = min(bins.get(j, 1 << 32), x & 0xFFFFFFFF)
    if not bins:
        return [(1 << 32) - 1] * num_bins
    out = []
    for j in range(num_bins):
        attempt = 1
        source = j
        while source not in bins:
            c = fmix((j * 0x9E3779B97F4A7C15 + attempt * 0xBF58476D1CE4E5B9) & mask)
            source = ((c >> 32) * num_bins) >> 32
            attempt += 1
        out.append(bins[source])
    return out


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_oph_signatures_are_one_permutations_bins_densified(backend: str) -> None:
    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    rng = random.Random(3)
    docs = [[rng.getrandbits(64) for _ in range(n)] for n in (0, 1, 2, 5, 16, 40, 300)]
    offsets = np.cumsum([0] + [len(d) for d in docs])
    sh = ShingleHashes(np.array([x for d in docs for x in d], dtype=np.uint64), offsets)
    got = minhash_signatures(sh, "oph", 16, backend=backend)
    assert got.tolist() == [oph_signature(d, 16) for d in docs]
    # one shingle fills every bin with its value; many fill every bin themselves (no copy needed)
    assert set(got[1].tolist()) == {docs[1][0] & 0xFFFFFFFF}
    assert len(set(got[6].tolist())) == 16


def test_oph_mode_hashes_once_per_shingle_and_keeps_the_same_groups() -> None:
    texts = pl.Series([doc(i, 60) for i in range(5)])
    fast = DocumentMinhashDeduplicator({"hash_mode": "fast"}).signatures(texts)
    oph = DocumentMinhashDeduplicator({"hash_mode": "oph"}).signatures(texts)
    assert fast.shape == oph.shape and not (fast == oph).all()
    # a text's bins hold its shingle hashes' low 32 bits: each value is one of its own shingles' values
    own = DocumentMinhashDeduplicator({"hash_mode": "oph"}).shingle_hashes(texts[:1])
    assert set(oph[0].tolist()) <= set((own.hashes & np.uint64(0xFFFFFFFF)).tolist())


@pytest.mark.parametrize("mode", ["fast", "oph", "datajuicer"])
def test_jaccard_estimates_are_within_the_expected_error(mode: str) -> None:
    num_perm = 256
    op = DocumentMinhashDeduplicator({"hash_mode": mode, "num_permutations": num_perm})
    errors = []
    for seed in range(30):
        a = doc(1000 + seed, 120)
        b = edit(a, changes=seed % 15 + 1, seed=seed)
        exact = len(dj_shingles(a) & dj_shingles(b)) / len(dj_shingles(a) | dj_shingles(b))
        sig = op.signatures(pl.Series([a, b]))
        estimate = float((sig[0] == sig[1]).mean())
        sd = np.sqrt(exact * (1 - exact) / num_perm)
        errors.append((abs(estimate - exact), sd))
        assert abs(estimate - exact) <= 4 * sd + 1e-9, (seed, exact, estimate)
    # on average the error is about one standard deviation (well below two)
    assert np.mean([e for e, _ in errors]) < 2 * np.mean([s for _, s in errors])


# --- dedup -----------------------------------------------------------------------------------------------------


def groups_frames() -> tuple[list[pl.DataFrame], dict[str, str]]:
    """Three partitions with near-duplicate groups spread over them; expected DUPLICATE_OF per removed row."""
    a, b, c = doc(1), doc(2), doc(3)
    p1 = frame(a, doc(10), b, file="p1")
    p2 = frame(edit(b, 1, 5), edit(a, 2, 6), doc(11), file="p2")
    p3 = frame(c, edit(a, 1, 7), edit(c, 1, 8), b, file="p3")
    expected = {"p2:1": "p1:3", "p2:2": "p1:1", "p3:2": "p1:1", "p3:3": "p3:1", "p3:4": "p1:3"}
    return [p1, p2, p3], expected


@pytest.mark.parametrize("mode", ["fast", "oph", "datajuicer"])
def test_keeps_the_first_of_each_group_across_partitions(mode: str) -> None:
    op = DocumentMinhashDeduplicator({"hash_mode": mode})
    frames, expected = groups_frames()
    index = op.index([op.hashes(f) for f in frames])
    assert dict(index.select(ROW_ID, DUPLICATE_OF).rows()) == expected
    # the cluster id is the input-order number of the kept row
    assert dict(index.select(ROW_ID, CLUSTER_ID).rows()) == {
        "p2:1": 2, "p2:2": 0, "p3:2": 0, "p3:3": 6, "p3:4": 2,
    }  # fmt: skip
    out = op.apply(frames[2], index)
    assert out.kept[ROW_ID].to_list() == ["p3:1"]
    assert out.dropped is not None
    assert out.dropped.select(ROW_ID, DUPLICATE_OF, CLUSTER_ID, DROP_REASON).row(0) == (
        "p3:2",
        "p1:1",
        0,
        "near-duplicate of p1:1 (minhash cluster 0)",
    )
    assert op.apply(frames[0], index).dropped_count == 0


def test_apply_works_with_an_index_without_cluster_ids() -> None:
    op = DocumentMinhashDeduplicator()
    frames, _ = groups_frames()
    index = op.index([op.hashes(f) for f in frames]).select(ROW_ID, DUPLICATE_OF)
    out = op.apply(frames[1], index)
    assert out.dropped is not None
    assert out.dropped[DROP_REASON].to_list() == ["near-duplicate of p1:3", "near-duplicate of p1:1"]
    assert CLUSTER_ID not in out.dropped.columns


def test_kept_row_does_not_depend_on_the_order_edges_arrive() -> None:
    # p1:2 links to p1:1 only through p1:3 (a chain): the whole chain is one cluster kept at p1:1.
    base = doc(40, 80)
    step1 = edit(base, 6, 1)
    step2 = edit(step1, 6, 2)
    op = DocumentMinhashDeduplicator({"jaccard_threshold": 0.5})
    index = op.index([op.hashes(frame(step2, base, step1, file="p1"))])
    assert dict(index.select(ROW_ID, DUPLICATE_OF).rows()) == {"p1:2": "p1:1", "p1:3": "p1:1"}


def dj_clusters(band_keys: list[list[int]]) -> dict[int, int]:
    """Data-Juicer's clustering, written out: a dict per band of key -> rows, union with the smallest row,
    roots always the smaller (`UnionFind`), kept = rows whose root is themselves. Returns removed -> root."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        if parent[x] != x:
            parent[x] = find(parent[x])
        return parent[x]

    for band in range(len(band_keys[0])):
        table: dict[int, set[int]] = {}
        for row, keys in enumerate(band_keys):
            table.setdefault(keys[band], set()).add(row)
        for rows in table.values():
            first = min(rows)
            for x in rows:
                px, py = find(x), find(first)
                parent[px] = parent[py] = min(px, py)
    return {x: find(x) for x in range(len(band_keys)) if find(x) != x}


def test_index_equals_data_juicers_clustering_and_incremental_equals_one_shot() -> None:
    rng = random.Random(0)
    bases = [doc(200 + i, 40) for i in range(12)]
    texts = [edit(rng.choice(bases), rng.randrange(0, 8), seed) for seed in range(160)]
    op = DocumentMinhashDeduplicator({"jaccard_threshold": 0.5, "num_permutations": 64})
    hashes = op.hashes(frame(*texts, file="all"))
    expected = dj_clusters(hashes[HASH].to_list())
    index = op.index([hashes])
    ids = hashes[ROW_ID].to_list()
    assert dict(index.select(ROW_ID, DUPLICATE_OF).rows()) == {ids[r]: ids[k] for r, k in expected.items()}
    assert 20 < len(expected) < 150
    for trial in range(5):
        cuts = sorted(rng.sample(range(1, 160), trial + 1))
        parts = [hashes.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, 160], strict=True)]
        state = op.index_state(parts[:1])
        for part in parts[1:]:
            state = op.index_incremental(state, [part])
        assert_frame_equal(state.index_frame(), index, check_row_order=False)


def test_incremental_index_equals_one_shot() -> None:
    op = DocumentMinhashDeduplicator()
    frames, _ = groups_frames()
    hashes = [op.hashes(f) for f in frames]
    one_shot = op.index(hashes)
    first = op.index_state(hashes[:2])
    later = op.index_incremental(first, hashes[2:])
    assert_frame_equal(later.index_frame(), one_shot, check_row_order=False)
    assert later.changed_since(first).to_list() == []


def test_incremental_reports_old_rows_whose_fate_changes(tmp_path) -> None:
    # Two old texts too far apart to be duplicates, then a new text close to both: the clusters merge and the
    # old second text is now a duplicate of the first, as a one-shot run over all three says.
    left, right = doc(50, 40), doc(51, 40)
    bridge = left + " " + right
    op = DocumentMinhashDeduplicator({"jaccard_threshold": 0.4, "num_bands": 64, "num_rows_per_band": 2})
    old = [op.hashes(frame(left + " " + doc(52, 40), right + " " + doc(53, 40), file="old"))]
    new = [op.hashes(frame(bridge, file="new"))]
    state = op.index_state(old)
    assert state.index_frame().height == 0
    state.save(tmp_path / "idx")
    grown = op.index_incremental(BandIndex.load(tmp_path / "idx"), new)
    assert_frame_equal(grown.index_frame(), op.index(old + new), check_row_order=False)
    assert grown.changed_since(state).to_list() == ["old:2"]
    assert dict(grown.index_frame().select(ROW_ID, DUPLICATE_OF).rows()) == {"old:2": "old:1", "new:1": "old:1"}


def _band_frame(keys: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW_ID: [f"r{i}" for i in range(len(keys))],
            HASH: pl.Series(HASH, keys, dtype=pl.Array(pl.UInt64, keys.shape[1])),
        }
    )


@pytest.mark.parametrize("vocab", [7, 300, 2**62])
def test_first_rows_kernel_equals_the_sorted_buckets(vocab: int) -> None:
    # Few distinct keys (long probe chains, every row linked), some, and all distinct: the hashed pass per band
    # gives each row the first row of its key, as the sort does.
    keys = np.random.default_rng(vocab % 1000).integers(0, vocab, size=(3000, 9)).astype(np.uint64)
    expected = first_rows(keys, kernel=False)
    for row in (0, 1500, 2999):
        for band in (0, 8):
            assert expected[row, band] == int(np.flatnonzero(keys[:, band] == keys[row, band])[0])
    if native_kernels.available():
        assert (first_rows(keys, kernel=True) == expected).all()
        assert (first_rows(keys, kernel=True, threads=1) == expected).all()
    assert (first_rows(keys) == expected).all()  # the kernel where it is built, else the sort


@pytest.mark.parametrize(("n", "edges"), [(1, 0), (50, 20), (400, 400), (3000, 6000)])
def test_components_are_those_of_a_one_edge_at_a_time_union_find(n: int, edges: int) -> None:
    rng = np.random.default_rng(n)
    u, v = rng.integers(0, n, edges), rng.integers(0, n, edges)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    assert smallest_in_component(n, u, v).tolist() == [find(x) for x in range(n)]
    path = rng.permutation(n)  # one long chain, in random order
    assert (smallest_in_component(n, path[:-1], path[1:]) == 0).all()


@pytest.mark.skipif(not native_kernels.available(), reason=NOT_BUILT)
def test_the_one_pass_route_never_imports_numba() -> None:
    # numba's import and kernel cache took 0.5-0.8 s of every process that ran the op; the C kernels load in a
    # millisecond. A run in `fast` and `oph` modes, index included, leaves numba unimported.
    code = (
        "import sys, polars as pl\n"
        "from ops_library.columns import ROW_ID\n"
        "from ops_library.dedup.document_minhash_deduplicator import DocumentMinhashDeduplicator\n"
        "texts = [' '.join(f'w{i % 40}x{j}' for j in range(30)) for i in range(400)]\n"
        "df = pl.DataFrame({'text': texts, ROW_ID: [str(i) for i in range(400)]})\n"
        "for mode in ('fast', 'oph'):\n"
        "    op = DocumentMinhashDeduplicator({'hash_mode': mode})\n"
        "    op.load_kernels()\n"
        "    print(op.run(df).kept.height, op.last_run_info['backend'])\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["40", "native", "40", "native", "False"]


def test_index_built_at_once_equals_one_grown_row_by_row_and_survives_a_save(tmp_path) -> None:
    # At once: one linked pass and one union; grown: the sorted buckets, one band at a time. Same roots, same
    # buckets (sorted only when asked), and a saved index built at once grows like the other.
    keys = np.random.default_rng(5).integers(0, 40, size=(400, 6)).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    frame_ = _band_frame(keys)
    at_once = BandIndex(6).add([frame_])
    grown = BandIndex(6).add([frame_.head(1)]).add([frame_.slice(1, 199)]).add([frame_.slice(200)])
    assert at_once.band_keys is not None  # not sorted yet
    assert (at_once.roots == grown.roots).all() and at_once.roots.min() == 0
    assert_frame_equal(at_once.index_frame(), grown.index_frame())
    for a, b in zip(at_once.buckets()[0] + at_once.buckets()[1], grown.buckets()[0] + grown.buckets()[1], strict=True):
        assert (a == b).all()
    assert at_once.nbytes == grown.nbytes
    half = BandIndex(6).add([frame_.head(200)])
    half.save(tmp_path / "idx")
    resumed = BandIndex.load(tmp_path / "idx").add([frame_.slice(200)])
    assert (resumed.roots == at_once.roots).all()


def test_index_stats_histogram_and_bytes() -> None:
    op = DocumentMinhashDeduplicator()
    frames, _ = groups_frames()
    state = op.index_state([op.hashes(f) for f in frames])
    stats = op.index_stats(state.index_frame(), total_rows=state.num_rows, index_bytes=state.nbytes)
    assert stats["removed_rows"] == 5
    assert stats["clusters"] == 3
    assert stats["cluster_size_histogram"] == {"2": 1, "3-4": 2}
    assert stats["largest_cluster"] == 3
    assert stats["index_bytes_per_row"] == round(state.nbytes / 10, 1)
    assert (stats["hash_mode"], stats["bands"], stats["rows_per_band"]) == ("fast", 25, 10)


def test_empty_inputs() -> None:
    op = DocumentMinhashDeduplicator()
    assert op.index([]).height == 0
    assert op.index([op.hashes(frame())]).height == 0
    out = op.run(frame())
    assert out.kept.height == 0 and out.dropped_count == 0


def test_texts_too_short_for_a_shingle_all_collide_like_data_juicer() -> None:
    out = DocumentMinhashDeduplicator().run(frame("one", "two words", "", doc(1)))
    assert out.kept[ROW_ID].to_list() == ["f.jsonl:1", "f.jsonl:4"]


def test_window_size_and_threshold_change_what_is_a_duplicate() -> None:
    a = doc(7, 60)
    b = edit(a, 4, 3)  # 4 words of 60 changed: 5-word shingles Jaccard about 0.53, 2-word about 0.77
    assert DocumentMinhashDeduplicator().run(frame(a, b)).dropped_count == 0
    assert DocumentMinhashDeduplicator({"window_size": 2}).run(frame(a, b)).dropped_count == 1
    assert DocumentMinhashDeduplicator({"jaccard_threshold": 0.4}).run(frame(a, b)).dropped_count == 1


def test_punctuation_tokenization_splits_on_punctuation_only() -> None:
    a, b = ". ".join(WORDS[:30]), "! ".join(WORDS[:30])  # "river. stone. ..." / "river! stone! ..."
    assert DocumentMinhashDeduplicator({"tokenization": "space"}).run(frame(a, b)).dropped_count == 0
    assert DocumentMinhashDeduplicator({"tokenization": "punctuation"}).run(frame(a, b)).dropped_count == 1


@pytest.mark.gpu
def test_cuda_signatures_equal_cpu() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    texts = pl.Series([doc(i, 50) for i in range(200)])
    for mode in ("fast", "oph", "datajuicer"):
        op = DocumentMinhashDeduplicator({"hash_mode": mode})
        assert (op.signatures(texts, device="cuda") == op.signatures(texts)).all()


@pytest.mark.parametrize("mode", ["fast", "oph"])
def test_thread_count_does_not_change_the_hashes(mode: str) -> None:
    op = DocumentMinhashDeduplicator({"hash_mode": mode})
    df = frame(*(doc(i, 40) for i in range(50)), "ÄBC Def GHI jkl MNO pqr", "", "a b")
    one = op.hashes(df)
    assert op.last_run_info["threads"] == 1
    assert_frame_equal(op.hashes(df, threads=2), one)  # two threads: the texts in two parts, normalized apart
    assert op.last_run_info["threads"] == 2
    assert_frame_equal(op.hashes(df, threads=3), one)


@pytest.mark.parametrize("tokenization", ["space", "punctuation"])
def test_texts_in_parts_are_the_texts_in_one_buffer(tokenization: str) -> None:
    texts = pl.Series([doc(i, 5 + i) for i in range(7)] + ["ΟΔΟΣ, Κόσμε!", None, "A,B"])
    kw = {"tokenization": tokenization, "lowercase": True, "ignore_pattern": r"\d"}
    (whole,) = shingle_text_parts(texts, **kw)
    parts = shingle_text_parts(texts, **kw, parts=3)
    assert [p.norm.len() for p in parts] == [3, 3, 4]
    assert {p.marker for p in parts} == {whole.marker}
    assert pl.concat([p.norm for p in parts]).to_list() == whole.norm.to_list()
    assert b"".join(p.data.tobytes() for p in parts) == whole.data.tobytes()
    assert len(shingle_text_parts(texts[:2], **kw, parts=4)) == 2  # never more parts than texts


def test_cuda_request_without_cuda_falls_back_to_cpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    op = DocumentMinhashDeduplicator()
    hashes = op.hashes(frame(doc(1), doc(1)), device="cuda:0")
    assert op.last_run_info["device"] == "cpu"
    assert "no usable CUDA" in op.last_run_info["device_fallback"]
    assert_frame_equal(hashes, op.hashes(frame(doc(1), doc(1))))
