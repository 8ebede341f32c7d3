"""Structured configs (dataclasses) for the groups every stage shares.

Hydra merges the YAML files in ``conf/`` into these classes, so an unknown key or a value of
the wrong type fails at composition and names the key. Rules that types cannot express
(choices, ranges, required-together) live in each class's ``check()`` and are run by
:func:`plumbing.config.validate.validate` with the full dotted path of every node.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from plumbing.components import ComponentConfig
from plumbing.data import DataFormat
from plumbing.llm.types import LLMBackend

# field(metadata={"range": (low, high)}): the numbers a field takes (default: finite and >= 0,
# checked for every config by plumbing.config.validate.range_problems); ANY: any finite number.
ANY = (-math.inf, math.inf)

Problems = List[tuple]  # (relative key, message)


def check_choice(problems: Problems, key: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        problems.append((key, f"must be one of {list(allowed)}, got {value!r}"))


def check_positive(problems: Problems, key: str, value: float, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        problems.append((key, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}"))


# ----------------------------------------------------------------------------- tracking
@dataclass
class TrackingConfig:
    """Where a stage's MLflow run goes. ``uri: null`` = sqlite in the output directory."""

    uri: Optional[str] = None
    experiment: str = "ralign"
    run_name: Optional[str] = None
    parent_run_id: Optional[str] = None
    run_id: Optional[str] = None  # continue this run (made by a pipeline that submitted the job)
    sweep_id: Optional[str] = None
    tags: Dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    # Params longer than this are truncated (old MLflow servers reject > 500 characters).
    max_param_length: int = 500

    def check(self) -> Problems:
        p: Problems = []
        if self.uri is not None and not self.uri.strip():
            p.append(("uri", "must be null (sqlite in output_dir) or a tracking URI"))
        if not self.experiment.strip():
            p.append(("experiment", "must not be empty"))
        check_positive(p, "max_param_length", self.max_param_length)
        return p


# ----------------------------------------------------------------------------- cluster
@dataclass
class SlurmConfig:
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: int = 8
    time: str = "01:00:00"
    # Shell lines run at the top of every job (module load, conda activate, ...).
    setup: List[str] = field(default_factory=list)
    # Container image for srun --container-image (pyxis); null runs on the host.
    container: Optional[str] = None
    requeue: bool = True
    # Extra #SBATCH options, e.g. {constraint: h100, exclusive: ""}.
    extra: Dict[str, str] = field(default_factory=dict)

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "nodes", self.nodes)
        check_positive(p, "gpus_per_node", self.gpus_per_node, allow_zero=True)
        check_positive(p, "cpus_per_task", self.cpus_per_task)
        check_positive(p, "mem_gb", self.mem_gb, allow_zero=True)
        parts = self.time.split("-")[-1].split(":")
        if not all(x.isdigit() for x in parts) or not 1 <= len(parts) <= 3:
            p.append(("time", f"must look like [D-]HH:MM:SS, got {self.time!r}"))
        return p


@dataclass
class ClusterConfig:
    kind: str = "local"
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    # kind=slurm: a stage that renders a job (OpenRLHF training) submits it with sbatch (true),
    # or runs it in the Slurm allocation it already runs in (false: a pipeline's step job);
    # either way the job is laid out over cluster nodes (the plan of kind=slurm).
    submit: bool = True

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "kind", self.kind, ("local", "slurm"))
        return p


