"""Fingerprints: the one implementation that says which recipe and input a checkpoint was computed from.

A fingerprint chains from the input: source = H(code, shard content hash); a partitioned step =
H(code, fingerprints of its upstream checkpoints); a global stage = H(code, "<shard>=<fingerprint>" of every
shard of its upstream, in input order, then the fingerprint of any index chained before it). `code` hashes a
step's own ops, params and op versions, so changing one op's params invalidates that op's step and everything
downstream, and nothing upstream.

The step that writes a checkpoint records `node_fingerprint(node, <fingerprints of the checkpoints it read>)`;
the planner and the skip logic compare a stored fingerprint with `Fingerprints.expected`, the same function fed
with what the current recipe and input would give. They agree byte for byte because they are one function.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import xxhash

if TYPE_CHECKING:
    import dagster as dg

    from pipeline_defs.graph import Node
    from pipeline_defs.recipe import OpSpec, Recipe
    from pipeline_defs.steps import RowStep


def digest(*parts: str) -> str:
    return xxhash.xxh3_64_hexdigest("\x1f".join(parts).encode())


def code_hash(stage: str, ops: Iterable[OpSpec], *extra: str) -> str:
    """What determines a step's output besides its input: its ops (name, params, text key, op version)."""
    payload = [[op.name, op.params.model_dump(mode="json"), op.text_key, op.op_class.version] for op in ops]
    return digest(stage, json.dumps(payload, sort_keys=True, default=str), *extra)


def source_code(recipe: Recipe) -> str:
    """The source step's code: the text key and how the input is cut into shards."""
    partitioning = json.dumps(recipe.partition.model_dump(mode="json"), sort_keys=True)
    return digest("source", recipe.text_key, partitioning)


def row_code(step: RowStep) -> str:
    """A row step's code: its ops, and whether its first op applies a global op's index."""
    return code_hash("row", step.ops, "dedup_head" if step.dedup_head else "")


def chain(code: str, *upstream: str) -> str:
    return digest(code, *upstream)


def node_fingerprint(node: Node, upstream: Sequence[str]) -> str:
    """The fingerprint of `node`'s checkpoint computed from inputs whose fingerprints are `upstream` (for a
    source: the shard's content hash; for a global stage: `<shard>=<fp>` of every shard in input order)."""
    return chain(node.code, *upstream)


def keyed(shard: str, fingerprint: str) -> str:
    return f"{shard}={fingerprint}"


class Fingerprints:
    """Expected fingerprints of every (node, shard) for the current recipe and input, memoized.

    `content_hash(shard)` is the source's input hash; `shards` the registered shards in input order."""

    def __init__(
        self,
        nodes: dict[dg.AssetKey, Node],
        shards: Sequence[str],
        content_hash: Callable[[str], str],
    ):
        self.nodes = nodes
        self.shards = list(shards)
        self._content_hash = content_hash
        self._memo: dict[tuple[dg.AssetKey, str | None], str] = {}

    def expected(self, key: dg.AssetKey, shard: str | None) -> str:
        memo = (key, shard)
        if memo not in self._memo:
            node = self.nodes[key]
            if node.kind == "source":
                assert shard is not None
                ups = [self._content_hash(shard)]
            elif node.partitioned:
                ups = [self.expected(u, shard if self.nodes[u].partitioned else None) for u in node.upstream]
            else:  # a global stage: every shard of its (partitioned) upstream, in input order; then any index
                up, *global_ups = node.upstream  # chained before it (graph.py, `dedup_index`)
                ups = [keyed(k, self.expected(up, k)) for k in self.shards]
                ups += [self.expected(g, None) for g in global_ups]
            self._memo[memo] = node_fingerprint(node, ups)
        return self._memo[memo]
