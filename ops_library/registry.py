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


class UnknownOpError(KeyError):
    def __init__(self, name: str, where: str = ""):
        self.name = name
        close = difflib.get_close_matches(name, list(load_all()), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"{where}unknown op {name!r}{hint} (`sluice ops` lists the {len(OPS)} available ops)")

    def __str__(self) -> str:
        return str(self.args[0])


def get_op(name: str, where: str = "") -> type[Op]:
    ops = load_all()
    if name not in ops:
        raise UnknownOpError(name, where)
    return ops[name]