# ----------------------------------------------------------------------------- engine
@dataclass
class EngineConfig:
    """Which RL engine trains (a plumbing.engines.training.Engine named by ``_target_``): TRL
    in this process, or OpenRLHF on Ray (cluster)."""

    _target_: str = "plumbing.engines.local.LocalEngine"
    name: str = ""  # the option's file name (engine=local), filled in when composed
    # local engine: where TRL runs.
    device: str = "cpu"
    # openrlhf engine: the allocation (training nodes x GPUs per node) and how to lay roles on
    # it; null values are derived by plumbing/engines/openrlhf_plan.py (everything colocated,
    # vLLM engines filling the GPUs, sleep on), given values are checked against its rules.
    ray_address: Optional[str] = None
    num_nodes: int = 1
    gpus_per_node: int = 8
    vllm_num_engines: Optional[int] = None
    vllm_tensor_parallel_size: int = 1
    vllm_gpu_memory_utilization: float = field(default=0.6, metadata={"range": (0, 1)})
    vllm_enable_sleep: Optional[bool] = None
    zero_stage: int = 3
    colocate_all: Optional[bool] = None
    role_nodes: Optional[int] = None  # colocate_all=false: the actor's, reference's and critic's nodes each
    role_gpus_per_node: Optional[int] = None  # ... and GPUs per node each
    gradient_checkpointing: bool = True
    param_dtype: str = "bf16"
    # Hugging Face copies of the model saved every algo.save_steps besides the final one:
    # how many of the newest to keep (0: none; an 8B copy is 16 GB). DeepSpeed states for
    # resuming are rotated by OpenRLHF itself (--ckpt.max_num).
    # retention: how many is not what a run computes, but whether it keeps copies at all is (a
    # downstream step evaluates them), so 0 -> 3 trains again and 3 -> 2 does not
    hf_checkpoints: int = field(default=0, metadata={"unhashed": "whether"})

    def adapter(self) -> Any:
        """The engine (an instance of the ``_target_`` class)."""
        from plumbing.components import locate

        return locate(self._target_)()

    def check(self) -> Problems:
        from plumbing.components import locate
        from plumbing.engines.training import Engine

        p: Problems = []
        try:
            if not issubclass(locate(self._target_), Engine):
                p.append(("_target_", f"{self._target_} is not a plumbing.engines.training.Engine"))
        except (ImportError, AttributeError, TypeError) as e:
            p.append(("_target_", str(e.args[0]) if e.args else str(e)))
        check_positive(p, "hf_checkpoints", self.hf_checkpoints, allow_zero=True)
        check_choice(p, "device", self.device, ("cpu", "cuda", "auto"))
        check_choice(p, "zero_stage", self.zero_stage, (0, 1, 2, 3))
        check_choice(p, "param_dtype", self.param_dtype, ("bf16", "fp16", "fp32"))
        for key in ("num_nodes", "gpus_per_node", "vllm_tensor_parallel_size"):
            check_positive(p, key, getattr(self, key))
        for key in ("vllm_num_engines", "role_nodes", "role_gpus_per_node"):
            if getattr(self, key) is not None:
                check_positive(p, key, getattr(self, key))
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            p.append(("vllm_gpu_memory_utilization", "must be in (0, 1]"))
        return p


# ----------------------------------------------------------------------------- algorithm
@dataclass
class AlgoConfig:
    """RL settings, named once; each engine translates them (see plumbing/engines)."""

    estimator: str = "grpo"  # one the engine runs (its Engine.estimators; gae: PPO with a critic)
    n_samples_per_prompt: int = 8
    kl_coef: float = 0.001
    kl_estimator: str = "k3"  # k1 | k2 | k3
    use_kl_loss: bool = True  # KL as a loss term (GRPO style) rather than in the reward
    actor_lr: float = 1e-6
    critic_lr: float = 9e-6  # gae only
    lr_warmup_ratio: float = field(default=0.03, metadata={"range": (0, 1)})
    rollout_batch_size: int = 128  # prompts per rollout
    train_batch_size: int = 128  # samples per optimizer step (global)
    micro_batch_size: int = 1  # samples per GPU per forward/backward
    max_prompt_len: int = 4096
    max_new_tokens: int = 4096
    temperature: float = 1.0
    top_p: float = 1.0
    eps_clip: float = 0.2
    epochs: int = 1  # passes over the prompts (OpenRLHF: num_episodes)
    max_steps: int = field(default=-1, metadata={"range": (-1, math.inf)})  # stop after this many optimizer steps (-1: run the epochs)
    save_steps: int = field(default=-1, metadata={"range": (-1, math.inf)})  # checkpoint every k steps (-1: only at the end)
    logging_steps: int = 1

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "kl_estimator", self.kl_estimator, ("k1", "k2", "k3"))
        for key in ("n_samples_per_prompt", "rollout_batch_size", "train_batch_size", "micro_batch_size",
                    "max_prompt_len", "max_new_tokens", "epochs", "logging_steps"):
            check_positive(p, key, getattr(self, key))
        for key in ("kl_coef", "actor_lr", "critic_lr", "temperature"):
            check_positive(p, key, getattr(self, key), allow_zero=True)
        if self.save_steps == 0:  # OpenRLHF takes global_step % save_steps
            p.append(("save_steps", "must be -1 (only the final model) or >= 1, got 0"))
        if self.estimator in ("grpo", "dr_grpo", "rloo", "reinforce_baseline", "group_norm") and self.n_samples_per_prompt < 2:
            p.append(("n_samples_per_prompt", f"{self.estimator} compares samples of one prompt: needs >= 2"))
        return p


@dataclass
class LaunchConfig:
    """How an engine=openrlhf stage lays out its cluster job (plumbing/engines/openrlhf.py)."""

    judge_port: int = 8000
    judge_startup_timeout_s: int = 1800
    ray_port: int = 6379
    ray_dashboard_port: int = 8265
    python: str = "python3"
    # seconds between the job's copies of its training metrics into MLflow (plumbing.launch.follow)
    metrics_every_s: int = field(default=60, metadata={"unhashed": True})

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "metrics_every_s", self.metrics_every_s)
        return p


