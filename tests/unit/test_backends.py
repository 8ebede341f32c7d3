"""In-process transformers backend, backends as components (named by class, their own params
checked) and lazily started servers."""

from __future__ import annotations

import json
import os

import pytest

from plumbing.config.schema import LLMConfig, ServeConfig
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.registry import open_backend
from plumbing.llm.transformers_local import TransformersBackend
from plumbing.llm.types import ChatRequest, LLMBackend, SamplingParams


def _reqs(n, **kw):
    return [ChatRequest.of([{"role": "user", "content": f"question number {i}" + "!" * i}], **kw) for i in range(n)]


def test_transformers_backend_batches_and_keeps_request_order(tiny_model):
    seen = []
    with TransformersBackend(str(tiny_model), device="cpu", batch_size=3) as b:
        greedy = b.complete(_reqs(7, sampling=SamplingParams(max_tokens=6)), on_result=lambda i, r: seen.append(i))
        # each item alone gives the same greedy text as in a padded batch
        alone = [b.complete([r])[0].text for r in _reqs(7, sampling=SamplingParams(max_tokens=6))]
        sampled = b.complete(_reqs(4, sampling=SamplingParams(temperature=1.0, max_tokens=6, seed=5)))
        sampled_again = b.complete(_reqs(4, sampling=SamplingParams(temperature=1.0, max_tokens=6, seed=5)))
    assert sorted(seen) == list(range(7))
    assert all(r.ok and r.completion_tokens <= 6 for r in greedy)
    assert [r.text for r in greedy] == alone
    assert [r.text for r in sampled] == [r.text for r in sampled_again]  # seeded sampling is repeatable


def test_a_model_that_does_not_load_stops_the_caller_naming_it(tmp_path):
    """Not a BACKEND_ERROR per request that a stage would score as wrong answers: the load
    error itself, naming the path, once (the second call does not try to load again)."""
    from plumbing.errors import ModelLoadError

    with TransformersBackend(str(tmp_path / "missing"), device="cpu") as b:
        with pytest.raises(ModelLoadError, match=str(tmp_path / "missing")) as first:
            b.complete(_reqs(2))
        with pytest.raises(ModelLoadError) as again:
            b.complete(_reqs(1))
    assert again.value is first.value


HTTP = "plumbing.llm.openai_http.OpenAIHTTPBackend"


class Constant(LLMBackend):
    """A backend that names no model identity."""

    def _complete(self, requests, on_result, progress):
        from plumbing.llm.types import ChatResult

        out = [ChatResult(text="\\boxed{A}") for _ in requests]
        for i, r in enumerate(out):
            on_result(i, r)
        return out


def test_a_backend_is_the_class_its_config_names_with_its_own_params():
    cfg = LLMConfig(_target_="plumbing.llm.transformers_local.TransformersBackend", model="/m",
                    params={"device": "cpu", "batch_size": 3})
    assert cfg.check() == []
    b = cfg.build()
    assert isinstance(b, TransformersBackend) and (b.device, b.batch_size) == ("cpu", 3)
    assert b.model_id == "transformers:/m"  # the backend's own identity (the cache key's)
    bad = LLMConfig(_target_="plumbing.llm.transformers_local.TransformersBackend", model="/m",
                    params={"batch_size": 0, "tensor_parallel_size": 2})
    assert dict(bad.check()) == {
        "params.batch_size": "must be >= 1, got 0",
        "params.tensor_parallel_size": "TransformersBackend takes no param 'tensor_parallel_size'; "
                                       "it takes ['device', 'batch_size']"}
    assert dict(LLMConfig(_target_="plumbing.llm.types.ChatResult", model="m").check())["_target_"] == \
        "plumbing.llm.types.ChatResult is not a plumbing.llm.types.LLMBackend"


