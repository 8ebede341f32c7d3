"""The cluster engine: OpenRLHF 0.11.2 (``openrlhf.cli.train_ppo_ray``) on Ray.

``ppo_args`` translates the suite's algorithm, engine and path settings into OpenRLHF's
dotted flags (checked against OpenRLHF's real parser by tests/contract);
``write_reward_module`` writes the file ``--reward.remote_url`` (or
``--train.agent_func_path``) loads inside each vLLM engine actor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from plumbing import tags as tags_
from plumbing.engines.training import Engine, TrainingJob

ESTIMATOR = {"grpo": "group_norm"}  # the suite's name -> OpenRLHF's
STATE_PLACEHOLDER = "<resume state>"
CLEANUP_GRACE_S = 60.0  # a signalled job's time to stop Ray and its judge before it is killed


def ppo_args(*, model: str, algo: Any, engine: Any, plan: Any, dataset: str, ckpt_dir: str, tensorboard_dir: str,
             seed: int, reward_module: Optional[str] = None, agent_module: Optional[str] = None,
             input_key: str = "prompt", label_key: str = "label", critic_model: Optional[str] = None,
             state_files: Sequence[str] = (), state_known: bool = True) -> List[str]:
    """The argv of ``python -m openrlhf.cli.train_ppo_ray`` (without the program name); the
    roles' GPUs from ``plan`` (``plumbing.engines.openrlhf_plan``).

    ``--ckpt.load_enable`` lets a requeued job resume its DeepSpeed state and data position;
    that state lives in a folder named by a hash of everything the run depends on (these
    arguments and the contents of ``state_files``: the data set, the reward module), so a
    rerun with another configuration starts fresh instead of resuming a different run.
    ``state_known=False`` (a dry run without the final data) names that folder by a placeholder."""
    estimator = ESTIMATOR.get(algo.estimator, algo.estimator)
    ref = plan.ref or plan.actor
    a: List[str] = [
        "--actor.model_name_or_path", model,
        "--actor.num_nodes", str(plan.actor.nodes), "--actor.num_gpus_per_node", str(plan.actor.gpus_per_node),
        "--ref.num_nodes", str(ref.nodes), "--ref.num_gpus_per_node", str(ref.gpus_per_node),
        "--vllm.num_engines", str(plan.vllm_engines),
        "--vllm.tensor_parallel_size", str(plan.vllm_tp),
        "--vllm.gpu_memory_utilization", str(engine.vllm_gpu_memory_utilization),
        "--data.prompt_dataset", dataset, "--data.input_key", input_key, "--data.label_key", label_key,
        "--data.apply_chat_template",
        "--data.max_len", str(algo.max_prompt_len + algo.max_new_tokens),
        "--rollout.max_new_tokens", str(algo.max_new_tokens),
        "--rollout.batch_size", str(algo.rollout_batch_size),
        "--rollout.micro_batch_size", str(algo.micro_batch_size),
        "--rollout.n_samples_per_prompt", str(algo.n_samples_per_prompt),
        "--rollout.temperature", str(algo.temperature),
        "--rollout.top_p", str(algo.top_p),
        "--train.batch_size", str(algo.train_batch_size),
        "--train.micro_batch_size", str(algo.micro_batch_size),
        "--train.num_episodes", str(algo.epochs),
        "--train.seed", str(seed),
        "--algo.advantage.estimator", estimator,
        "--algo.kl.init_coef", str(algo.kl_coef),
        "--algo.kl.estimator", algo.kl_estimator,
        "--actor.adam.lr", str(algo.actor_lr),
        "--actor.lr_warmup_ratio", str(algo.lr_warmup_ratio),
        "--actor.eps_clip", str(algo.eps_clip),
        "--ds.zero_stage", str(engine.zero_stage),
        "--ds.param_dtype", engine.param_dtype,
        "--ckpt.output_dir", ckpt_dir,
        "--ckpt.path", STATE_PLACEHOLDER,
        "--ckpt.save_steps", str(algo.save_steps),
        "--ckpt.load_enable",  # a requeued (preempted) job resumes from its last saved step
        "--logger.tensorboard_dir", tensorboard_dir,
        "--logger.logging_steps", str(algo.logging_steps),
    ]
    if algo.use_kl_loss:
        a.append("--algo.kl.use_loss")
    if estimator == "gae" and plan.critic is not None:
        a += ["--critic.model_name_or_path", critic_model or model, "--critic.adam.lr", str(algo.critic_lr),
              "--critic.num_nodes", str(plan.critic.nodes), "--critic.num_gpus_per_node", str(plan.critic.gpus_per_node)]
    if engine.gradient_checkpointing:
        a.append("--actor.gradient_checkpointing_enable")
    if plan.colocate_all:
        a.append("--train.colocate_all")
        if plan.sleep:
            a += ["--vllm.enable_sleep", "--ds.enable_sleep"]
    if algo.max_steps > 0:  # OpenRLHF counts prompts, not steps
        a += ["--data.max_samples", str(algo.max_steps * algo.rollout_batch_size)]
    if reward_module:
        a += ["--reward.remote_url", reward_module]
    if agent_module:
        a += ["--train.agent_func_path", agent_module]
    digest = hashlib.sha256(json.dumps(a).encode())
    if not state_known:
        a[a.index(STATE_PLACEHOLDER)] = str(Path(ckpt_dir) / "deepspeed-<hash of these arguments and the data>")
        return with_hf_copies(a, engine)
    for f in state_files:
        digest.update(Path(f).read_bytes())
    a[a.index(STATE_PLACEHOLDER)] = str(Path(ckpt_dir) / f"deepspeed-{digest.hexdigest()[:12]}")
    return with_hf_copies(a, engine)


def with_hf_copies(a: List[str], engine: Any) -> List[str]:
    """``--ckpt.save_hf`` when intermediate copies are kept (pruned by the job); retention is
    not part of the resume state's name, so changing it resumes the same run."""
    return [*a, "--ckpt.save_hf"] if engine.hf_checkpoints else a


