"""Local storage keeps a flat folder's sorted listing while the folder is unchanged: a listing after an
entry was added or removed shows it all the same, and prefixes and ``start_after`` page as before."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shared.storage.local import LocalStorage


def _age(folder: Path) -> None:
    """Make the folder look unchanged for a minute (a listing of it may then be kept)."""
    old = time.time_ns() - 60_000_000_000
    os.utime(folder, ns=(old, old))


def test_a_kept_listing_never_hides_a_change(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store", secret=b"s")
    for n in range(5):
        store.put_bytes(f"t/newest/{n:03d}", b"")
    folder = tmp_path / "store" / "t" / "newest"
    _age(folder)
    assert [i.key for i in store.list("t/newest/")] == [f"t/newest/{n:03d}" for n in range(5)]
    assert store._listings  # kept
    store.put_bytes("t/newest/002a", b"x")
    assert [i.key for i in store.list("t/newest/", start_after="t/newest/002")] == [
        "t/newest/002a",
        "t/newest/003",
        "t/newest/004",
    ]
    _age(folder)
    list(store.list("t/newest/"))
    store.delete("t/newest/001")
    assert [i.key for i in store.list("t/newest/00", limit=2)] == ["t/newest/000", "t/newest/002"]
    assert [i.size for i in store.list("t/newest/002a")] == [1]
    assert list(store.list("t/newest/1")) == []
