"""What the reconciler asks of the broker: how many messages wait in the queue, and whether the broker
still holds what it held (a sentinel key that a Redis restarted without persistence no longer has).

kombu's own ``queue_declare`` gives the message count for every transport (Redis sums its priority
lists; the filesystem transport counts its files). Not passive: Redis has no key for an empty queue, and a
passive declaration of it fails; declaring the queue the workers consume is harmless. The filesystem broker keeps its messages on
disk with the coordinator beside them, so it is never "lost" on its own: it has no sentinel.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared.errors import Retryable
from shared.queueing import QUEUES

SENTINEL = "fovea:broker-sentinel"


class BrokerProbe:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def _call(self, fn: Any) -> Any:
        try:
            with self.app.connection_for_read() as connection:
                return fn(connection.default_channel)
        except Exception as exc:  # kombu and redis raise many types when the broker is away
            raise Retryable(f"broker unavailable ({type(exc).__name__})") from exc

    def queued(self, queue: str | None = None) -> int:
        """Messages waiting in ``queue``, or in every queue of Fovea's (not those a worker has taken)."""
        names = [queue] if queue else list(QUEUES.values())
        return sum(int(self._call(lambda channel, q=q: channel.queue_declare(queue=q).message_count)) for q in names)

    def has_state(self) -> bool:
        """False when the broker has lost its messages since the sentinel was set."""
        return bool(self._call(lambda channel: _redis(channel) is None or _redis(channel).exists(SENTINEL)))

    def mark_state(self) -> None:
        self._call(lambda channel: _redis(channel) is not None and _redis(channel).set(SENTINEL, "1"))


def _redis(channel: Any) -> Any:
    """The Redis client of a Redis channel; None for other transports."""
    return getattr(channel, "client", None) if type(channel).__module__.startswith("kombu.transport.redis") else None