def write_prompt_file(path: Path, rows: Optional[Sequence[Dict[str, Any]]], model: str, max_prompt_len: int,
                      dry_run: bool, input_key: str = "prompt") -> Dict[str, Any]:
    """Write the job's prompt set (JSON lines) without the prompts OpenRLHF would cut.

    OpenRLHF applies the actor's chat template to each prompt (a string becomes one user
    message) and, when the tokens exceed ``--data.max_len`` less ``--rollout.max_new_tokens``,
    keeps only the last ones with a log warning: a GenRM would judge a prompt whose
    instructions are gone. Those rows are dropped and counted here instead. A dry run uses
    the tokenizer only where it is on this machine (no hub); otherwise it writes every row and
    says the lengths are checked when the job is prepared. ``rows=None``: nothing read."""
    from plumbing.errors import SuiteError, first_line

    report: Dict[str, Any] = {"max_prompt_len": max_prompt_len}
    if rows is None:
        report["lengths"] = "checked when the job is prepared (a dry run reads no hub data)"
        return report
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model, local_files_only=dry_run)
    except (OSError, ValueError) as e:
        if not dry_run:
            raise SuiteError(f"the tokenizer of {model} (to drop prompts over {max_prompt_len} tokens) does not "
                             f"load: {first_line(e)}") from None
        tok = None
    kept, too_long, longest = [], 0, 0
    for row in rows:
        if tok is None:
            kept.append(row)
            continue
        chat = row[input_key]
        chat = [{"role": "user", "content": chat}] if isinstance(chat, str) else chat
        try:
            text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        except ValueError as e:  # no chat template: OpenRLHF's --data.apply_chat_template fails the same way
            raise SuiteError(f"{model}: its tokenizer cannot apply a chat template ({first_line(e)})") from None
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        if n > max_prompt_len:
            too_long += 1
            continue
        longest = max(longest, n)
        kept.append(row)
    if tok is None:
        report["lengths"] = f"not checked: {model}'s tokenizer is not on this machine (checked when the job runs)"
    else:
        report.update(kept=len(kept), dropped_too_long=too_long, longest_prompt_tokens=longest)
        if too_long:
            print(f"[openrlhf] dropped {too_long} of {len(rows)} prompts over {max_prompt_len} tokens "
                  f"(algo.max_prompt_len) under {model}'s chat template")
        if not kept:
            raise SuiteError(f"every one of the {len(rows)} prompts is longer than algo.max_prompt_len="
                             f"{max_prompt_len} tokens: raise it (and the job's --data.max_len follows)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for row in kept:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    report["checked"] = tok is not None
    return report


MODULE_HEADER = '''"""Generated by ralign-suite: {purpose}.

OpenRLHF loads this file by path in every vLLM engine actor and calls it once per sample
(lists of length 1), from several threads. Its settings are below; the logic lives in
{factory_module} (installed with the suite on every node).
"""

import json

from {factory_module} import {factory_name}

SETTINGS = json.loads({settings!r})
{exported} = {factory_name}(SETTINGS)
'''


def write_reward_module(path: Path, factory: str, settings: Dict[str, Any], exported: str = "reward_func",
                        purpose: str = "reward_func(queries, prompts, labels) for --reward.remote_url") -> Path:
    """Write a module whose ``exported`` object is ``factory(settings)``. The module sits on
    shared disk and is read by every engine actor: a key value in its settings (a
    component's secret-named param) is refused with the fix, never written."""
    from plumbing.config.validate import ConfigError
    from plumbing.secrets import secret_paths

    keys = secret_paths(settings)
    if keys:
        raise ConfigError([(k, "the job cannot carry a key value (it would be written into its reward module): "
                               "read it from an environment variable set on the nodes instead") for k in keys])
    module, _, name = factory.partition(":")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MODULE_HEADER.format(purpose=purpose, factory_module=module, factory_name=name,
                                         settings=json.dumps(settings, indent=None, sort_keys=True), exported=exported))
    return path


