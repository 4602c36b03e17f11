"""The read-ahead thread of the shard runner: order, errors, bounded memory, and clean early exits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from worker.runtime.prefetch import Prefetch


def test_order_is_kept_and_everything_arrives() -> None:
    assert list(Prefetch(range(1000), depth=7)) == list(range(1000))
    assert list(Prefetch([], depth=3)) == []


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("storage went away")

    seen = []
    with pytest.raises(OSError, match="storage went away"):
        for value in Prefetch(source(), depth=4):
            seen.append(value)
    assert seen == [1, 2]


def test_reading_ahead_is_bounded_and_work_overlaps() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    stream = Prefetch(source(), depth=5)
    assert next(stream) == 0
    time.sleep(0.3)  # the producer runs ahead while the consumer "computes"
    assert 3 <= len(produced) <= 1 + 5 + 1  # the item taken, a full queue, one waiting to be put
    assert list(stream) == list(range(1, 100))


def _telling_when_closed(closed: threading.Event) -> Iterator[int]:
    try:
        yield from range(10_000)
    finally:
        closed.set()


def _no_producer_left() -> bool:
    return not any(t.name == "fovea-prefetch" and t.is_alive() for t in threading.enumerate())


def test_leaving_early_closes_the_source_on_its_thread() -> None:
    closed = threading.Event()
    with Prefetch(_telling_when_closed(closed), depth=2) as stream:
        for value in stream:
            if value == 3:
                break
    assert closed.wait(5)
    assert _no_producer_left()


def test_reading_starts_before_the_first_value_is_asked_for() -> None:
    started = threading.Event()

    def source() -> Iterator[int]:
        started.set()
        yield 1

    with Prefetch(source(), depth=2) as stream:
        assert started.wait(5)  # nobody has asked yet: the first batch is read during the bookkeeping
        assert list(stream) == [1]


def test_closing_before_reading_stops_the_producer_and_closes_its_source() -> None:
    closed = threading.Event()
    Prefetch(_telling_when_closed(closed), depth=2).close()
    assert closed.wait(5)
    assert _no_producer_left()
