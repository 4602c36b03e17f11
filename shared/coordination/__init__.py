"""Live job coordination: status compare-and-set, progress, cancel flags, shard completion, idempotency.

Two backends with one interface: Redis (distributed) and SQLite (embedded default, and the in-process
twin for tests). The object store holds the durable record; this holds what changes every batch.
"""

from shared.coordination.base import Coordinator, TakenWork
from shared.coordination.factory import open_coordinator

__all__ = ["Coordinator", "TakenWork", "open_coordinator"]
