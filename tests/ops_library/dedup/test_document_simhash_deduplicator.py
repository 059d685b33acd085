import hashlib
import random
import re

import numpy as np
import polars as pl
import pytest

from ops_library.columns import CLUSTER_ID, DROP_REASON, DUPLICATE_OF, HASH, ROW_ID
from ops_library.dedup.document_simhash_deduplicator import DocumentSimhashDeduplicator, near_pairs, simhash64
from ops_library.shingles import ShingleHashes

WORDS = (
    "river stone cloud maple silver orbit candle harbor velvet meadow lantern copper thistle ember glacier "
    "falcon willow prism quartz saddle tundra beacon cobalt dune fern grove haze iris jade kelp lotus moss"
).split()


def doc(seed: int, n: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def frame(*texts: str, file: str = "f.jsonl") -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"{file}:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def dj_simhash(
    text: str, window: int = 6, tokenization: str = "space", lowercase: bool = True, ignore: str | None = None
) -> int:
    """Data-Juicer + simhash-pybind, written out: md5[:8] big-endian per shingle (a list, repeats count),
    bit i set when more shingle hashes have it than not."""
    if lowercase:
        text = text.lower()
    if ignore:
        text = re.sub(ignore, "", text)
    if tokenization == "character":
        shingles = [text[i : i + window].encode() for i in range(len(text) - window + 1)]
    else:
        if tokenization == "punctuation":  # \p{P} of these ASCII texts
            tokens = re.split(r"[!-/:-@\[-`{-~]", text)
        else:
            tokens = [w for w in re.split(" ", text) if w]
        shingles = [" ".join(tokens[i : i + window]).encode() for i in range(len(tokens) - window + 1)]
    hashes = [int.from_bytes(hashlib.md5(s).digest()[:8], "big") for s in shingles]
    counts = [sum(1 if (h >> i) & 1 else -1 for h in hashes) for i in range(64)]
    return sum(1 << i for i in range(64) if counts[i] > 0)


def test_datajuicer_mode_simhash_equals_the_formula() -> None:
    texts = [doc(1), doc(2, 7), "Mixed CASE text with  double  spaces and\nnewlines inside it", "short", ""]
    got = DocumentSimhashDeduplicator({"hash_mode": "datajuicer"}).simhashes(pl.Series(texts))
    assert [int(v) for v in got] == [dj_simhash(t) for t in texts]


@pytest.mark.parametrize(
    "params",
    [
        {"tokenization": "character", "window_size": 4},
        {"tokenization": "punctuation", "window_size": 2},
        {"window_size": 3},
        {"lowercase": False},
        {"ignore_pattern": r"\d+"},
    ],
)
def test_shingling_params_follow_data_juicer(params: dict) -> None:
    texts = ["Alpha, Beta; gamma 12 delta. Epsilon-zeta 345 eta: theta iota kappa!", doc(4, 30)]
    got = DocumentSimhashDeduplicator({"hash_mode": "datajuicer", **params}).simhashes(pl.Series(texts))
    expected = [
        dj_simhash(
            t,
            window=params.get("window_size", 6),
            tokenization=params.get("tokenization", "space"),
            lowercase=params.get("lowercase", True),
            ignore=params.get("ignore_pattern"),
        )
        for t in texts
    ]
    assert [int(v) for v in got] == expected
    assert got.tolist() != DocumentSimhashDeduplicator({"hash_mode": "datajuicer"}).simhashes(pl.Series(texts)).tolist()


def test_datajuicer_mode_equals_simhash_pybind_when_installed() -> None:
    simhash = pytest.importorskip("simhash")
    texts = [doc(i, 30 + i) for i in range(20)]
    got = DocumentSimhashDeduplicator({"hash_mode": "datajuicer"}).simhashes(pl.Series(texts))
    for value, text in zip(got.tolist(), texts, strict=True):
        tokens = text.split(" ")
        shingles = [" ".join(tokens[i : i + 6]).encode() for i in range(len(tokens) - 5)]
        assert value == int(np.uint64(simhash.compute(map(simhash.unsigned_hash, shingles))))


