"""`Registry`: the things of one kind (tasks, evaluation methods, ...) by name, each registered once.

A name is registered by one call next to the thing it names, so there is one source of truth per
name. Registering a taken name is a programming error (`ValueError`); asking for an unknown name is
bad input: the registry's error class, naming the allowed names and the closest one to the typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from attnsteer.errors import AttnsteerError

Item = TypeVar("Item")


class Registry(Generic[Item]):
    """Named items of one `kind` ("task", "evaluation method", ...), in registration order.

    error: the `AttnsteerError` subclass `get` raises for an unknown name.
    """

    def __init__(self, kind: str, error: type[AttnsteerError]) -> None:
        self.kind, self.error = kind, error
        self._items: dict[str, Item] = {}

    def register(self, name: str, item: Item) -> Item:
        """Add `item` as `name`; registering the same item again is harmless, another item is a ValueError."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        other = self._items.get(name)
        if other is not None and _origin(other) != _origin(item):
            raise ValueError(f"{self.kind} name {name!r} is already registered by {_describe(other)}")
        self._items[name] = item
        return item

    def get(self, name: str) -> Item:
        """The item registered as `name`; an unknown name raises `self.error` with the allowed names."""
        if isinstance(name, str) and name in self._items:
            return self._items[name]
        raise self.unknown(name)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def unknown(self, name: object, also: Iterable[str] = ()) -> AttnsteerError:
        """The error for an unknown `name`: the allowed names (plus `also`, e.g. aliases) and the closest."""
        allowed = [*self.names(), *also]
        close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return self.error(f"unknown {self.kind} {name!r}; choose one of {', '.join(map(repr, allowed))}{hint}")


def _origin(item: Any) -> Any:
    """What makes two registrations the same: a class or function by where it is defined (so a
    reloaded module re-registers harmlessly), anything else by equality."""
    if isinstance(item, type) or (callable(item) and hasattr(item, "__qualname__")):
        return (item.__module__, item.__qualname__)
    return item


def _describe(item: Any) -> str:
    origin = _origin(item)
    return ".".join(origin) if isinstance(origin, tuple) else repr(item)