# ----------------------------------------------------------------------------- models
@dataclass
class TinyModelSpec:
    """A random-init Qwen3 and a locally trained tokenizer, built offline (no hub)."""

    seed: int = 0
    vocab_size: int = 2048
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    head_dim: int = 32
    max_position_embeddings: int = 4096
    # Extra text file(s) to train the tokenizer on, besides the built-in corpus.
    corpus: List[str] = field(default_factory=list)

    def check(self) -> Problems:
        p: Problems = []
        for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads", "head_dim",
                    "max_position_embeddings"):
            check_positive(p, key, getattr(self, key))
        if self.vocab_size < 300:
            p.append(("vocab_size", "must be >= 300 (256 bytes + special tokens)"))
        if self.num_attention_heads % max(self.num_key_value_heads, 1):
            p.append(("num_key_value_heads", "must divide num_attention_heads"))
        return p


@dataclass
class ModelConfig:
    """A model by hub id or local directory; with ``tiny`` set it is built locally if absent."""

    name: str = MISSING
    path: str = MISSING
    tiny: Optional[TinyModelSpec] = None
    dtype: str = "auto"
    trust_remote_code: bool = False

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"))
        return p


# ----------------------------------------------------------------------------- LLM backends
@dataclass
class SamplingConfig:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: Optional[int] = None
    stop: List[str] = field(default_factory=list)

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "temperature", self.temperature, allow_zero=True)
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        check_positive(p, "max_tokens", self.max_tokens)
        return p


@dataclass
class ServeConfig:
    """Start a local OpenAI-compatible server for this backend, and stop it after the stage."""

    launcher: str = "none"  # none | transformers | vllm
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    device: str = "cpu"
    startup_timeout_s: float = 300.0
    extra_args: List[str] = field(default_factory=list)

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "launcher", self.launcher, ("none", "transformers", "vllm"))
        if not 0 <= self.port <= 65535:
            p.append(("port", f"must be in [0, 65535], got {self.port}"))
        check_positive(p, "startup_timeout_s", self.startup_timeout_s)
        return p


@dataclass
class CacheConfig:
    """Persistent cache of LLM calls; a rerun never pays twice for the same call."""

    enabled: bool = True
    path: Optional[str] = None  # null = <output_dir>/llm_cache.sqlite
    namespace: str = ""  # part of every key: change it to force fresh calls


@dataclass
class LLMConfig(ComponentConfig):
    """One LLM backend: "complete a batch of chat requests" (GenRM, MetaRM, judge, policy).

    A component: ``_target_`` names the backend class (an :class:`~plumbing.llm.types.LLMBackend`;
    ``conf/llm/<name>.yaml``, chosen as ``llm@<role>=<name>``), ``params`` its own settings
    (checked against its ``Params``). The fields here are what every backend, the server a
    stage starts, the cluster job and the caches read."""

    base = LLMBackend

    model: str = MISSING  # served model name, or a local path / hub id for in-process backends
    base_url: Optional[str] = None  # backends over HTTP; filled in by `serve` when it launches one
    api_key: Optional[str] = None  # secret: redacted in every log, param and artifact
    api_key_env: Optional[str] = None  # or: the name of the env var that holds the key
    concurrency: int = 64
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 20.0
    dtype: str = "auto"
    # an in-process vllm backend and a `vllm serve` the stage (or a cluster job) starts
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = field(default=0.85, metadata={"range": (0, 1)})
    chat_template_kwargs: Dict[str, Any] = field(default_factory=dict)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)

    @property
    def over_http(self) -> bool:
        """Whether the backend class declares it speaks HTTP (False if it does not import:
        ``check`` says why)."""
        try:
            return bool(getattr(self.component(), "over_http", False))
        except (ImportError, AttributeError):
            return False

    def build(self) -> LLMBackend:
        """The backend (no server, no cache: see ``plumbing.llm.registry.open_backend``). One
        that names no model identity gets its class, model and params, so the call cache
        never mixes two backends' answers."""
        cls = self.component()
        params = self.typed_params()
        backend = cls.from_config(self, params)
        if not backend.model_id:
            from plumbing.secrets import digest_secrets

            own = json.dumps(digest_secrets(dataclasses.asdict(params)), sort_keys=True, default=str)
            backend.model_id = f"{cls.__module__}.{cls.__qualname__}:{self.model}:{own}"
        return backend

    def check(self) -> Problems:
        p: Problems = super().check()  # the class and its params
        known = not any(key == "_target_" for key, _ in p)  # else what it declares is unknown
        for key in ("concurrency", "timeout_s", "tensor_parallel_size"):
            check_positive(p, key, getattr(self, key))
        check_positive(p, "max_retries", self.max_retries, allow_zero=True)
        check_positive(p, "backoff_initial_s", self.backoff_initial_s, allow_zero=True)
        if self.backoff_max_s < self.backoff_initial_s:
            p.append(("backoff_max_s", "must be >= backoff_initial_s"))
        if known and self.serve.launcher != "none" and not self.over_http:
            p.append(("_target_", f"a server started by the stage (serve.launcher={self.serve.launcher}) is "
                                  f"reached over HTTP: {self._target_} does not speak HTTP (use "
                                  "plumbing.llm.openai_http.OpenAIHTTPBackend, as llm@<role>=transformers_serve)"))
        if known and self.over_http and not self.base_url and self.serve.launcher == "none":
            p.append(("base_url", f"{self.label} reaches its model over HTTP: give base_url, or serve.launcher "
                                  "to start a server"))
        if self.api_key and self.api_key_env:
            p.append(("api_key", "set api_key or api_key_env, not both"))
        return p