# ---------------------------------------------------------------------------- the job
def judge_problems(role: str, llm: Any) -> List[Tuple[str, str]]:
    """What keeps a judge config from working inside an OpenRLHF job, naming the keys."""
    if llm is None:
        return []
    p = []
    if not llm.over_http:  # what its backend class declares
        p.append((f"{role}._target_", f"engine=openrlhf reaches judges over HTTP, {llm.label} does not: use llm@"
                                      f"{role}=vllm_serve (started by the job) or llm@{role}=openai"))
    if llm.serve.launcher == "transformers":
        p.append((f"{role}.serve.launcher", "on the cluster the job starts judges with vllm serve"))
    if llm.api_key:  # the settings are a module on shared disk, read by every engine actor
        p.append((f"{role}.api_key", "the job cannot carry a key value (it would be written into its reward "
                                     f"module): give {role}.api_key_env=NAME, a variable set on the nodes"))
    return p


def judge_settings(role: str, llm: Any, job_dir: Path, launch: Any, gpus: Optional[int] = None,
                   replicas: int = 1) -> Tuple[Dict[str, Any], Optional[Any]]:
    """How a reward module on the cluster reaches one judge (GenRM, MetaRM, MetaJudge), and the
    job section that starts it when it is a ``vllm serve`` of the job's own (None: an endpoint).

    The settings carry no key value (``api_key_env`` is resolved on the node) and no server
    to start; the job's server writes its URL to ``<role>_endpoint`` once healthy. ``gpus``:
    its tensor parallelism in this job (the plan's; None: the config's); ``replicas``: vLLM
    data-parallel replicas behind the one endpoint (the plan's ``judge_dp``), unless the
    config's ``serve.extra_args`` set them."""
    from plumbing.launch.server import LocalServer
    from plumbing.launch.slurm import JudgeSection

    llm_dict = asdict(llm)
    llm_dict["api_key"] = None
    llm_dict["serve"] = {"launcher": "none"}
    spec: Dict[str, Any] = {"llm": llm_dict}
    if llm.serve.launcher != "vllm":
        return spec, None
    server = LocalServer("vllm", llm.model, host="0.0.0.0", port=launch.judge_port,
                         tensor_parallel_size=gpus or llm.tensor_parallel_size,
                         gpu_memory_utilization=llm.gpu_memory_utilization, dtype=llm.dtype,
                         extra_args=[*llm.serve.extra_args, *data_parallel(llm.serve.extra_args, replicas)])
    endpoint = job_dir / f"{role}_endpoint"
    spec["endpoint_file"] = str(endpoint)
    llm_dict["model"] = server.served_model
    section = JudgeSection(command=" ".join(server.command()), port=launch.judge_port, endpoint_file=str(endpoint),
                           startup_timeout_s=launch.judge_startup_timeout_s, description=f"{role}: vllm serve {llm.model}")
    return spec, section


