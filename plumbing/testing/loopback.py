"""A loopback OpenAI-compatible chat server with scripted latency, concurrency and faults.

For tests and benchmarks: real HTTP/1.1 over a real socket (keep-alive, Content-Length),
so the client under test speaks its real protocol. Faults a real model server cannot
produce on demand are triggered by a marker in the last message:

    [fault:500]       always HTTP 500            [fault:500x2]  500 twice, then answer
    [fault:429x1]     HTTP 429 with Retry-After: 0 once, then answer
    [fault:hang]      never answers (client times out)
    [fault:malformed] HTTP 200 with a body that is not JSON
    [fault:nochoices] HTTP 200 JSON without "choices"
    [fault:drop]      closes the connection without answering
    [fault:echoauth]  HTTP 401 whose body echoes the Authorization header it got
    [fault:echoauthok] HTTP 200 whose answer quotes the Authorization header
    [fault:400]       HTTP 400 (not retryable)
    [fault:length]    HTTP 200, the answer's first half, finish_reason "length" (hit max_tokens)

The answer text comes from ``responder(body) -> str`` (default: echo the last message).
Each request waits ``latency_s`` while holding one of ``max_inflight`` slots, so N requests
take at least N * latency_s / max_inflight.

    python -m plumbing.testing.loopback --port 8011 --latency 0.05 --max-inflight 64 \
        [--responder genrm.testing:rule_responder]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
import uuid
from collections import Counter
from typing import Any, Callable, Dict, Optional, Tuple

_FAULT = re.compile(r"\[fault:([a-z0-9]+?)(?:x(\d+))?\]")
Responder = Callable[[Dict[str, Any]], str]


def echo(body: Dict[str, Any]) -> str:
    return f"echo: {body['messages'][-1]['content']}"


class LoopbackServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0,
                 max_inflight: int = 1_000_000, responder: Responder = echo):
        self.host, self.port = host, port
        self.latency_s = latency_s
        self.max_inflight = max_inflight
        self.responder = responder
        self.counts: Counter = Counter()  # requests per path and per fault kind
        self.attempts: Counter = Counter()  # per faulted message content
        self.inflight = 0
        self.max_seen_inflight = 0
        self.chat_requests = 0
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._sem: Optional[asyncio.Semaphore] = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        ready = threading.Event()

        def _run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._sem = asyncio.Semaphore(self.max_inflight)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=4096)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=_run, name="loopback-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def _shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *a: Any) -> None:
        self.stop()

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {"chat_requests": self.chat_requests, "max_inflight_seen": self.max_seen_inflight,
                    "counts": dict(self.counts)}

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.attempts.clear()
            self.chat_requests = 0
            self.max_seen_inflight = 0

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep = await self._route(method, path, body, writer, headers)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: str = "") -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error"}.get(status, "Status")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n{extra}\r\n".encode() + payload
        )

    async def _route(self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter,
                     headers: Optional[Dict[str, str]] = None) -> bool:
        if method == "GET" and path == "/health":
            self._send(writer, 200, b'{"status":"ok"}')
        elif method == "GET" and path == "/stats":
            self._send(writer, 200, json.dumps(self.stats()).encode())
        elif method == "POST" and path == "/v1/chat/completions":
            return await self._chat(raw, writer, headers or {})
        else:
            self._send(writer, 404, b'{"error":"not found"}')
        await writer.drain()
        return True

    def _fault(self, body: Dict[str, Any]) -> Tuple[Optional[str], str]:
        content = str(body["messages"][-1]["content"])
        m = _FAULT.search(content)
        if not m:
            return None, content
        kind, times = m.group(1), m.group(2)
        with self._lock:
            self.attempts[content] += 1
            n = self.attempts[content]
        if times is not None and n > int(times):
            return None, content
        return kind, content

    async def _chat(self, raw: bytes, writer: asyncio.StreamWriter, headers: Dict[str, str]) -> bool:
        assert self._sem is not None
        body = json.loads(raw)
        kind, _ = self._fault(body)
        async with self._sem:
            with self._lock:
                self.chat_requests += 1
                self.counts[kind or "ok"] += 1
                self.inflight += 1
                self.max_seen_inflight = max(self.max_seen_inflight, self.inflight)
            try:
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                if kind == "hang":
                    await asyncio.sleep(3600)
            finally:
                with self._lock:
                    self.inflight -= 1
        if kind == "drop":
            return False
        if kind == "500":
            self._send(writer, 500, b'{"error":"injected"}')
        elif kind == "400":
            self._send(writer, 400, b'{"error":"bad request"}')
        elif kind == "429":
            self._send(writer, 429, b'{"error":"slow down"}', "Retry-After: 0\r\n")
        elif kind == "echoauth":  # a server (or proxy) that echoes the credentials it was sent
            auth = headers.get("authorization", "")
            self._send(writer, 401, json.dumps({"error": f"invalid credentials: {auth}"}).encode())
        elif kind == "echoauthok":
            auth = headers.get("authorization", "")
            payload = {"choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": f"You sent {auth}. [[A]]"}}]}
            self._send(writer, 200, json.dumps(payload).encode())
        elif kind == "malformed":
            self._send(writer, 200, b'{"choices": [ {"message": ')
        elif kind == "nochoices":
            self._send(writer, 200, b'{"object": "chat.completion"}')
        else:
            text, finish = self.responder(body), "stop"
            if kind == "length":  # what a server sends when the answer ran into max_tokens
                text, finish = text[:len(text) // 2], "length"
            payload = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", "loopback"),
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1},
            }
            self._send(writer, 200, json.dumps(payload).encode())
        await writer.drain()
        return True


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="loopback OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-inflight", type=int, default=1_000_000)
    parser.add_argument("--responder", default=None, help="module:function that writes the answer (default: echo)")
    args = parser.parse_args(argv)
    responder: Responder = echo
    if args.responder:
        import importlib

        module, _, attr = args.responder.partition(":")
        responder = getattr(importlib.import_module(module), attr)
    srv = LoopbackServer(args.host, args.port, args.latency, args.max_inflight, responder).start()
    print(f"listening on {srv.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
