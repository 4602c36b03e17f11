"""Ids list in the order they were made, a burst included: no two ids of a process share a millisecond, so
a tenant's jobs submitted together list in order newest first (by inverted time) and oldest first (by
id); from any number of threads."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import jobs
from shared.jobs import new_id


def test_ids_made_in_a_burst_each_take_their_own_millisecond_in_order() -> None:
    made = [new_id("j_") for _ in range(200)]  # (a few hundred: each burst puts this process's ids ahead)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.fullmatch(r"j_[0-9a-f]{24}", made_id) for made_id in made)
    assert len({made_id[:14] for made_id in made}) == len(made)  # each its own millisecond


def test_a_clock_that_steps_back_does_not_reorder_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_id("j_")
    monkeypatch.setattr(jobs.time, "time", lambda: 1.0)
    assert new_id("j_") > first


def test_threads_never_make_the_same_id() -> None:
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: new_id("u_"), range(300)))
    assert len(set(made)) == len(made)
