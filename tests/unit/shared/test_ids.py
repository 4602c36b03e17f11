"""Ids list in the order they were made: a burst within one millisecond included (a tenant's jobs submitted
together list newest first in the order they were submitted), from any number of threads."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import jobs
from shared.jobs import new_id


def test_ids_made_in_a_burst_follow_each_other_in_the_order_they_were_made() -> None:
    made = [new_id("j_") for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.fullmatch(r"j_[0-9a-f]{24}", made_id) for made_id in made)
    assert len({made_id[:14] for made_id in made}) < len(made)  # many shared a millisecond


def test_a_clock_that_steps_back_does_not_reorder_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_id("j_")
    monkeypatch.setattr(jobs.time, "time", lambda: 1.0)
    assert new_id("j_") > first


def test_threads_never_make_the_same_id() -> None:
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: new_id("u_"), range(4000)))
    assert len(set(made)) == len(made)
