"""Redis coordinator. Multi-key updates are Lua scripts, so a crash never leaves half an update."""

from __future__ import annotations

import json
from typing import Any

import redis

from shared.coordination.base import Coordinator, LiveProgress, TakenWork
from shared.errors import Retryable

TTL_S = 14 * 86400

# KEYS: items hash, counts hash. ARGV: ttl, then (index, json, ok_flag) triples. Returns the indices added.
_RECORD = """
local added = {}
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 2] == '1' and 'done' or 'failed', 1)
    added[#added + 1] = ARGV[i]
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[2], ARGV[1])
return added
"""

# KEYS: work hash, set of jobs with work. ARGV: task id, job.
_DROP_WORK = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: lease. ARGV: owner, ttl in ms. Take it if free, or extend it if already ours.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: lease. ARGV: owner, ttl in ms (0: release). Only the holder may renew or release.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: lease, work hash. ARGV: owner, ttl in ms, task id, changes (a JSON object). Returns {0} when another
# owner holds the lease, {1} when the task is no longer outstanding (the lease is not kept), else {2, entry}.
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0} end
local raw = redis.call('HGET', KEYS[2], ARGV[3])
if not raw then
  if holder then redis.call('DEL', KEYS[1]) end
  return {1}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local entry = cjson.decode(raw)
for name, value in pairs(cjson.decode(ARGV[4])) do entry[name] = value end
local updated = cjson.encode(entry)
redis.call('HSET', KEYS[2], ARGV[3], updated)
return {2, updated}
"""

# KEYS: attempts hash. ARGV: ttl, how many ended, the ended, then the begun. One command and one reply a batch,
# where a MULTI of one command per item sent and parsed one per item on the pool child's busy main thread.
_BEGIN = """
local ended = tonumber(ARGV[2])
for i = 3, 2 + ended do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 3 + ended, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
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


_WORK_JOBS = "fovea:work-jobs"
_LEASE = "fovea:lease:"
_EPOCH = "fovea:epoch"


def _k(job: str, part: str) -> str:
    return f"fovea:job:{job}:{part}"


