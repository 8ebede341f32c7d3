"""In-process transformers generation (CPU or one GPU), batched with left padding.

Requests are grouped by sampling settings and sorted by prompt length so a batch wastes
little padding. A failure (out of memory, a bad template) turns the batch's items into typed
failures instead of raising. A lock serialises generation: the backend is thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from plumbing.llm.cache import model_fingerprint
from plumbing.errors import ModelLoadError
from plumbing.llm.types import ChatRequest, ChatResult, FailureKind, LLMBackend, OnResult, SamplingParams


def _dtype(name: str) -> Any:
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16}[name]


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class TransformersParams:
    device: str = "auto"  # auto: cuda when there is one
    batch_size: int = 8  # prompts per generate() call

    def check(self) -> List[tuple]:
        return [("batch_size", f"must be >= 1, got {self.batch_size}")] if self.batch_size < 1 else []


class TransformersBackend(LLMBackend):
    Params = TransformersParams

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 8,
                 chat_template_kwargs: Optional[Dict[str, Any]] = None, trust_remote_code: bool = False):
        super().__init__()
        self.model_path = model
        fp = model_fingerprint(model)
        self.model_id = f"transformers:{model}" + (f"@{fp}" if fp else "")
        self.device = pick_device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.trust_remote_code = trust_remote_code
        self._model: Any = None
        self._tok: Any = None
        self._load_error: Optional[ModelLoadError] = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, params: TransformersParams) -> "TransformersBackend":
        return cls(cfg.model, device=params.device, dtype=cfg.dtype, batch_size=params.batch_size,
                   chat_template_kwargs=cfg.chat_template_kwargs)

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.model_path, trust_remote_code=self.trust_remote_code)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(
            self.model_path, dtype=_dtype(self.dtype), trust_remote_code=self.trust_remote_code
        )
        model.to(self.device).eval()
        self._tok, self._model = tok, model

    def _render(self, req: ChatRequest) -> str:
        return self._tok.apply_chat_template(
            [dict(m) for m in req.messages], tokenize=False, add_generation_prompt=True,
            **self.chat_template_kwargs,
        )

    def _complete(self, requests: Sequence[ChatRequest], on_result: OnResult, progress: bool) -> List[ChatResult]:
        results: List[Optional[ChatResult]] = [None] * len(requests)
        bar = None
        if progress and requests:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc="LLM transformers", unit="req", dynamic_ncols=True)
        with self._lock:
            if self._load_error is not None:  # loading again would fail again, slowly
                raise self._load_error
            try:
                self._load()
            except Exception as e:  # every call would fail: the stage stops, nothing is scored
                self._load_error = ModelLoadError(self.model_path, e)
                raise self._load_error from e
            groups: Dict[SamplingParams, List[int]] = defaultdict(list)
            prompts: Dict[int, str] = {}
            for i, req in enumerate(requests):
                try:
                    prompts[i] = self._render(req)
                    groups[req.sampling].append(i)
                except Exception as e:
                    results[i] = ChatResult.failure(FailureKind.CLIENT_ERROR, f"chat template: {e}")
                    on_result(i, results[i])
            for sampling, idx in groups.items():
                idx.sort(key=lambda i: len(prompts[i]))
                for start in range(0, len(idx), self.batch_size):
                    chunk = idx[start : start + self.batch_size]
                    for i, res in zip(chunk, self._generate([prompts[i] for i in chunk], sampling,
                                                            [requests[i].sample_index for i in chunk])):
                        results[i] = res
                        on_result(i, res)
                    if bar is not None:
                        bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return results  # type: ignore[return-value]

    def _generate(self, prompts: List[str], s: SamplingParams, sample_indices: List[int]) -> List[ChatResult]:
        import torch

        t0 = time.monotonic()
        try:
            enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            kwargs: Dict[str, Any] = dict(
                max_new_tokens=s.max_tokens,
                pad_token_id=self._tok.pad_token_id,
                eos_token_id=self._tok.eos_token_id,
            )
            if s.temperature > 0:
                kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if s.stop:
                kwargs.update(stop_strings=list(s.stop), tokenizer=self._tok)
            with torch.random.fork_rng(devices=[]) if s.seed is not None else contextlib.nullcontext():
                if s.seed is not None:
                    torch.manual_seed(s.seed + sample_indices[0])
                with torch.inference_mode():
                    out = self._model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1]:]
            texts = self._tok.batch_decode(new, skip_special_tokens=True)
            dt = (time.monotonic() - t0) / max(len(prompts), 1)
            results = []
            for row, text in zip(new, texts):
                n_new = int((row != self._tok.pad_token_id).sum())
                finish = "length" if n_new >= s.max_tokens else "stop"
                results.append(ChatResult(text=_cut_stop(text, s.stop), finish_reason=finish,
                                          completion_tokens=n_new, latency_s=dt))
            return results
        except Exception as e:
            detail = f"{type(e).__name__}: {e}"
            return [ChatResult.failure(FailureKind.BACKEND_ERROR, detail) for _ in prompts]

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._tok = None


def _cut_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        pos = text.find(s)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]