def data_parallel(extra_args: Sequence[str], replicas: int) -> List[str]:
    """vllm serve's data-parallel flag for ``replicas`` (none if 1 or already given)."""
    flags = ("--data-parallel-size", "-dp", "--data-parallel-size-local", "-dpl")
    given = any(a.split("=")[0].replace("_", "-") in flags for a in extra_args)
    return [] if replicas <= 1 or given else ["--data-parallel-size", str(replicas)]


def write_job(*, name: str, description: str, job_dir: Path, argv: List[str], plan: Any, slurm: Any,
              launch: Any, judge: Optional[Any], finish: Optional[List[str]], hf_checkpoints: int = 0) -> Path:
    """The sbatch script of one OpenRLHF run laid out by ``plan``: the judge server (if any)
    on its own node (or on its GPUs of a shared node), a Ray cluster across the training
    nodes, train_ppo_ray as a Ray job (``ray_job``: submitted, its status polled), then
    ``finish``; with ``hf_checkpoints``, a pruner keeps that many of the newest Hugging Face
    copies OpenRLHF saves (it never rotates them). Beside training a follower copies its
    TensorBoard scalars into the stage's MLflow run (``follow_command``). The plan is written
    beside it."""
    from dataclasses import replace

    from plumbing.launch.slurm import JobSpec, RaySection, shell_join, write

    command = "ray_job " + shell_join(
        [launch.python, "-m", "openrlhf.cli.train_ppo_ray", *argv])
    if judge is not None and plan.judge_devices:
        judge = replace(judge, devices=plan.judge_devices)
    spec = JobSpec.from_cluster(
        slurm, name=name, description=description, command=command, job_dir=str(job_dir),
        nodes=plan.job_nodes, gpus_per_node=plan.gpus_per_node, judge=judge,
        ray=RaySection(num_cpus=plan.ray_cpus_per_node, num_gpus=plan.ray_gpus_per_node, port=launch.ray_port,
                       dashboard_port=launch.ray_dashboard_port, devices=plan.ray_devices),
        finish=shell_join(finish) if finish else None,
        sidecar=shell_join([launch.python, "-m", "plumbing.launch.prune", argv[argv.index("--ckpt.path") + 1],
                            "--keep", str(hf_checkpoints)]) if hf_checkpoints else None,
        follower=shell_join(follow_command(launch, argv, finish)), follower_every_s=launch.metrics_every_s)
    (job_dir / "openrlhf_args.json").write_text(json.dumps(argv, indent=1))
    (job_dir / "plan.txt").write_text(plan.describe() + "\n")
    return write(spec, job_dir / "train.sbatch")


def follow_command(launch: Any, argv: List[str], finish: Optional[List[str]]) -> List[str]:
    """The metrics follower (the template adds --every): the scalars OpenRLHF writes to
    ``--logger.tensorboard_dir`` into the run ``finish`` ends (a submitted job); without
    ``finish`` the stage runs the script itself and gives the run in its environment
    (``job_env``), so the script names no run id and a dry run renders it the same."""
    cmd = [launch.python, "-m", "plumbing.launch.follow",
           "--tensorboard-dir", argv[argv.index("--logger.tensorboard_dir") + 1]]
    for flag in ("--tracking-uri", "--run-id") if finish else ():
        cmd += [flag, finish[finish.index(flag) + 1]]
    return cmd


def job_env(tracker: Any) -> Dict[str, str]:
    """The environment of a job script the stage runs itself: the follower's MLflow run."""
    import os

    from plumbing.launch.follow import ENV_RUN, ENV_URI

    env = {k: v for k, v in os.environ.items() if k not in (ENV_URI, ENV_RUN)}
    return {**env, ENV_URI: tracker.uri, ENV_RUN: tracker.run_id} if tracker.run_id else env


def submits(cluster: Any) -> bool:
    """Whether the stage submits its job with sbatch (else it runs the job script itself: on
    this machine with cluster=local, in the current allocation with cluster.submit=false)."""
    return cluster.kind == "slurm" and cluster.submit


