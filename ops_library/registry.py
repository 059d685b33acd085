"""The op registry: Data-Juicer op name -> op class. File name, registry key and class name match."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ops_library.base import Op

OPS: dict[str, type[Op]] = {}
_T = TypeVar("_T", bound="type[Op]")
_FAMILIES = ("mappers", "filters", "dedup")
_loaded = False


def register(name: str):
    """Class decorator: `@register("text_length_filter")` adds the op under its Data-Juicer name."""

    def wrap(cls: _T) -> _T:
        old = OPS.get(name)
        same_source = old is not None and (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
        if old is not None and old is not cls and not same_source:  # re-importing a module is fine
            raise ValueError(f"op {name!r} registered twice ({OPS[name].__module__} and {cls.__module__})")
        cls.name = name
        OPS[name] = cls
        return cls

    return wrap


def load_all() -> dict[str, type[Op]]:
    """Import every module of the op families once, so their @register calls run."""
    global _loaded
    if not _loaded:
        for family in _FAMILIES:
            package = importlib.import_module(f"ops_library.{family}")
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"ops_library.{family}.{module.name}")
        _loaded = True
    return OPS


_FAMILY_SUFFIXES = ("_mapper", "_filter", "_deduplicator", "_selector", "_grouper", "_aggregator")
CLOSE_CUTOFF = 0.8
"""Least `difflib` similarity of a suggestion. At 0.6 (difflib's default) `clean_email_mapper` suggested
`clean_links_mapper`; real typos (`text_lenght_filter`, `word_num_filter`) score above 0.9."""


def _stem(name: str) -> str:
    for suffix in _FAMILY_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def close_op_names(name: str, choices: list[str] | set[str] | dict[str, object], n: int = 3) -> list[str]:
    """Registered op names close to `name`, compared without the family suffix (`_mapper`, `_filter`, ...)
    that every name of a family shares and that made unrelated names look alike."""
    by_stem: dict[str, list[str]] = {}
    for choice in sorted(choices):
        by_stem.setdefault(_stem(choice), []).append(choice)
    stems = difflib.get_close_matches(_stem(name), list(by_stem), n=n, cutoff=CLOSE_CUTOFF)
    return [choice for stem in stems for choice in by_stem[stem]][:n]


class UnknownOpError(KeyError):
    def __init__(self, name: str, where: str = ""):
        from ops_library.dj_ops import DATA_JUICER_OPS

        self.name = name
        self.is_data_juicer_op = name in DATA_JUICER_OPS
        if self.is_data_juicer_op:
            message = (
                f"{where}{name!r} is a Data-Juicer op Sluice does not implement; see `sluice ops` for the "
                f"{len(load_all())} ops it has; add one with `custom_operator_paths`"
            )
        else:
            close = close_op_names(name, load_all())
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            message = f"{where}unknown op {name!r}{hint} (`sluice ops` lists the {len(OPS)} available ops)"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def get_op(name: str, where: str = "") -> type[Op]:
    ops = load_all()
    if name not in ops:
        raise UnknownOpError(name, where)
    return ops[name]
