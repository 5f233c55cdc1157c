"""Lazy re-exports for the package ``__init__`` files (PEP 562).

A package ``__init__`` that imports its submodules eagerly makes ``import optical.data``
(and so ``optical --help``) pay for torch and transformers. Instead each package declares
which submodule defines each public name and calls :func:`attach`::

    __getattr__, __dir__, __all__ = attach(__name__, {
        "optical.data.bitext": ("Bitext", "read_bitext_file"),
    })

``from optical.data import Bitext`` then imports ``optical.data.bitext`` on first use and
caches the value in the package, so later lookups cost nothing.

A public name may equal a submodule's name (``optical.eval.evaluate`` is a module and
``evaluate`` its function). The import system binds a submodule onto its package when it is
first imported; the package keeps the re-exported value under that name instead, as an eager
``from .evaluate import evaluate`` would have left it.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping


class _LazyPackage(types.ModuleType):
    """A package whose re-exported names win over same-named submodules."""

    _lazy_exports: dict[str, str]

    def __setattr__(self, name: str, value: object) -> None:
        if (
            isinstance(value, types.ModuleType)
            and name in self._lazy_exports
            and value.__name__ == f"{self.__name__}.{name}"
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


def attach(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` re-exporting ``exports``.

    ``exports`` maps a module name to the public names it defines.
    """
    where = {name: module for module, names in exports.items() for name in names}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    if any(f"{package}.{name}" == module for name, module in where.items()):
        module_object = sys.modules[package]
        module_object.__class__ = _LazyPackage
        object.__setattr__(module_object, "_lazy_exports", where)
    return __getattr__, __dir__, sorted(where)
