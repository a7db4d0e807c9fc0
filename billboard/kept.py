"""`Kept`: values kept by key up to a number of bytes, the least recently used dropped
beyond it (the newest always stays). What the billboard makes once and draws or plays
many times keeps to it: the notes' prepared sounds, the phone's sounds, the windows'
glows. Not thread-safe: its owner locks around it where threads share it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Values by key, each with its size in bytes; at most `limit` bytes of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.nbytes = 0
        self._kept: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept

    def __iter__(self) -> Iterator[K]:
        return iter(self._kept)

    def find(self, key: K) -> tuple[V] | None:
        """(the value kept for `key`,), now the most recently used; None: not kept
        (a value may itself be None)."""
        kept = self._kept.get(key)
        if kept is None:
            return None
        self._kept.move_to_end(key)
        return (kept[0],)

    def peek(self, key: K) -> V | None:
        """The value kept for `key` without using it (None: not kept)."""
        kept = self._kept.get(key)
        return None if kept is None else kept[0]

    def put(self, key: K, value: V, size: int) -> V:
        """Keep `value` (`size` bytes) for `key`, dropping the least recently used
        beyond `limit`; returns `value`."""
        old = self._kept.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
        self._kept[key] = (value, size)
        self.nbytes += size
        while self.nbytes > self.limit and len(self._kept) > 1:
            _, (_, dropped) = self._kept.popitem(last=False)
            self.nbytes -= dropped
        return value

    def clear(self) -> None:
        self._kept.clear()
        self.nbytes = 0
