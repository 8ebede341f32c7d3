"""Persistent, crash-safe cache of LLM calls: a rerun never pays twice for the same call.

Storage is sqlite in WAL mode with one autocommitted row per finished call, written the
moment the call returns. A process killed at any instant (SIGKILL included) loses at most
the calls that were in flight; committed rows survive and the file is never left corrupt
(WAL recovery runs on the next open). Several threads and processes on one host may share a
cache file: a call in flight in one of them (a lease row, freed when it ends, taken over when
its process is gone or after ``LEASE_TTL_S``) is waited for by the others, not paid twice. On a shared network filesystem give each node its own file (sqlite's WAL needs
shared memory on one host).

The key hashes (backend model identity, namespace, messages, sampling params, sample
index). Only successful answers are stored: failures are retried on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

from plumbing import processes
from plumbing.errors import SuiteError
from plumbing.llm.types import ChatRequest, ChatResult, FailureKind, LLMBackend, OnResult

log = logging.getLogger(__name__)
KEY_VERSION = 1


def cache_key(model_id: str, request: ChatRequest, namespace: str = "") -> str:
    payload = {
        "v": KEY_VERSION,
        "model": model_id,
        "ns": namespace,
        "messages": [[m["role"], m["content"]] for m in request.messages],
        "sampling": request.sampling.as_dict(),
        "sample_index": request.sample_index,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def model_fingerprint(path: str) -> str:
    """Short hash of a local model directory's files (name, size, mtime), '' for hub ids.

    Part of the model identity, so retraining into the same directory invalidates old answers.
    """
    p = Path(path)
    if not p.is_dir():
        return ""
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".model", ".jinja"}:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


LEASE_TTL_S = 900.0  # a lease outlives any one call (retries included); a crashed owner's expires
POLL_S = 0.25


class LLMCache:
    """Key → answer store. Thread-safe; one sqlite connection per instance."""

    def __init__(self, path: str | os.PathLike, synchronous: str = "NORMAL"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA busy_timeout=60000")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
            "value TEXT NOT NULL, created REAL NOT NULL)"
        )
        # A call in flight in some process: others wait for its answer instead of paying again.
        self._conn.execute("CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                           "expires REAL NOT NULL)")
        self.owner = processes.me()

    # -- leases: which process pays for a call
    def claim(self, keys: Iterable[str], ttl_s: float = LEASE_TTL_S) -> List[str]:
        """The keys this process now holds the lease of: free, ours, held by a process of this
        host that is gone, or (another host's) expired; not those answered meanwhile. A lease
        of a live process on this host is never taken, however long its call runs. Without a
        working lease table every key is ours (paid here, as without leases)."""
        keys = list(keys)
        now = time.time()
        got = []
        try:
            with self._lock, self._transaction():
                answered = set()
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    answered |= {k for (k,) in self._conn.execute(
                        f"SELECT key FROM calls WHERE key IN ({','.join('?' * len(chunk))})", chunk)}
                for k in keys:
                    if k in answered:
                        continue
                    row = self._conn.execute("SELECT owner, expires FROM leases WHERE key = ?", (k,)).fetchone()
                    free = (row is None or row[0] == self.owner or processes.gone(row[0])
                            or (row[1] < now and not processes.local(row[0])))
                    if free:
                        self._conn.execute("INSERT OR REPLACE INTO leases (key, owner, expires) VALUES (?, ?, ?)",
                                           (k, self.owner, now + ttl_s))
                        got.append(k)
        except sqlite3.Error as e:
            log.warning("LLM cache leases unavailable (%s); these calls are sent from here", e)
            return [k for k in keys if k not in set(self.get_many(keys))] if keys else []
        return got

    def release(self, keys: Iterable[str]) -> None:
        try:
            with self._lock, self._transaction():
                self._conn.executemany("DELETE FROM leases WHERE key = ? AND owner = ?",
                                       [(k, self.owner) for k in keys])
        except sqlite3.Error as e:  # a lease left behind is taken over once this process is gone
            log.warning("LLM cache lease release failed (%s)", e)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction for a batch of lease rows (not one per key)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def leased(self, keys: Iterable[str]) -> List[str]:
        """Of ``keys``, those held by a live process (on this host: however old the lease)."""
        keys = list(keys)
        now = time.time()
        try:
            with self._lock:
                rows = []
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    rows += self._conn.execute(
                        f"SELECT key, owner, expires FROM leases WHERE key IN ({','.join('?' * len(chunk))})",
                        chunk).fetchall()
        except sqlite3.Error:
            return []
        return [k for k, owner, expires in rows
                if not processes.gone(owner) and (expires >= now or processes.local(owner))]

    def get_many(self, keys: Iterable[str]) -> Dict[str, Dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        out: Dict[str, Dict[str, Any]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._conn.execute(q, chunk):
                    out[k] = json.loads(v)
        return out

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        return self.get_many([key]).get(key)

    def put(self, key: str, model: str, value: Dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO calls (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model, blob, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass


class CachedBackend(LLMBackend):
    """Serves answers from the cache and sends only misses to ``inner``: each distinct request
    once, also across threads (a request already in flight on another thread is waited for,
    not sent again: the n samples of one GRPO prompt often repeat a rationale)."""

    def __init__(self, inner: LLMBackend, cache: LLMCache, namespace: str = ""):
        super().__init__()
        self.inner = inner
        self.cache = cache
        self.namespace = namespace
        self.model_id = inner.model_id
        self._inflight: Dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # expose the inner backend's settings
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        keys = [cache_key(self.model_id, r, self.namespace) for r in requests]
        hits = self.cache.get_many(keys)
        results: List[Optional[ChatResult]] = [None] * len(requests)
        waiting: Dict[str, List[int]] = defaultdict(list)
        for i, k in enumerate(keys):
            if k in hits:
                results[i] = ChatResult.from_cache(hits[k])
                on_result(i, results[i])
            else:
                waiting[k].append(i)
        with self._lock:
            theirs = {k: self._inflight[k] for k in waiting if k in self._inflight}
            candidates = [k for k in waiting if k not in theirs]
            events = {k: threading.Event() for k in candidates}
            self._inflight.update(events)
        mine = self.cache.claim(candidates)  # the others are in flight in another process (or just answered)
        claimed = set(mine)
        elsewhere = [k for k in candidates if k not in claimed]
        index = {k: j for j, k in enumerate(mine)}

        def _deliver(key: str, res: ChatResult, paid: bool) -> None:
            for n, i in enumerate(waiting[key]):
                first = paid and n == 0
                results[i] = res if first else ChatResult(**{**res.__dict__, "cached": True, "attempts": 0})
                on_result(i, results[i])

        def _answered(key: str, res: ChatResult, paid: bool = False) -> None:
            """Give the key's answer to its requests and to the threads waiting on it."""
            _deliver(key, res, paid=paid)
            with self._lock:
                ev = self._inflight.pop(key, None)
            if ev is not None:
                ev.result = res  # type: ignore[attr-defined]
                ev.set()

        def _done(j: int, res: ChatResult) -> None:
            key = mine[j]
            if res.ok:
                try:
                    self.cache.put(key, self.model_id, res.to_cache())
                except sqlite3.Error as e:  # a full disk must not lose the answer in hand
                    log.warning("LLM cache write failed (%s); continuing without caching", e)
            self.cache.release([key])
            _answered(key, res, paid=True)

        raised: Optional[BaseException] = None
        try:
            if mine:
                self.inner.complete([requests[waiting[k][0]] for k in mine], on_result=_done, progress=progress)
            while elsewhere:  # another process is paying for these: wait for its answers
                time.sleep(POLL_S)
                answered = self.cache.get_many(elsewhere)
                for k, value in answered.items():
                    _answered(k, ChatResult.from_cache(value))
                pending = [k for k in elsewhere if k not in answered]
                orphaned = set(pending) - set(self.cache.leased(pending))  # its owner failed or is gone
                retry = self.cache.claim(orphaned) if orphaned else []
                for k in retry:
                    index[k] = len(mine)
                    mine.append(k)
                taken = set(retry)
                elsewhere = [k for k in pending if k not in taken]
                if retry:
                    self.inner.complete([requests[waiting[k][0]] for k in retry],
                                        on_result=lambda j, r, ks=retry: _done(index[ks[j]], r), progress=False)
        except BaseException as e:
            raised = e
            raise
        finally:  # never leave another thread waiting on a key this call did not finish
            with self._lock:
                unfinished = [(k, self._inflight.pop(k)) for k in candidates if self._inflight.get(k) is events[k]]
            for k, ev in unfinished:
                ev.result = ChatResult.failure(FailureKind.BACKEND_ERROR, "the call that owned this request ended")  # type: ignore[attr-defined]
                ev.error = raised if isinstance(raised, SuiteError) else None  # type: ignore[attr-defined]
                ev.set()
            self.cache.release(mine)
        for key, ev in theirs.items():
            ev.wait()
            if getattr(ev, "error", None) is not None:  # e.g. the model does not load: not a scored failure
                raise ev.error  # type: ignore[attr-defined]
            _deliver(key, ev.result, paid=False)  # type: ignore[attr-defined]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close()
