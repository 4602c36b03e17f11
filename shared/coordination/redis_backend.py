"""Redis coordinator. Multi-key updates are Lua scripts, so a crash never leaves half an update."""

from __future__ import annotations

import json
from typing import Any

import redis

from shared.coordination.base import Coordinator, LiveProgress
from shared.errors import Retryable

TTL_S = 14 * 86400

# KEYS: items hash, counts hash. ARGV: ttl, then (index, json, ok_flag) triples.
_RECORD = """
local added = 0
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 2] == '1' and 'done' or 'failed', 1)
    added = added + 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[2], ARGV[1])
return added
"""

# KEYS: status key. ARGV: new status, ttl, allowed previous statuses...
_CAS = """
local current = redis.call('GET', KEYS[1])
if #ARGV > 2 and current then
  local ok = false
  for i = 3, #ARGV do if ARGV[i] == current then ok = true end end
  if not ok then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _k(job: str, part: str) -> str:
    return f"fovea:job:{job}:{part}"


class RedisCoordinator(Coordinator):
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._record = self.client.register_script(_RECORD)
        self._cas = self.client.register_script(_CAS)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise Retryable(f"coordinator unavailable: {exc}") from exc

    def ping(self) -> None:
        self._call(self.client.ping)

    def get_status(self, job: str) -> str | None:
        value = self._call(self.client.get, _k(job, "status"))
        return value.decode() if value else None

    def set_status(self, job: str, status: str, only_from: frozenset[str] | None = None) -> bool:
        allowed = sorted(only_from) if only_from is not None else []
        if only_from is not None and not allowed:
            return False
        return bool(self._call(self._cas, keys=[_k(job, "status")], args=[status, TTL_S, *allowed]))

    def set_plan(self, job: str, total: int, shards: int) -> None:
        key = _k(job, "plan")
        self._call(self.client.hset, key, mapping={"total": total, "shards": shards})
        self._call(self.client.expire, key, TTL_S)

    def record_items(self, job: str, results: dict[int, dict[str, Any]]) -> None:
        if not results:
            return
        args: list[Any] = [TTL_S]
        for index, result in results.items():
            args += [index, json.dumps(result), "1" if result.get("status") == "ok" else "0"]
        self._call(self._record, keys=[_k(job, "items"), _k(job, "counts")], args=args)

    def item_results(self, job: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        if not indices:
            return {}
        values = self._call(self.client.hmget, _k(job, "items"), indices)
        return {i: json.loads(v) for i, v in zip(indices, values, strict=True) if v is not None}

    def begin_attempt(self, job: str, indices: list[int]) -> None:
        pipe = self.client.pipeline()
        for index in indices:
            pipe.hincrby(_k(job, "attempts"), str(index), 1)
        pipe.expire(_k(job, "attempts"), TTL_S)
        self._call(pipe.execute)

    def attempts(self, job: str, indices: list[int]) -> dict[int, int]:
        if not indices:
            return {}
        values = self._call(self.client.hmget, _k(job, "attempts"), indices)
        return {i: int(v) for i, v in zip(indices, values, strict=True) if v is not None}

    def count_delivery(self, job: str, shard: int) -> int:
        count = self._call(self.client.hincrby, _k(job, "deliveries"), str(shard), 1)
        self._call(self.client.expire, _k(job, "deliveries"), TTL_S)
        return int(count)

    def mark_shard_done(self, job: str, shard: int) -> int:
        pipe = self.client.pipeline()
        pipe.sadd(_k(job, "shards_done"), shard)
        pipe.expire(_k(job, "shards_done"), TTL_S)
        pipe.scard(_k(job, "shards_done"))
        return int(self._call(pipe.execute)[-1])

    def progress(self, job: str) -> LiveProgress | None:
        pipe = self.client.pipeline()
        pipe.hgetall(_k(job, "plan"))
        pipe.hgetall(_k(job, "counts"))
        pipe.scard(_k(job, "shards_done"))
        plan, counts, shards_done = self._call(pipe.execute)
        if not plan and not counts:
            return None
        return LiveProgress(
            total=int(plan[b"total"]) if b"total" in plan else None,
            done=int(counts.get(b"done", 0)),
            failed=int(counts.get(b"failed", 0)),
            shards=int(plan[b"shards"]) if b"shards" in plan else None,
            shards_done=int(shards_done),
        )

    def claim(self, name: str, ttl_s: int = 7 * 86400) -> bool:
        return bool(self._call(self.client.set, f"fovea:claim:{name}", 1, nx=True, ex=ttl_s))

    def remember(self, name: str, value: str, ttl_s: int = 86400) -> str | None:
        key = f"fovea:memo:{name}"
        if self._call(self.client.set, key, value, nx=True, ex=ttl_s):
            return None
        existing = self._call(self.client.get, key)
        return existing.decode() if existing is not None else None