def test_numba_and_numpy_simhashes_agree() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=200)
    counts[::9] = 0
    offsets = np.zeros(201, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    sh = ShingleHashes(rng.integers(0, 2**64 - 1, size=offsets[-1], dtype=np.uint64, endpoint=True), offsets)
    assert (simhash64(sh) == simhash64(sh, backend="numpy")).all()


def test_pairs_are_exactly_those_within_the_distance() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    flips = [np.uint64(sum(1 << int(b) for b in rng.choice(64, k, replace=False))) for k in range(1, 7)]
    near = np.array([v ^ flips[i % 6] for i, v in enumerate(values[:60])], dtype=np.uint64)
    allv = np.concatenate([values, near])
    pairs = {tuple(r) for r in near_pairs(allv, 6, 4).rows()}
    uniq = sorted({int(v) for v in allv})
    brute = {(a, b) for i, a in enumerate(uniq) for b in uniq[i + 1 :] if bin(a ^ b).count("1") <= 4}
    assert pairs == brute
    assert len(brute) >= 40  # flips of 1..4 bits: 40 of the 60


def test_keeps_the_first_of_each_group_across_partitions() -> None:
    a, b = doc(1, 300), doc(2, 300)
    near_a = a + " brook"  # one more shingle of 296
    op = DocumentSimhashDeduplicator({"hash_mode": "datajuicer"})
    assert bin(int(op.simhashes(pl.Series([a]))[0]) ^ int(op.simhashes(pl.Series([near_a]))[0])).count("1") <= 4
    p1, p2, p3 = frame(a, b, file="p1"), frame(doc(3), near_a, file="p2"), frame(b, a, file="p3")
    index = op.index([op.hashes(p) for p in (p1, p2, p3)])
    assert dict(index.select(ROW_ID, DUPLICATE_OF).rows()) == {"p2:2": "p1:1", "p3:1": "p1:2", "p3:2": "p1:1"}
    assert dict(index.select(ROW_ID, CLUSTER_ID).rows()) == {"p2:2": 0, "p3:1": 1, "p3:2": 0}
    stats = op.index_stats(index, total_rows=6)
    assert (stats["removed_rows"], stats["clusters"], stats["hash_mode"]) == (3, 2, "datajuicer")
    out = op.apply(p3, index)
    assert out.kept.height == 0
    assert out.dropped is not None
    assert out.dropped[DROP_REASON].to_list() == [
        "near-duplicate of p1:2 (simhash cluster 1)",
        "near-duplicate of p1:1 (simhash cluster 0)",
    ]


def test_hamming_distance_and_blocks_are_used() -> None:
    # Two texts whose SimHashes differ in 5..12 bits: duplicates at hamming_distance 12, not at 4.
    a = doc(5, 60)
    op = DocumentSimhashDeduplicator({"hash_mode": "datajuicer"})
    for seed in range(50):
        b = a + " " + doc(100 + seed, 6)
        d = bin(int(op.simhashes(pl.Series([a]))[0]) ^ int(op.simhashes(pl.Series([b]))[0])).count("1")
        if 5 <= d <= 12:
            break
    else:
        pytest.fail("no pair at distance 5..12")
    assert op.run(frame(a, b)).dropped_count == 0
    wide = DocumentSimhashDeduplicator({"hash_mode": "datajuicer", "num_blocks": 14, "hamming_distance": 12})
    assert wide.run(frame(a, b)).dropped_count == 1


def test_fast_mode_dedups_near_copies_too() -> None:
    a = doc(9, 120)
    b = a + " moss"
    out = DocumentSimhashDeduplicator().run(frame(a, doc(10, 120), b))
    assert out.kept[ROW_ID].to_list() == ["f.jsonl:1", "f.jsonl:2"]


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="less than num_blocks"):
        DocumentSimhashDeduplicator({"num_blocks": 4, "hamming_distance": 4})


def test_empty_inputs_and_short_texts() -> None:
    op = DocumentSimhashDeduplicator()
    assert op.index([]).height == 0
    assert op.hashes(frame())[HASH].dtype == pl.UInt64
    # no shingle: SimHash 0 for all, so they are one cluster (as in Data-Juicer)
    assert op.run(frame("a", "b c", doc(1))).kept[ROW_ID].to_list() == ["f.jsonl:1", "f.jsonl:3"]
