"""In-process vLLM (GPU nodes, cluster extra). vLLM is imported only when this backend is used.

Checked against vLLM 0.29.0's ``LLM(model, tensor_parallel_size, dtype, seed,
gpu_memory_utilization, trust_remote_code)`` and ``LLM.chat(messages, sampling_params=[...],
use_tqdm, chat_template_kwargs)``; per-request SamplingParams keep each item's settings.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from plumbing.llm.cache import model_fingerprint
from plumbing.errors import ModelLoadError
from plumbing.llm.types import ChatRequest, ChatResult, FailureKind, LLMBackend, OnResult


@dataclass
class VLLMParams:
    batch_size: int = 1024  # items per LLM.chat call: answers reach the cache after each chunk

    def check(self) -> List[tuple]:
        return [("batch_size", f"must be >= 1, got {self.batch_size}")] if self.batch_size < 1 else []


class VLLMBackend(LLMBackend):
    """In-process vLLM; ``tensor_parallel_size`` and ``gpu_memory_utilization`` are shared
    settings (``LLMConfig``): a ``vllm serve`` the stage starts reads them too."""

    Params = VLLMParams

    def __init__(self, model: str, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85,
                 dtype: str = "auto", seed: int = 0, batch_size: int = 1024,
                 chat_template_kwargs: Optional[Dict[str, Any]] = None, trust_remote_code: bool = False):
        super().__init__()
        self.model_path = model
        fp = model_fingerprint(model)
        self.model_id = f"vllm:{model}" + (f"@{fp}" if fp else "")
        self._kwargs = dict(model=model, tensor_parallel_size=tensor_parallel_size,
                            gpu_memory_utilization=gpu_memory_utilization, dtype=dtype, seed=seed,
                            trust_remote_code=trust_remote_code)
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._llm: Any = None
        self._load_error: Optional[ModelLoadError] = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, params: VLLMParams) -> "VLLMBackend":
        return cls(cfg.model, tensor_parallel_size=cfg.tensor_parallel_size,
                   gpu_memory_utilization=cfg.gpu_memory_utilization, dtype=cfg.dtype,
                   seed=cfg.sampling.seed or 0, batch_size=params.batch_size,
                   chat_template_kwargs=cfg.chat_template_kwargs)

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                raise RuntimeError(
                    "llm@<role>=vllm needs vLLM (pip install 'ralign-suite[cluster]') and a CUDA GPU"
                ) from e
            self._llm = LLM(**self._kwargs)
        return self._llm

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        results: List[ChatResult] = []
        with self._lock:
            if self._load_error is not None:  # loading again would fail again, slowly
                raise self._load_error
            try:
                llm = self._load()
                from vllm import SamplingParams
            except Exception as e:  # every call would fail: the stage stops, nothing is scored
                self._load_error = ModelLoadError(self.model_path, e)
                raise self._load_error from e
            for start in range(0, len(requests), self.batch_size):
                chunk = requests[start : start + self.batch_size]
                params = [
                    SamplingParams(
                        temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                        max_tokens=r.sampling.max_tokens, stop=list(r.sampling.stop) or None,
                        seed=None if r.sampling.seed is None else r.sampling.seed + r.sample_index,
                    )
                    for r in chunk
                ]
                t0 = time.monotonic()
                try:
                    outs = llm.chat([[dict(m) for m in r.messages] for r in chunk], sampling_params=params,
                                    use_tqdm=progress, chat_template_kwargs=self.chat_template_kwargs or None)
                    dt = (time.monotonic() - t0) / max(len(chunk), 1)
                    got = [
                        ChatResult(text=o.outputs[0].text, finish_reason=o.outputs[0].finish_reason,
                                   prompt_tokens=len(o.prompt_token_ids or []),
                                   completion_tokens=len(o.outputs[0].token_ids), latency_s=dt)
                        for o in outs
                    ]
                except Exception as e:
                    got = [ChatResult.failure(FailureKind.BACKEND_ERROR, f"{type(e).__name__}: {e}") for _ in chunk]
                for j, r in enumerate(got):
                    on_result(start + j, r)
                results.extend(got)
        return results

    def close(self) -> None:
        with self._lock:
            self._llm = None
