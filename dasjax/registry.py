"""Name -> object tables for the parts a user can add: operations, inverse problems, search
spaces, search algorithms, methods and their groups, hyperparameter sets, presets.  Every one is a
:class:`Registry`, so adding, replacing, removing and looking up a name work, and fail, alike.

This module imports nothing from dasjax, so the config can check names against the tables
without importing the modules that fill them (:mod:`dasjax.operations`, :mod:`dasjax.problems`,
:mod:`dasjax.spaces`; all load with ``import dasjax``).  The method and group
tables live in :mod:`dasjax.methods`, the hyperparameter sets in :mod:`dasjax.hparams`, the presets
in :mod:`dasjax.presets`.
"""
from __future__ import annotations

from typing import Any


class Registry:
    """A table of named entries; ``builtin`` names cannot be removed or silently replaced."""

    def __init__(self, kind: str, how_to_add: str, replace_flag: str = "replace"):
        self.kind, self.how_to_add, self.replace_flag = kind, how_to_add, replace_flag
        self._entries: dict[str, Any] = {}
        self.builtin: set[str] = set()

    def add(self, name: str, entry: Any, replace: bool = False, builtin: bool = False) -> None:
        """Add ``entry`` as ``name``; the same (or an equal) entry again is a no-op, another one
        needs ``replace``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name {name!r} must be a non-empty string")
        old = self._entries.get(name)
        if name in self._entries and not replace and old is not entry and old != entry:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass {self.replace_flag}=True "
                             "to redefine it")
        self._entries[name] = entry
        if builtin:
            self.builtin.add(name)

    def register(self, entry: Any, of_type: type, replace: bool = False) -> Any:
        """Add ``entry`` under its ``name`` after checking it is an ``of_type``; returns it."""
        if not isinstance(entry, of_type):
            raise TypeError(f"{self.how_to_add.rsplit('.', 1)[-1]} takes an object of type "
                            f"{of_type.__name__}, got {type(entry).__name__}")
        self.add(entry.name, entry, replace=replace)
        return entry

    def remove(self, name: str) -> None:
        if name in self.builtin:
            raise ValueError(f"{self.kind} {name!r} is built in and cannot be removed")
        self._entries.pop(name, None)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise ValueError(f"{self.kind}={name!r} is not allowed; choose one of {list(self._entries)} "
                             f"(add one with {self.how_to_add})")
        return self._entries[name]

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, Any], ...]:
        return tuple(self._entries.items())


OPS = Registry("op", "dasjax.operations.register_op")
PROBLEMS = Registry("problem", "dasjax.register_problem")
SPACES = Registry("space", "dasjax.spaces.register_space")
ALGORITHMS = Registry("search algorithm", "dasjax.register_algorithm")