class RedisCoordinator(Coordinator):
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._record = self.client.register_script(_RECORD)
        self._cas = self.client.register_script(_CAS)
        self._drop_work = self.client.register_script(_DROP_WORK)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._take = self.client.register_script(_TAKE)
        self._begin = self.client.register_script(_BEGIN)

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

    def record_items(self, job: str, results: dict[int, dict[str, Any]]) -> list[int]:
        if not results:
            return []
        args: list[Any] = [TTL_S]
        for index, result in results.items():
            args += [index, json.dumps(result), "1" if result.get("status") == "ok" else "0"]
        added = self._call(self._record, keys=[_k(job, "items"), _k(job, "counts")], args=args)
        return [int(index) for index in added]

    def item_results(self, job: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        if not indices:
            return {}
        values = self._call(self.client.hmget, _k(job, "items"), indices)
        return {i: json.loads(v) for i, v in zip(indices, values, strict=True) if v is not None}

    def forget_items(self, job: str, indices: list[int]) -> None:
        if indices:
            pipe = self.client.pipeline()
            pipe.hdel(_k(job, "items"), *[str(i) for i in indices])
            pipe.hdel(_k(job, "attempts"), *[str(i) for i in indices])
            self._call(pipe.execute)

    def begin_attempt(self, job: str, indices: list[int], ended: list[int] | None = None) -> None:
        ended = ended or []
        self._call(self._begin, keys=[_k(job, "attempts")], args=[TTL_S, len(ended), *ended, *indices])

    def attempts(self, job: str, indices: list[int]) -> dict[int, int]:
        if not indices:
            return {}
        values = self._call(self.client.hmget, _k(job, "attempts"), indices)
        return {i: int(v) for i, v in zip(indices, values, strict=True) if v is not None}

    def item_states(self, job: str, indices: list[int]) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
        if not indices:
            return {}, {}
        pipe = self.client.pipeline(transaction=False)  # two reads: one round trip, no MULTI needed
        pipe.hmget(_k(job, "items"), indices)
        pipe.hmget(_k(job, "attempts"), indices)
        results, attempts = self._call(pipe.execute)
        return (
            {i: json.loads(v) for i, v in zip(indices, results, strict=True) if v is not None},
            {i: int(v) for i, v in zip(indices, attempts, strict=True) if v is not None},
        )

    def mark_shard_done(self, job: str, shard: int, ok: int, failed: int) -> int:
        pipe = self.client.pipeline()
        pipe.hset(_k(job, "shard_counts"), str(shard), f"{ok},{failed}")
        pipe.expire(_k(job, "shard_counts"), TTL_S)
        pipe.hlen(_k(job, "shard_counts"))
        return int(self._call(pipe.execute)[-1])

    def shard_counts(self, job: str) -> dict[int, tuple[int, int]]:
        found = self._call(self.client.hgetall, _k(job, "shard_counts"))
        out: dict[int, tuple[int, int]] = {}
        for shard, value in found.items():
            ok, failed = value.split(b",")
            out[int(shard)] = (int(ok), int(failed))
        return out

    def progress(self, job: str) -> LiveProgress | None:
        pipe = self.client.pipeline()
        pipe.hgetall(_k(job, "plan"))
        pipe.hgetall(_k(job, "counts"))
        pipe.hlen(_k(job, "shard_counts"))
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

    def put_work(self, job: str, task_id: str, entry: dict[str, Any]) -> None:
        pipe = self.client.pipeline()
        pipe.hset(_k(job, "work"), task_id, json.dumps(entry))
        pipe.expire(_k(job, "work"), TTL_S)
        pipe.sadd(_WORK_JOBS, job)
        self._call(pipe.execute)

    def drop_work(self, job: str, task_id: str) -> None:
        self._call(self._drop_work, keys=[_k(job, "work"), _WORK_JOBS], args=[task_id, job])

    def work(self, job: str) -> dict[str, dict[str, Any]]:
        entries = self._call(self.client.hgetall, _k(job, "work"))
        return {k.decode(): json.loads(v) for k, v in entries.items()}

    def work_entry(self, job: str, task_id: str) -> dict[str, Any] | None:
        raw = self._call(self.client.hget, _k(job, "work"), task_id)
        return None if raw is None else dict(json.loads(raw))

    def take_work(
        self, job: str, task_id: str, lease: str, owner: str, ttl_s: float, changes: dict[str, Any]
    ) -> TakenWork:
        ttl_ms = max(1, int(ttl_s * 1000))
        args = [owner, ttl_ms, task_id, json.dumps(changes)]
        found = self._call(self._take, keys=[_LEASE + lease, _k(job, "work")], args=args)
        if int(found[0]) == 0:
            return TakenWork(held_elsewhere=True, entry=None)
        return TakenWork(held_elsewhere=False, entry=dict(json.loads(found[1])) if int(found[0]) == 2 else None)

    def jobs_with_work(self) -> list[str]:
        return sorted(v.decode() for v in self._call(self.client.smembers, _WORK_JOBS))

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        return bool(self._call(self._acquire, keys=[_LEASE + name], args=[owner, max(1, int(ttl_s * 1000))]))

    def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        return bool(self._call(self._renew, keys=[_LEASE + name], args=[owner, max(1, int(ttl_s * 1000))]))

    def release_lease(self, name: str, owner: str) -> None:
        self._call(self._renew, keys=[_LEASE + name], args=[owner, 0])

    def lease_holder(self, name: str) -> str | None:
        value = self._call(self.client.get, _LEASE + name)
        return value.decode() if value is not None else None

    def epoch(self) -> str | None:
        value = self._call(self.client.get, _EPOCH)
        return value.decode() if value is not None else None

    def set_epoch(self, value: str) -> None:
        self._call(self.client.set, _EPOCH, value)

    def claim(self, name: str, ttl_s: int = 7 * 86400) -> bool:
        return bool(self._call(self.client.set, f"fovea:claim:{name}", 1, nx=True, ex=ttl_s))

    def remember(self, name: str, value: str, ttl_s: int = 86400) -> str | None:
        key = f"fovea:memo:{name}"
        if self._call(self.client.set, key, value, nx=True, ex=ttl_s):
            return None
        existing = self._call(self.client.get, key)
        return existing.decode() if existing is not None else None
