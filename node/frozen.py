"""An immutable mapping whose updates share structure, for the chain state.

Why not a dict behind ``MappingProxyType``: ``ChainState`` is a value, and
each governance record yields a new state while the old one stays as it was.
Copying a whole dict per record would make replaying G enrolments into a map
of n keys cost O(G * n), which grows with the square of the chain's age.
``FrozenMap`` spreads its entries over ``SHARDS`` dicts by key hash; ``set``
copies the tuple of shards and the one shard it changes, so an update costs
O(SHARDS + n / SHARDS) and every earlier map stays valid and unchanged.

The shards are never written after the map that owns them is built. The
iteration order is not insertion order (nor the same in two processes, as
``hash`` of a string is salted): every reader of the chain state sorts, or
only asks for membership, so no node's decision depends on it.
"""

from __future__ import annotations

from collections.abc import Hashable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from itertools import chain
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

SHARDS = 128


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """A read-only mapping; ``set`` returns a new map and leaves this one alone."""

    __slots__ = ("_len", "_shards")

    _shards: tuple[dict[K, V], ...]
    _len: int

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        shards: tuple[dict[K, V], ...] = tuple({} for _ in range(SHARDS))
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            shards[hash(key) % SHARDS][key] = value
        object.__setattr__(self, "_shards", shards)
        object.__setattr__(self, "_len", sum(len(s) for s in shards))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"FrozenMap is immutable (cannot set {name})")

    def __getitem__(self, key: K) -> V:
        return self._shards[hash(key) % SHARDS][key]

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | T, /) -> V | T: ...
    def get(self, key: K, default: object = None, /) -> object:
        return self._shards[hash(key) % SHARDS].get(key, default)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._shards[hash(key) % SHARDS]
        except TypeError:  # unhashable: never a key
            return False

    def __iter__(self) -> Iterator[K]:
        return chain.from_iterable(self._shards)

    def items(self) -> ItemsView[K, V]:
        return _Items(self)

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self.items())!r})"

    def set(self, key: K, value: V) -> FrozenMap[K, V]:
        """A map equal to this one with ``key`` bound to ``value``."""
        index = hash(key) % SHARDS
        shard = self._shards[index].copy()
        added = key not in shard
        shard[key] = value
        shards = list(self._shards)
        shards[index] = shard
        out: FrozenMap[K, V] = FrozenMap.__new__(FrozenMap)
        object.__setattr__(out, "_shards", tuple(shards))
        object.__setattr__(out, "_len", self._len + added)
        return out


# Views that iterate the shards at C speed (the generic views look every key up again).


class _Items(ItemsView[K, V]):
    _mapping: FrozenMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return chain.from_iterable(shard.items() for shard in self._mapping._shards)


class _Values(ValuesView[V]):
    _mapping: FrozenMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        return chain.from_iterable(shard.values() for shard in self._mapping._shards)
