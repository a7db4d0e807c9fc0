"""What the billboard keeps by bytes (billboard/kept.py): within its limit, the least
recently used dropped first, the newest always kept, a kept None told from a miss."""

from __future__ import annotations

from billboard.kept import Kept


def test_the_least_recently_used_go_first_and_the_bytes_stay_within_the_limit() -> None:
    kept: Kept[str, str] = Kept(limit=30)
    for key in "abc":
        kept.put(key, key.upper(), 10)
    assert kept.find("a") == ("A",)  # used: now the most recent
    kept.put("d", "D", 10)
    assert "b" not in kept and list(kept) == ["c", "a", "d"] and kept.nbytes == 30
    kept.put("a", "A2", 5)  # kept again: its old size no longer counts
    assert kept.nbytes == 25 and kept.peek("a") == "A2"


def test_the_newest_stays_even_past_the_limit_and_a_kept_none_is_known() -> None:
    kept: Kept[str, str | None] = Kept(limit=1)
    kept.put("big", "B", 100)
    assert kept.find("big") == ("B",) and kept.nbytes == 100
    kept.put("nothing", None, 0)
    assert kept.find("nothing") == (None,) and kept.find("missing") is None
    kept.clear()
    assert len(kept) == 0 and kept.nbytes == 0
