"""A process that fills the LLM cache through the real HTTP backend, for the SIGKILL test.

Each answer's key is appended (flush + fsync) to a ledger after the cache has stored it, so
the test knows which answers the process saw persisted before it was killed.

    python tests/helpers/cache_writer.py CACHE BASE_URL N LEDGER [CONCURRENCY]
"""

import os
import sys

from plumbing.llm.cache import CachedBackend, LLMCache, cache_key
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import ChatRequest


def requests(n):
    return [ChatRequest.of([{"role": "user", "content": f"question {i}"}]) for i in range(n)]


def main() -> None:
    cache_path, base_url, n, ledger = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    conc = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    inner = OpenAIHTTPBackend(base_url, "m", concurrency=conc, timeout_s=30, max_retries=0)
    backend = CachedBackend(inner, LLMCache(cache_path))
    reqs = requests(n)
    keys = [cache_key(inner.model_id, r) for r in reqs]
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def on_result(i, res):
        if res.ok and not res.cached:
            os.write(fd, (keys[i] + "\n").encode())
            os.fsync(fd)

    results = backend.complete(reqs, on_result=on_result)
    assert all(r.ok for r in results)
    print(f"done calls={inner.stats.requests}", flush=True)


if __name__ == "__main__":
    main()