def test_a_backend_without_a_model_identity_gets_its_class_model_and_params():
    """So the call cache never hands one backend's answers to another."""
    target = f"{__name__}.Constant"
    one = LLMConfig(_target_=target, model="m").build()
    assert one.model_id == f"{target}:m:{{}}"
    assert LLMConfig(_target_=target, model="other").build().model_id != one.model_id
    # the suite's own backends name theirs: one model name behind two backends is two identities
    ids = {LLMConfig(_target_=t, model="m", base_url="http://127.0.0.1:9/v1").build().model_id
           for t in (HTTP, "plumbing.llm.transformers_local.TransformersBackend", "plumbing.llm.vllm_local.VLLMBackend",
                     target)}
    assert len(ids) == 4


class ServedHTTP(OpenAIHTTPBackend):
    """An HTTP backend of one's own (it inherits ``over_http``)."""


def test_only_a_backend_over_http_can_front_a_server():
    assert LLMConfig(_target_=HTTP, model="m", serve=ServeConfig(launcher="transformers")).check() == []
    served = LLMConfig(_target_="plumbing.llm.transformers_local.TransformersBackend", model="m",
                       serve=ServeConfig(launcher="vllm"))
    assert "does not speak HTTP" in dict(served.check())["_target_"]


def test_open_backend_caches_and_a_fully_cached_rerun_starts_no_server(tiny_model, tmp_path):
    cfg = LLMConfig(_target_=f"{__name__}.ServedHTTP", model=str(tiny_model),
                    serve=ServeConfig(launcher="transformers"), concurrency=4)
    reqs = _reqs(3, sampling=SamplingParams(max_tokens=4))
    with open_backend(cfg, tmp_path) as b:
        first = b.complete(reqs)
        server = b.inner.server
        assert server.proc is not None  # started on demand
        assert type(b.inner._http).__name__ == "ServedHTTP"  # reached with the class the config names
    assert server.proc is None  # and stopped on exit
    with open_backend(cfg, tmp_path) as b:
        again = b.complete(reqs)
        assert b.inner.server.proc is None and b.inner._http is None  # never started
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)


def test_a_retrained_model_in_the_same_folder_gets_a_new_cache_identity(tiny_model, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_model, tmp_path / "ckpt")
    cfg = LLMConfig(_target_=HTTP, model=str(folder), serve=ServeConfig(launcher="transformers"))
    with open_backend(cfg, tmp_path) as b:
        before = b.model_id
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes() + b"\0")
    with open_backend(cfg, tmp_path) as b:
        assert b.model_id != before and b.model_id.startswith(f"openai:{folder}@")


ECHO_BACKEND = '''
from plumbing.llm.types import ChatResult, LLMBackend

class EchoBackend(LLMBackend):
    """A backend from outside the suite: answers with the last message reversed."""
    model_id = "echo:v1"

    def _complete(self, requests, on_result, progress):
        out = []
        for i, r in enumerate(requests):
            res = ChatResult(text=r.messages[-1]["content"][::-1], finish_reason="stop")
            on_result(i, res)
            out.append(res)
        return out
'''


def test_a_backend_from_outside_the_suite_runs_by_its_import_path(tmp_path, cli, python):
    """An LLM backend is one module outside the package, named as llm._target_: no list to
    edit; what it can do (over HTTP or not) is what the class declares."""
    (tmp_path / "echo_backend.py").write_text(ECHO_BACKEND)
    env = {"PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
    r = cli([python, "-m", "plumbing.preflight", "llm._target_=echo_backend.EchoBackend", "llm.model=echo",
             "n_requests=3", "llm.serve.launcher=none", f"output_dir={tmp_path / 'o'}", "tracking.enabled=false"],
            env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["succeeded"] == 3
    # it does not speak HTTP, so a server the stage would start cannot front it
    r = cli([python, "-m", "plumbing.preflight", "llm._target_=echo_backend:EchoBackend", "llm.model=echo",
             "llm.serve.launcher=vllm", f"output_dir={tmp_path / 'o2'}"], env=env)
    assert r.returncode == 2 and "llm._target_" in r.stderr and "does not speak HTTP" in r.stderr, r.stderr[-2000:]
    r = cli([python, "-m", "plumbing.preflight", "llm._target_=no_such_module.Backend", "llm.model=x",
             f"output_dir={tmp_path / 'o3'}"], env=env)
    assert r.returncode == 2 and "llm._target_" in r.stderr and "no_such_module" in r.stderr, r.stderr[-2000:]