def finish_command(launch: Any, tracker: Any, tb_dir: Path, ckpt_dir: Path,
                   hf_root: Optional[str] = None) -> List[str]:
    """The job's last step (the template adds --exit-code): metrics into MLflow, run ended,
    and (``hf_root``: the job keeps HF copies) the copies it left recorded with their steps."""
    return [launch.python, "-m", "plumbing.launch.finish", "--tracking-uri", tracker.uri,
            "--run-id", tracker.run_id or "<the stage's MLflow run id>", "--tensorboard-dir", str(tb_dir),
            "--checkpoint", str(ckpt_dir), *(["--hf-checkpoints", hf_root] if hf_root else [])]


def hf_copies_root(argv: List[str]) -> Optional[str]:
    """Where OpenRLHF 0.11.2 saves the HF copies (``<--ckpt.path>/global_step<N>_hf``), if it does."""
    return argv[argv.index("--ckpt.path") + 1] if "--ckpt.save_hf" in argv else None


def in_allocation(plan: Any, environ: Optional[Dict[str, str]] = None) -> None:
    """Refuse to run a cluster-laid job outside a Slurm allocation with the plan's nodes: its
    roles would all start on this one host."""
    import os

    from plumbing.errors import SuiteError

    env = os.environ if environ is None else environ
    if not env.get("SLURM_JOB_ID"):
        raise SuiteError("cluster.submit=false runs the job in the current Slurm allocation, but this is not "
                         "one (no SLURM_JOB_ID): submit it (cluster.submit=true) or run it in an sbatch job")
    nodes = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)
    if nodes < plan.job_nodes:
        raise SuiteError(f"the job is laid out over {plan.job_nodes} node(s) but allocation "
                         f"{env['SLURM_JOB_ID']} has {nodes}: give its sbatch job --nodes={plan.job_nodes}")


def launch(job: Dict[str, Any], cfg: Any, tracker: Any, tags: Dict[str, str]) -> Dict[str, Any]:
    """Print (dry run), submit (cluster=slurm) or run here (cluster=local) a prepared job."""
    import subprocess

    from plumbing.errors import SuiteError
    from plumbing.launch.finish import bridge
    from plumbing.launch.slurm import submit

    script = Path(job["script"])
    plan = job.pop("plan")
    print(f"[{cfg.stage}] OpenRLHF resource plan:\n{plan.describe()}")
    print(f"[{cfg.stage}] prompt lengths: {job.get('prompt_lengths')}")
    job["plan"] = dict(plan.rows())
    if cfg.dry_run:
        wrote = [str(v) for k, v in job.items() if k.endswith(("script", "module", "dataset")) and Path(v).exists()]
        print(f"[{cfg.stage}] dry run: wrote {', '.join(wrote)}")
        for source in job.get("data", []):
            print(f"[{cfg.stage}] data, read when the job is prepared (not in a dry run): {source}")
        print()
        print(script.read_text())
        return {"dry_run": True, **job}
    if submits(cfg.cluster):
        job_id = submit(script)
        tracker.set_tags({"slurm_job_id_submitted": job_id, tags_.CHECKPOINT_PENDING: job["checkpoint"], **tags})
        tracker.detach()  # the job ends the run when training is done
        print(f"[{cfg.stage}] submitted job {job_id}: {script}")
        return {"job_id": job_id, **job}
    if cfg.cluster.kind == "slurm":  # in the allocation this command runs in (a pipeline's step job)
        in_allocation(plan)
    tb_dir = script.parent / "tensorboard"
    proc = subprocess.Popen(["bash", str(script)], env=job_env(tracker))  # on a GPU node: run the job script here
    try:
        rc = proc.wait()
    except BaseException:  # TERM or Ctrl-C reached the stage: the job cleans up first
        import signal

        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=CLEANUP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:  # what the job logged is kept, however it ended
        if tracker.run_id and tb_dir.exists():
            bridge(tracker.uri, tracker.run_id, tb_dir)
    if rc != 0:
        raise SuiteError(f"OpenRLHF training failed (exit {rc}); see {script.parent / 'logs'}")
    kept: Dict[str, str] = {}
    hf_root = hf_copies_root(job["openrlhf_args"])
    if hf_root:  # the copies the job left (its pruner ran last), with their steps
        from plumbing import checkpoints

        record = checkpoints.record_openrlhf(Path(job["checkpoint"]), Path(hf_root), tb_dir)
        tracker.log_artifact(record)
        kept = checkpoints.tags(record)
    tracker.set_tags({tags_.CHECKPOINT: job["checkpoint"], **kept, **tags})
    return {"exit_code": rc, **job}


