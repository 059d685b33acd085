"""Sluice's operator library: Data-Juicer text ops as polars code, independent of any engine."""

from ops_library.base import Deduplicator, Filter, FilterParams, Mapper, Op, OpOutput, OpParams, ResourceNeeds
from ops_library.registry import OPS, get_op, load_all, register

__all__ = [
    "OPS",
    "Deduplicator",
    "Filter",
    "FilterParams",
    "Mapper",
    "Op",
    "OpOutput",
    "OpParams",
    "ResourceNeeds",
    "get_op",
    "load_all",
    "register",
]
