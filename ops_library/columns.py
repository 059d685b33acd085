"""Names of the columns Sluice adds to every frame. One place, so no op spells them twice."""

# Data-Juicer keeps per-row filter stats in a dict column of this name; Sluice keeps them in a struct
# of the same name.
STATS = "__dj__stats__"
# Stable row identity: "<relative input path>:<1-based line or row>". Dedup provenance points at it.
ROW_ID = "__sluice_id__"
# Where a dropped row went and why (present only in the dropped frames).
DROP_OP = "__sluice_op__"
DROP_KIND = "__sluice_drop__"  # one of DROP_KINDS
DROP_REASON = "__sluice_reason__"
DUPLICATE_OF = "__sluice_duplicate_of__"
# Set on rows an op derived from another row (text_chunk_mapper): the ROW_ID of the row they came from. The
# derived rows' own ROW_ID is "<parent ROW_ID>#<1-based chunk number>".
PARENT_ID = "__sluice_parent_id__"
# Near-duplicate cluster of a dropped row (the input-order number of the row its cluster keeps).
CLUSTER_ID = "__sluice_cluster__"
# Dedup key produced by a Deduplicator's hash stage.
HASH = "__sluice_hash__"
# A dropped row's provenance under plain names, before its own fields, in the export's dropped-rows side file.
PUBLIC_PROVENANCE = {
    ROW_ID: "sluice_id",
    DROP_OP: "sluice_op",
    DROP_KIND: "sluice_drop",
    DROP_REASON: "sluice_reason",
    DUPLICATE_OF: "sluice_duplicate_of",
    PARENT_ID: "sluice_parent_id",
    CLUSTER_ID: "sluice_cluster",
}

FILTERED = "filtered"
DUPLICATE = "duplicate"
QUARANTINED = "quarantined"
DROP_KINDS = (FILTERED, DUPLICATE, QUARANTINED)

INTERNAL_PREFIX = "__sluice_"