class OpenRLHFEngine(Engine):
    """OpenRLHF on Ray: the job's prompt file, reward module and judge servers written with
    one job script laid out by the resource plan; printed (dry run), submitted (sbatch) or
    run in this allocation."""

    name = "openrlhf"
    estimators = ("gae", "grpo", "dr_grpo", "rloo", "reinforce", "reinforce_baseline", "group_norm")
    lays_out_cluster = True

    def problems(self, cfg: Any, judges: Dict[str, Any]) -> List[Tuple[str, str]]:
        from plumbing.engines.openrlhf_plan import problems

        p: List[Tuple[str, str]] = []
        for role, llm in judges.items():
            p += judge_problems(role, llm)
        if cfg.engine.hf_checkpoints and cfg.algo.save_steps < 1:  # the job would keep copies it never saves
            p.append(("engine.hf_checkpoints", f"keeps the HF copies saved every algo.save_steps, which is "
                                               f"{cfg.algo.save_steps} (none saved): set algo.save_steps=k"))
        return p + problems(cfg.plan(), cfg.engine, cfg.algo)

    def run(self, job: TrainingJob, tracker: Any) -> Dict[str, Any]:
        from plumbing.data import data_sources
        from plumbing.errors import SuiteError

        cfg = job.cfg
        # A dry run reads no hub data (it works offline; the plan says where the data come from)
        offline = cfg.dry_run and not all(d.path for d in cfg.data.values())
        items = None if offline else job.load()
        out = Path(cfg.output_dir)
        job_dir = out / "openrlhf"
        data_path = job_dir / "prompts.jsonl"
        rows = None if items is None else job.remote_rows(items)
        lengths = write_prompt_file(data_path, rows, job.model.path, cfg.algo.max_prompt_len, cfg.dry_run)
        if not cfg.dry_run:
            tracker.log_params({f"data.{k}": v for k, v in lengths.items()})
        plan = cfg.plan()
        specs: Dict[str, Any] = {}
        sections = []
        for role, llm in {**job.judges, **job.monitors}.items():
            specs[role], section = judge_settings(role, llm, job_dir, cfg.launch, plan.judge_gpus, plan.judge_dp)
            sections += [section] if section else []
        if len(sections) > 1:
            raise SuiteError("one judge server per job: give the other judge an endpoint (llm@...=openai)")
        module, module_kw = job.remote_reward(job_dir, specs)
        ckpt_dir, tb_dir = out / "checkpoint", job_dir / "tensorboard"
        args = ppo_args(model=job.model.path, algo=cfg.algo, engine=cfg.engine, plan=plan, dataset=str(data_path),
                        ckpt_dir=str(ckpt_dir), tensorboard_dir=str(tb_dir), seed=cfg.seed,
                        state_files=[str(data_path), str(module)], state_known=lengths.get("checked", False),
                        **module_kw)
        finish = finish_command(cfg.launch, tracker, tb_dir, ckpt_dir, hf_copies_root(args)) \
            if submits(cfg.cluster) else None
        script = write_job(name=job.name, description=job.description, job_dir=job_dir, argv=args, plan=plan,
                           slurm=cfg.cluster.slurm, launch=cfg.launch, judge=sections[0] if sections else None,
                           finish=finish, hf_checkpoints=cfg.engine.hf_checkpoints)
        prepared = {"script": str(script), "reward_module": str(module), "dataset": str(data_path),
                    "openrlhf_args": args, "checkpoint": str(ckpt_dir), "plan": plan, "prompt_lengths": lengths,
                    **({"examples": len(items)} if items is not None else {"data": data_sources(cfg.data)})}
        return {**launch(prepared, cfg, tracker, job.tags), **job.summary(items)}
