"""The LLM call cache: keys, resume, dedup, failures, and survival of SIGKILL at any moment."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


from plumbing.llm.cache import CachedBackend, LLMCache, cache_key
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import ChatRequest, SamplingParams
from plumbing.testing.loopback import LoopbackServer

WRITER = Path(__file__).resolve().parents[1] / "helpers" / "cache_writer.py"
REPO = Path(__file__).resolve().parents[2]


def _req(text: str, **kw) -> ChatRequest:
    return ChatRequest.of([{"role": "user", "content": text}], **kw)


def test_key_depends_on_model_messages_sampling_sample_index_and_namespace():
    base = cache_key("openai:m", _req("hi"))
    assert base == cache_key("openai:m", _req("hi"))
    variants = [
        cache_key("openai:other", _req("hi")),
        cache_key("openai:m", _req("hi!")),
        cache_key("openai:m", _req("hi", sampling=SamplingParams(temperature=0.7))),
        cache_key("openai:m", _req("hi", sampling=SamplingParams(max_tokens=7))),
        cache_key("openai:m", _req("hi", sample_index=1)),
        cache_key("openai:m", _req("hi"), namespace="rerun-2"),
        cache_key("openai:m", ChatRequest.of([{"role": "system", "content": "hi"}])),
    ]
    assert len({base, *variants}) == len(variants) + 1


def _backend(srv: LoopbackServer, path: Path) -> CachedBackend:
    return CachedBackend(OpenAIHTTPBackend(srv.base_url, "m", concurrency=8, max_retries=0), LLMCache(path))


def test_rerun_pays_nothing_and_identical_requests_are_sent_once(loopback, tmp_path):
    reqs = [_req(f"q{i % 5}") for i in range(20)]  # 5 distinct requests, each 4 times
    with _backend(loopback, tmp_path / "c.sqlite") as b:
        first = b.complete(reqs)
    assert loopback.chat_requests == 5
    assert [r.text for r in first] == [f"echo: q{i % 5}" for i in range(20)]
    with _backend(loopback, tmp_path / "c.sqlite") as b:
        again = b.complete(reqs)
        assert b.stats.cache_hits == 20
    assert loopback.chat_requests == 5  # a rerun makes no call at all
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)


def test_failures_are_not_cached_and_are_retried_on_the_next_run(loopback, tmp_path):
    reqs = [_req("fine"), _req("[fault:500x1] flaky")]
    with _backend(loopback, tmp_path / "c.sqlite") as b:
        res = b.complete(reqs)
    assert res[0].ok and not res[1].ok  # max_retries=0: the 500 is final in this run
    with _backend(loopback, tmp_path / "c.sqlite") as b:
        res = b.complete(reqs)
    assert res[0].cached and res[1].ok and not res[1].cached
    assert loopback.chat_requests == 3
    assert len(LLMCache(tmp_path / "c.sqlite")) == 2


def _ledger(path: Path) -> set:
    return set(path.read_text().split()) if path.exists() else set()


def _cache_state(path: Path) -> tuple:
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in conn.execute("SELECT key FROM calls")]
        for (v,) in conn.execute("SELECT value FROM calls"):
            assert v.startswith("{") and v.endswith("}")  # no torn rows
        return keys
    finally:
        conn.close()


def test_sigkill_at_any_moment_loses_only_calls_in_flight_and_resume_completes(tmp_path):
    n, conc = 400, 8
    cache, ledger = tmp_path / "cache.sqlite", tmp_path / "ledger.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(7)
    with LoopbackServer(latency_s=0.02) as srv:
        for round_ in range(3):  # kill the writer three times at random moments
            before = len(_cache_state(cache)) if cache.exists() else 0
            proc = subprocess.Popen([sys.executable, str(WRITER), str(cache), srv.base_url, str(n), str(ledger),
                                     str(conc)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # wait until it has made progress, then kill it mid-run
            deadline = time.monotonic() + 60
            while len(_ledger(ledger)) < before + 30 + 20 * round_ and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            keys = _cache_state(cache)
            assert len(keys) == len(set(keys))  # nothing duplicated
            assert _ledger(ledger) <= set(keys)  # everything reported as stored is there
            assert len(keys) < n, "the writer finished before it was killed; the test proved nothing"
        persisted = len(_cache_state(cache))
        srv.reset()
        done = subprocess.run([sys.executable, str(WRITER), str(cache), srv.base_url, str(n), str(ledger), str(conc)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert srv.chat_requests == n - persisted  # resume pays only for what was not stored
    keys = _cache_state(cache)
    assert len(keys) == len(set(keys)) == n


def test_identical_requests_from_many_threads_are_sent_once(tmp_path):
    import threading

    with LoopbackServer(latency_s=0.2) as srv:
        backend = _backend(srv, tmp_path / "c.sqlite")
        out = {}

        def worker(t):  # e.g. the 8 samples of one GRPO prompt writing the same rationale
            out[t] = backend.complete([_req("same rationale")])[0]

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        backend.close()
        assert srv.chat_requests == 1
    assert {r.text for r in out.values()} == {"echo: same rationale"}
    assert sum(not r.cached for r in out.values()) == 1  # one thread paid, seven waited


def test_two_processes_sharing_a_cache_pay_for_each_call_once(tmp_path):
    """Two runs on one cache file (llm.cache.path) asking the same 40 questions at once: a
    call in flight in one is waited for by the other (a lease row), not sent again; both
    get every answer."""
    n = 40
    cache = tmp_path / "cache.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with LoopbackServer(latency_s=0.3) as srv:
        procs = [subprocess.Popen([sys.executable, str(WRITER), str(cache), srv.base_url, str(n),
                                   str(tmp_path / f"ledger{i}.txt"), "4"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
        assert srv.chat_requests == n  # without leases: up to 2n
    paid = sum(int(o[0].split("calls=")[1]) for o in outs)
    assert paid == n
    assert len(_cache_state(cache)) == n


def test_a_lease_of_a_live_process_is_never_taken_and_an_answer_is_never_claimed(tmp_path):
    import os

    from plumbing import processes

    a, b = LLMCache(tmp_path / "c.sqlite"), LLMCache(tmp_path / "c.sqlite")
    parent = f"{processes.me().split(':')[0]}:{os.getppid()}:{processes.start_time(os.getppid())}"
    a.owner = parent  # a live process of this host (the test's parent) holds the lease
    assert a.claim(["k1", "k2"], ttl_s=-1) == ["k1", "k2"]  # already expired...
    assert b.claim(["k1", "k2"]) == [] and sorted(b.leased(["k1", "k2"])) == ["k1", "k2"]  # ...but its owner runs
    a.put("k1", "m", {"text": "x"})  # the owner answered: nobody pays for k1 again
    a.release(["k1"])
    assert b.claim(["k1"]) == []
    dead = f"{processes.me().split(':')[0]}:999999:12345"  # a process of this host that is gone
    a.owner = dead
    assert a.claim(["k3"]) == ["k3"] and b.claim(["k3"]) == ["k3"]
    far = "other-host/1:42:100"  # another host's: taken only once expired
    a.owner = far
    assert a.claim(["k4"], ttl_s=60) == ["k4"] and b.claim(["k4"]) == []
    a.claim(["k4"], ttl_s=-1)
    assert b.claim(["k4"]) == ["k4"]
