"""OpenAI-compatible chat completions over HTTP (vllm serve, transformers serve, hosted APIs).

The client is aiohttp: against a loopback server httpx 0.28 sustained ~250 requests/s on
this 2-core machine and reached 0.24 of the server-bound ideal at 64 in flight, aiohttp
~4,800 requests/s and 0.96 (benchmarks/RESULTS.md). One asyncio loop in a daemon thread
owns a keep-alive connection pool, so any number of
caller threads share one concurrency bound and one pool. Each request gets a total deadline,
and timeouts, 429, 5xx, dropped connections and malformed bodies are retried with
exponential backoff and full jitter (``Retry-After`` honoured, capped). Whatever happens, an
item ends as a success or a typed failure; nothing is raised to the caller.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import aiohttp

from plumbing.llm.cache import model_fingerprint
from plumbing.llm.types import (
    RETRYABLE, ChatRequest, ChatResult, FailureKind, LLMBackend, OnResult,
)


class OpenAIHTTPBackend(LLMBackend):
    over_http = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: Optional[str] = None,
        concurrency: int = 64,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 20.0,
        chat_template_kwargs: Optional[Dict[str, Any]] = None,
        extra_body: Optional[Dict[str, Any]] = None,
        rng: Optional[random.Random] = None,
    ):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/chat/completions"
        self.model = model
        fp = model_fingerprint(model)
        self.model_id = f"openai:{model}" + (f"@{fp}" if fp else "")
        self._api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.extra_body = dict(extra_body or {})
        self._rng = rng or random.Random()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._client: Optional[aiohttp.ClientSession] = None
        self._sem: Optional[asyncio.Semaphore] = None
        self._start_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, params: Any) -> "OpenAIHTTPBackend":
        from plumbing.llm.registry import resolve_api_key

        return cls(cfg.base_url, cfg.model, api_key=resolve_api_key(cfg), concurrency=cfg.concurrency,
                   timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                   backoff_initial_s=cfg.backoff_initial_s, backoff_max_s=cfg.backoff_max_s,
                   chat_template_kwargs=cfg.chat_template_kwargs)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIHTTPBackend(base_url={self.base_url!r}, model={self.model!r})"

    # ------------------------------------------------------------------ event loop thread
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def _run() -> None:
                asyncio.set_event_loop(loop)
                headers = {"Content-Type": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"

                async def _open() -> aiohttp.ClientSession:
                    connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency,
                                                     keepalive_timeout=60.0)
                    return aiohttp.ClientSession(headers=headers, connector=connector,
                                                 timeout=aiohttp.ClientTimeout(total=self.timeout_s))

                self._client = loop.run_until_complete(_open())
                self._sem = asyncio.Semaphore(self.concurrency)
                ready.set()
                loop.run_forever()

            self._thread = threading.Thread(target=_run, name="llm-http-loop", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
            return loop

    def close(self) -> None:
        with self._start_lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._client is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._client.close(), loop).result(timeout=10)
            except Exception:
                pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    # ------------------------------------------------------------------ public
    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("complete() called from the backend's own event loop thread")
        bar = _progress(len(requests), progress, self.model.rstrip("/").rsplit("/", 1)[-1])
        fut = asyncio.run_coroutine_threadsafe(self._batch(requests, on_result, bar), loop)
        try:
            return fut.result()
        finally:
            if bar is not None:
                bar.close()

    async def _batch(self, requests: Sequence[ChatRequest], on_result: OnResult, bar: Any) -> List[ChatResult]:
        async def one(i: int, req: ChatRequest) -> ChatResult:
            res = await self._request(req)
            try:
                on_result(i, res)
            except Exception:  # a faulty callback must not turn into a lost result
                pass
            if bar is not None:
                bar.update(1)
            return res

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))

    # ------------------------------------------------------------------ one request
    def payload(self, req: ChatRequest) -> Dict[str, Any]:
        s = req.sampling
        body: Dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in req.messages],
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.seed is not None:
            body["seed"] = s.seed + req.sample_index
        if s.stop:
            body["stop"] = list(s.stop)
        if self.chat_template_kwargs:
            body["chat_template_kwargs"] = self.chat_template_kwargs
        body.update(self.extra_body)
        return body

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        cap = min(self.backoff_max_s, self.backoff_initial_s * (2 ** attempt))
        delay = self._rng.uniform(0, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    async def _post(self, data: bytes) -> Tuple[int, str, Optional[str]]:
        assert self._client is not None
        async with self._client.post(self._url, data=data) as resp:
            return resp.status, await resp.text(errors="replace"), resp.headers.get("Retry-After")

    def _unechoed(self, text: str) -> str:
        """A server's answer or error with this backend's key masked: a server (or a proxy)
        may echo the Authorization header, and whatever it says is written to samples."""
        if not self._api_key or not text:
            return text
        from plumbing.secrets import MASK

        return text.replace(self._api_key, MASK)

    async def _request(self, req: ChatRequest) -> ChatResult:
        assert self._client is not None and self._sem is not None
        data = json.dumps(self.payload(req)).encode()
        start = time.monotonic()
        last: Tuple[FailureKind, str] = (FailureKind.BACKEND_ERROR, "not attempted")
        attempts = 0
        for attempt in range(self.max_retries + 1):
            attempts = attempt + 1
            retry_after: Optional[float] = None
            async with self._sem:
                try:
                    status, text, retry_header = await asyncio.wait_for(self._post(data), self.timeout_s)
                except asyncio.TimeoutError as e:
                    last = (FailureKind.TIMEOUT, f"no answer within {self.timeout_s}s ({type(e).__name__})")
                except (aiohttp.ClientError, OSError) as e:
                    last = (FailureKind.CONNECTION, self._unechoed(f"{type(e).__name__}: {e}"))
                except Exception as e:  # anything else from the client library
                    last = (FailureKind.BACKEND_ERROR, self._unechoed(f"{type(e).__name__}: {e}"))
                else:
                    result = parse_response(status, self._unechoed(text), retry_header)
                    if isinstance(result, ChatResult):
                        result.attempts = attempts
                        result.latency_s = time.monotonic() - start
                        return result
                    last, retry_after = result
            if last[0] not in RETRYABLE or attempt == self.max_retries:
                break
            await asyncio.sleep(self._backoff(attempt, retry_after))
        return ChatResult.failure(last[0], last[1], attempts, time.monotonic() - start)


def parse_response(status: int, text: str, retry_after: Optional[str] = None) -> Any:
    """A ChatResult on success, else ((kind, detail), seconds to wait or None)."""
    if status != 200:
        detail = f"HTTP {status}: {text[:200]}"
        wait = _retry_after(retry_after)
        if status == 429:
            return (FailureKind.RATE_LIMITED, detail), wait
        if status == 408:
            return (FailureKind.TIMEOUT, detail), wait
        if status >= 500:
            return (FailureKind.SERVER_ERROR, detail), wait
        return (FailureKind.CLIENT_ERROR, detail), None
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        msg = choice["message"]
        content = msg.get("content")
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if not isinstance(content, (str, type(None))) or not isinstance(reasoning, (str, type(None))):
            raise TypeError("message content is not text")
        # Servers with a reasoning parser split the thinking out; keep the raw shape.
        out = f"<think>\n{reasoning}\n</think>\n\n{content or ''}" if reasoning else (content or "")
        usage = data.get("usage") or {}
        return ChatResult(
            text=out,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        return (FailureKind.MALFORMED, f"{type(e).__name__}: {e}; body: {text[:200]!r}"), None


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"LLM {desc}"[:40], unit="req", dynamic_ncols=True)
