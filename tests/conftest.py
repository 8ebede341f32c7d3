"""Shared fixtures. Nothing here reaches a hub: models are built locally, servers are loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))  # shared fixture writers (genrm_fixtures, ...)
for var, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # data sets loaded through `datasets` (the hub code path, from local folders) cache here
    "HF_DATASETS_CACHE": os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ralign-tests-hf-datasets-{os.getpid()}"),
}.items():
    os.environ.setdefault(var, value)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3 + local tokenizer, built once per test session."""
    from plumbing.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen3")


@pytest.fixture
def loopback():
    from plumbing.testing.loopback import LoopbackServer

    with LoopbackServer() as srv:
        yield srv


def run_cli(args: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command of the suite the way a user does, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(args, cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def ralign() -> str:
    """The installed `ralign` console script of this environment."""
    exe = Path(sys.executable).with_name("ralign")
    return str(exe) if exe.exists() else "ralign"
