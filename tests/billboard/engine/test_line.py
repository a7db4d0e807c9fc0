"""The waiting line: a caller's place and the front stay right however the crowd moves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billboard.engine.line import WaitingLine


def test_callers_wait_in_the_order_they_came_and_leave_from_the_front() -> None:
    line = WaitingLine(["c-a", "c-b", "c-c"])
    assert list(line) == ["c-a", "c-b", "c-c"] and len(line) == 3
    assert [line.place(c) for c in ("c-a", "c-b", "c-c")] == [1, 2, 3]
    assert line.pop_front() == "c-a"
    assert line.place("c-c") == 2 and "c-a" not in line and "c-b" in line


def test_a_caller_who_leaves_the_middle_moves_those_behind_up() -> None:
    line = WaitingLine(f"c-{n}" for n in range(5))
    assert line.remove("c-1") and not line.remove("c-1")
    assert [line.place(f"c-{n}") for n in (0, 2, 3, 4)] == [1, 2, 3, 4]
    assert line.first(2) == ["c-0", "c-2"]


def test_the_first_k_are_at_most_everyone() -> None:
    line = WaitingLine(["c-a", "c-b"])
    assert line.first(20) == ["c-a", "c-b"] and line.first(0) == []
    assert WaitingLine().first(5) == []


def test_asking_for_what_is_not_there_is_an_error() -> None:
    line = WaitingLine(["c-a"])
    with pytest.raises(ValueError):
        line.append("c-a")
    with pytest.raises(KeyError):
        line.place("c-z")
    line.pop_front()
    with pytest.raises(IndexError):
        line.pop_front()
    assert not line and list(line) == []


def test_a_caller_may_wait_again_after_leaving() -> None:
    line = WaitingLine(["c-a", "c-b"])
    line.remove("c-a")
    line.append("c-a")
    assert list(line) == ["c-b", "c-a"] and line.place("c-a") == 2


def test_a_long_night_of_comings_and_goings_keeps_memory_to_the_crowd() -> None:
    line = WaitingLine()
    for n in range(100_000):
        line.append(f"c-{n}")
        if n >= 10 and n % 2:
            line.pop_front()
        elif n >= 10:
            line.remove(f"c-{n - 5}")
    assert len(line) <= 10
    assert len(line._slots) <= 64  # the slots follow those waiting, not the history


# One operation on the line: (what, which caller).
OPS = st.lists(
    st.tuples(st.sampled_from(["append", "remove", "pop"]), st.integers(0, 40)),
    max_size=300,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(OPS)
def test_the_line_behaves_as_a_list_would(ops: list[tuple[str, int]]) -> None:
    line = WaitingLine()
    model: list[str] = []
    for what, n in ops:
        caller = f"c-{n}"
        if what == "append" and caller not in model:
            line.append(caller)
            model.append(caller)
        elif what == "remove":
            assert line.remove(caller) == (caller in model)
            if caller in model:
                model.remove(caller)
        elif what == "pop" and model:
            assert line.pop_front() == model.pop(0)
        assert list(line) == model and len(line) == len(model)
        assert line.first(7) == model[:7]
        for place, waiting in enumerate(model, start=1):
            assert line.place(waiting) == place and waiting in line
        assert caller in line or caller not in model
