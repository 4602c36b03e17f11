"""Both coordinator backends keep the same promises: idempotent records, compare-and-set, claims."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.coordination import Coordinator
from shared.coordination.redis_backend import RedisCoordinator
from shared.coordination.sqlite_backend import SqliteCoordinator


@pytest.fixture(params=["sqlite", "redis"])
def coordinator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Coordinator]:
    if request.param == "sqlite":
        yield SqliteCoordinator(tmp_path / "c.sqlite3")
    else:
        url = request.getfixturevalue("redis_server")
        coord = RedisCoordinator(url + "/3")
        coord.client.flushdb()
        yield coord


def test_record_items_counts_each_item_once(coordinator: Coordinator) -> None:
    coordinator.set_plan("j", total=5, shards=2)
    first = coordinator.record_items("j", {0: {"status": "ok"}, 1: {"status": "failed", "error": "x"}})
    again = coordinator.record_items("j", {0: {"status": "failed"}, 2: {"status": "ok"}})  # 0 again: ignored
    assert sorted(first) == [0, 1] and again == [2]  # what each call recorded first, for the metrics
    assert coordinator.record_items("j", {}) == []
    progress = coordinator.progress("j")
    assert progress is not None
    assert (progress.total, progress.done, progress.failed) == (5, 2, 1)
    assert coordinator.item_results("j", [0, 1, 3]) == {0: {"status": "ok"}, 1: {"status": "failed", "error": "x"}}
    coordinator.forget_items("j", [0, 1])  # their shard's manifest holds them: still counted
    progress = coordinator.progress("j")
    assert progress is not None and (progress.done, progress.failed) == (2, 1)
    assert coordinator.item_results("j", [2]) == {2: {"status": "ok"}}


def test_status_compare_and_set(coordinator: Coordinator) -> None:
    assert coordinator.set_status("j", "queued")
    assert coordinator.set_status("j", "running", frozenset({"queued"}))
    assert coordinator.set_status("j", "canceled", frozenset({"queued", "running"}))
    assert not coordinator.set_status("j", "succeeded", frozenset({"queued", "running"}))
    assert coordinator.get_status("j") == "canceled"


def test_shards_attempts_claims(coordinator: Coordinator) -> None:
    assert coordinator.mark_shard_done("j", 0, 3, 1) == 1
    assert coordinator.mark_shard_done("j", 0, 3, 1) == 1
    assert coordinator.mark_shard_done("j", 1, 0, 2) == 2
    assert coordinator.shard_counts("j") == {0: (3, 1), 1: (0, 2)} and coordinator.shard_counts("k") == {}
    coordinator.begin_attempt("j", [7, 8])
    coordinator.begin_attempt("j", [8])
    assert coordinator.attempts("j", [7, 8, 9]) == {7: 1, 8: 2}
    coordinator.begin_attempt("j", [10], ended=[8, 9])  # 8 processed, not yet recorded: no longer a suspect
    assert coordinator.attempts("j", [7, 8, 9, 10]) == {7: 1, 10: 1}
    assert coordinator.claim("x") and not coordinator.claim("x")
    assert coordinator.remember("k", "v1") is None
    assert coordinator.remember("k", "v2") == "v1"


def test_outstanding_work_leases_and_epoch(coordinator: Coordinator) -> None:
    import time

    coordinator.put_work("j1", "plan", {"task": "fovea.plan", "args": ["t", "j1"]})
    coordinator.put_work("j1", "shard:0", {"task": "fovea.shard", "args": ["t", "j1", 0]})
    coordinator.put_work("j2", "plan", {"task": "fovea.plan", "args": ["t", "j2"]})
    assert coordinator.jobs_with_work() == ["j1", "j2"]
    assert set(coordinator.work("j1")) == {"plan", "shard:0"}
    assert coordinator.work_entry("j1", "shard:0") == coordinator.work("j1")["shard:0"]
    assert coordinator.work_entry("j1", "shard:1") is None and coordinator.work_entry("j9", "plan") is None
    coordinator.drop_work("j1", "plan")
    coordinator.drop_work("j1", "shard:0")
    coordinator.drop_work("j1", "shard:0")  # idempotent
    assert coordinator.jobs_with_work() == ["j2"] and coordinator.work("j1") == {}
    # A lease: one holder at a time, renewable and releasable only by it, free again once it expires.
    assert coordinator.acquire_lease("L", "a", 0.3) and not coordinator.acquire_lease("L", "b", 0.3)
    assert coordinator.acquire_lease("L", "a", 0.3)  # the holder may take it again (extends it)
    assert coordinator.lease_holder("L") == "a"
    assert not coordinator.renew_lease("L", "b", 5) and coordinator.renew_lease("L", "a", 0.3)
    coordinator.release_lease("L", "b")
    assert coordinator.lease_holder("L") == "a"
    time.sleep(0.4)
    assert coordinator.lease_holder("L") is None and coordinator.acquire_lease("L", "b", 5)
    coordinator.release_lease("L", "b")
    assert coordinator.lease_holder("L") is None
    assert coordinator.epoch() is None
    coordinator.set_epoch("e1")
    assert coordinator.epoch() == "e1"


def test_taking_work_takes_the_lease_and_changes_the_entry_at_once(coordinator: Coordinator) -> None:
    entry = {"task": "fovea.shard", "args": ["t", "j", 3], "state": "queued", "since": 1.5, "deaths": 2}
    entry |= {"strikes": 1, "last_error": 'a "quoted" reason / with ünïcode'}
    coordinator.put_work("j", "shard:3", entry)
    taken = coordinator.take_work("j", "shard:3", "j:shard:3", "a", 5, {"state": "running", "since": 1764800000.25})
    expected = {**entry, "state": "running", "since": 1764800000.25}
    assert not taken.held_elsewhere and taken.entry == expected
    assert coordinator.work_entry("j", "shard:3") == expected and coordinator.lease_holder("j:shard:3") == "a"
    # Another worker finds it held and changes nothing; the holder may take it again.
    held = coordinator.take_work("j", "shard:3", "j:shard:3", "b", 5, {"state": "queued"})
    assert held.held_elsewhere and held.entry is None and coordinator.work_entry("j", "shard:3") == expected
    assert coordinator.take_work("j", "shard:3", "j:shard:3", "a", 5, {"deaths": 3}).entry == {**expected, "deaths": 3}
    # No longer outstanding (done already): nothing is taken, and a lease its taker held is given up.
    coordinator.drop_work("j", "shard:3")
    done = coordinator.take_work("j", "shard:3", "j:shard:3", "a", 5, {"state": "running"})
    assert not done.held_elsewhere and done.entry is None and coordinator.lease_holder("j:shard:3") is None
    assert coordinator.take_work("j", "shard:4", "j:shard:4", "a", 5, {}).entry is None
    assert coordinator.lease_holder("j:shard:4") is None and coordinator.work_entry("j", "shard:3") is None


def test_item_states_are_the_results_and_the_attempts(coordinator: Coordinator) -> None:
    coordinator.record_items("j", {0: {"status": "ok"}, 1: {"status": "failed", "error": "x"}})
    coordinator.begin_attempt("j", [1, 2, 3])
    coordinator.begin_attempt("j", [3], ended=[2])
    results, attempts = coordinator.item_states("j", [0, 1, 2, 3, 4])
    assert results == coordinator.item_results("j", [0, 1, 2, 3, 4]) and set(results) == {0, 1}
    assert attempts == coordinator.attempts("j", [0, 1, 2, 3, 4]) == {1: 1, 3: 2}
    assert coordinator.item_states("j", []) == ({}, {})