# ----------------------------------------------------------------------------- data
@dataclass
class DataConfig(ComponentConfig):
    """A data set: its format (a :class:`~plumbing.data.DataFormat` named as ``_target_``,
    its settings under ``params``) and where it lives, a local ``path`` (read by the format)
    or the hub (``hub_id`` + ``hub_file``). Every file in ``conf/data/`` starts with
    ``# @package data.<name>``, so ``data=[a,b]`` selects several, each by its file's name."""

    base = DataFormat

    path: Optional[str] = None
    hub_id: Optional[str] = None
    hub_file: Optional[str] = None
    split: str = "train"
    limit: Optional[int] = None
    on_bad_record: str = "error"  # error | skip
    weight: float = 1.0  # mixing weight when a stage mixes several data sets

    def check(self) -> Problems:
        p: Problems = super().check()
        if not self.path and not self.hub_id:
            p.append(("path", "give a local path or a hub_id"))
        check_choice(p, "on_bad_record", self.on_bad_record, ("error", "skip"))
        if self.limit is not None:
            check_positive(p, "limit", self.limit)
        check_positive(p, "weight", self.weight, allow_zero=True)
        return p

    def declared(self, attr: str, default: Any = None) -> Any:
        """What the format declares (``produces``, ...); ``default`` if it does not import
        (reported by ``check``)."""
        try:
            return getattr(self.component(), attr, default)
        except (ImportError, AttributeError):
            return default

    def build(self) -> DataFormat:
        return self.component()(self.typed_params())


def check_produces(data: Dict[str, DataConfig], kind: str) -> Problems:
    """A stage takes only data sets whose format ``produces`` the items it reads."""
    p: Problems = []
    for name, d in data.items():
        produced = d.declared("produces", None)
        if produced is not None and produced != kind:
            p.append((f"data.{name}._target_", f"{d._target_} gives {produced or 'unknown'} items; "
                                               f"this stage reads {kind}"))
    return p


# ----------------------------------------------------------------------------- stages
@dataclass
class StageConfig:
    """Fields every stage's root config has. Subclass per stage, one root YAML each."""

    stage: str = MISSING
    name: str = "default"  # the experiment's name: MLflow tag `experiment`
    output_dir: str = MISSING
    seed: int = 0
    dry_run: bool = False
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    # A model role (GenRM, MetaRM, generator, judge) whose calls fail (after retries) more
    # often than this ends the stage with exit 1 and a FAILED run, its outputs still written
    # (training: checked as calls come, once there are plumbing.failures.MIN_CALLS).
    max_failure_rate: float = field(default=0.05, metadata={"range": (0, 1)})

    def check(self) -> Problems:
        p: Problems = []
        if not 0 <= self.max_failure_rate <= 1:
            p.append(("max_failure_rate", f"must be in [0, 1], got {self.max_failure_rate}"))
        expected = type(self).__dataclass_fields__["stage"].default
        if expected not in (MISSING, self.stage):
            p.append(("stage", f"this config is for stage {self.stage!r} but the entry point runs "
                               f"{expected!r} (an experiment preset of another stage?)"))
        if not self.output_dir.strip():
            p.append(("output_dir", "must not be empty"))
        return p


# Every config group in conf/ and the schema its files must fit (checked by the tests).
GROUPS = {
    "tracking": TrackingConfig,
    "cluster": ClusterConfig,
    "engine": EngineConfig,
    "model": ModelConfig,
    "llm": LLMConfig,
    "data": DataConfig,
    "algo": AlgoConfig,
}
