"""The waiting line: callers in the order they came, for when every track is taken.

A plain list makes a caller's place a search and a departure a shift, both O(N), so a
crowd of N waiting callers costs O(N²) per change. Here each caller holds a ticket, a
slot in arrival order, and a Fenwick tree over the slots counts who still holds one:
a caller's place is a prefix sum and the k-th caller a descent of the tree, both
O(log N) (P. M. Fenwick, "A new data structure for cumulative frequency tables",
Software: Practice and Experience 24(3), 1994). A departure leaves a hole; when the
slots run out, or holes outnumber callers three to one, the callers still waiting
move to fresh slots. That copy is O(N) and needs at least N/2 arrivals or departures
since the last one, so every operation stays O(log N) amortised and the memory
follows the crowd, not its history.

Pure and deterministic, like the rest of the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

MIN_SLOTS: Final = 16


class WaitingLine:
    """Callers in arrival order: append, remove anyone, pop the front, a caller's place."""

    __slots__ = ("_end", "_slots", "_tickets", "_tree")

    def __init__(self, callers: Iterable[str] = ()) -> None:
        self._slots: list[str | None] = []
        self._tree: list[int] = []  # 1-based Fenwick tree over _slots (1 = taken)
        self._tickets: dict[str, int] = {}  # caller → slot
        self._end = 0  # the next free slot
        self._renumber([])
        for caller in callers:
            self.append(caller)

    def __len__(self) -> int:
        return len(self._tickets)

    def __contains__(self, caller: object) -> bool:
        return caller in self._tickets

    def __iter__(self) -> Iterator[str]:
        """The callers front to back (a snapshot: the line may change meanwhile)."""
        return iter([c for c in self._slots[: self._end] if c is not None])

    def __repr__(self) -> str:
        return f"WaitingLine({list(self)!r})"

    def append(self, caller: str) -> None:
        """`caller` joins at the back; a caller already waiting is a ValueError."""
        if caller in self._tickets:
            raise ValueError(f"{caller!r} is already in line")
        if self._end == len(self._slots):
            self._renumber(list(self))
        slot = self._end
        self._end += 1
        self._slots[slot] = caller
        self._tickets[caller] = slot
        self._add(slot, 1)

    def remove(self, caller: str) -> bool:
        """`caller` leaves the line wherever they are; False if they were not in it."""
        slot = self._tickets.pop(caller, None)
        if slot is None:
            return False
        self._slots[slot] = None
        self._add(slot, -1)
        if self._end > MIN_SLOTS and 4 * len(self._tickets) < self._end:
            self._renumber(list(self))
        return True

    def pop_front(self) -> str:
        """The first caller, who leaves the line; IndexError when nobody waits."""
        if not self._tickets:
            raise IndexError("nobody is waiting")
        caller = self._slots[self._select(1)]
        assert caller is not None  # the tree counts only taken slots
        self.remove(caller)
        return caller

    def place(self, caller: str) -> int:
        """`caller`'s place, 1 at the front; KeyError if they are not waiting."""
        return self._count_to(self._tickets[caller])

    def first(self, k: int) -> list[str]:
        """The first `k` callers (fewer if fewer wait), front to back: O(k log N)."""
        found: list[str] = []
        for place in range(1, min(k, len(self._tickets)) + 1):
            caller = self._slots[self._select(place)]
            assert caller is not None
            found.append(caller)
        return found

    # -- the tree -----------------------------------------------------------------------

    def _renumber(self, callers: list[str]) -> None:
        """Give `callers` (in order) slots 0, 1, …, with room for as many again."""
        size = MIN_SLOTS
        while size < 2 * len(callers):
            size *= 2  # a power of two, for _select's descent
        self._slots = [*callers, *([None] * (size - len(callers)))]
        self._tickets = {caller: slot for slot, caller in enumerate(callers)}
        self._end = len(callers)
        tree = [0, *([1] * len(callers)), *([0] * (size - len(callers)))]
        for i in range(1, size + 1):  # the linear build: each node passes its sum up
            parent = i + (i & -i)
            if parent <= size:
                tree[parent] += tree[i]
        self._tree = tree

    def _add(self, slot: int, delta: int) -> None:
        tree, i = self._tree, slot + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def _count_to(self, slot: int) -> int:
        """How many callers hold slots 0 … `slot`."""
        tree, i, total = self._tree, slot + 1, 0
        while i:
            total += tree[i]
            i -= i & -i
        return total

    def _select(self, place: int) -> int:
        """The slot of the caller at `place` (1 ≤ place ≤ len)."""
        tree, pos = self._tree, 0
        bit = len(tree) - 1  # the number of slots, a power of two
        while bit:
            nxt = pos + bit
            if nxt < len(tree) and tree[nxt] < place:
                pos = nxt
                place -= tree[nxt]
            bit >>= 1
        return pos  # tree index pos + 1, i.e. slot pos
