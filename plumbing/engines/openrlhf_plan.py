"""The resource plan of an OpenRLHF run: which GPUs each role gets on the job's allocation.

OpenRLHF 0.11.2's start-up (``train_ppo_ray.train``) places its roles on the Ray cluster
with placement groups of one-GPU bundles, and fails or waits forever when they do not fit:

- ``--train.colocate_all``: one group of actor nodes x GPUs bundles holds the actor, the
  reference, the critic and the vLLM engines (0.2 GPU each); it asserts
  ``actor nodes x GPUs == vLLM engines x TP`` and (with a KL term) ``ref == actor``;
- otherwise the actor, the reference, the critic and the vLLM engines each take a group of
  their own, so their GPUs add up; a group the cluster cannot hold waits forever.

``plan`` derives a layout from the allocation (training nodes x GPUs per node, the judge's
node or share) and the algorithm (a critic for ``gae``, a reference model when KL is on):
every role colocated on all training GPUs, vLLM engines filling them at the configured
tensor parallelism, sleep on. A layout the user gives (``engine.colocate_all``,
``engine.vllm_num_engines``, ``engine.role_nodes``/``role_gpus_per_node``) is checked by
``problems`` against the same rules before anything is written or submitted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

Problems = List[Tuple[str, str]]


@dataclass(frozen=True)
class Group:
    """A role's share: OpenRLHF's ``--<role>.num_nodes`` x ``--<role>.num_gpus_per_node``."""

    nodes: int
    gpus_per_node: int

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class Plan:
    cluster: str  # slurm | local
    job_nodes: int  # nodes the job asks for (training + the judge's own node)
    gpus_per_node: int  # GPUs of each node
    ray_nodes: int  # nodes of the Ray cluster
    ray_gpus_per_node: int  # GPUs each Ray node offers (a node shared with the judge offers the rest)
    ray_cpus_per_node: int
    colocate_all: bool
    actor: Group
    ref: Optional[Group]
    critic: Optional[Group]
    vllm_engines: int
    vllm_tp: int
    sleep: bool
    judge: str  # none | endpoint | own node | shared node
    judge_gpus: int = 0  # GPUs of the judge's vllm serve (its tensor parallelism in this job)

    @property
    def judge_dp(self) -> int:
        """Data-parallel replicas of a judge on its own node: as many as its TP fits, so no
        GPU of that node sits idle (1 elsewhere)."""
        if self.judge != "own node" or not self.judge_gpus:
            return 1
        return max(self.gpus_per_node // self.judge_gpus, 1)

    @property
    def ray_gpus(self) -> int:
        return self.ray_nodes * self.ray_gpus_per_node

    @property
    def judge_devices(self) -> Optional[str]:
        """CUDA devices of a judge sharing the training node: the first ``judge_gpus``."""
        return ",".join(map(str, range(self.judge_gpus))) if self.judge == "shared node" else None

    @property
    def ray_devices(self) -> Optional[str]:
        """CUDA devices Ray may use on a node shared with the judge: the others."""
        if self.judge != "shared node":
            return None
        return ",".join(map(str, range(self.judge_gpus, self.gpus_per_node)))

    def requested_gpus(self) -> int:
        """GPUs OpenRLHF's placement groups ask of the Ray cluster."""
        if self.colocate_all:
            return self.actor.gpus
        groups = [self.actor, self.ref, self.critic]
        return sum(g.gpus for g in groups if g) + self.vllm_engines * self.vllm_tp

    def rows(self) -> List[Tuple[str, str]]:
        share = "colocated (0.2 GPU each, sleep between phases)" if self.colocate_all else "own GPUs"
        out = [("job", f"{self.job_nodes} node(s) x {self.gpus_per_node} GPUs ({self.cluster})"),
               ("Ray cluster", f"{self.ray_nodes} node(s) x {self.ray_gpus_per_node} GPUs, "
                               f"{self.ray_cpus_per_node} CPUs"),
               ("actor", f"{self.actor.nodes} x {self.actor.gpus_per_node} GPUs, {share}")]
        for name, group in (("reference", self.ref), ("critic", self.critic)):
            out.append((name, f"{group.nodes} x {group.gpus_per_node} GPUs, {share}" if group else "-"))
        out.append(("vLLM rollout", f"{self.vllm_engines} engines x TP {self.vllm_tp}"
                                    + (", sleep" if self.sleep else "")))
        judge = {"none": "-", "endpoint": "an endpoint outside the job",
                 "own node": f"vllm serve on its own node (TP {self.judge_gpus}"
                             + (f" x DP {self.judge_dp})" if self.judge_dp > 1 else ")"),
                 "shared node": f"vllm serve on GPUs {self.judge_devices} of the node (TP {self.judge_gpus}); "
                                f"Ray gets GPUs {self.ray_devices}"}[self.judge]
        out.append(("judge", judge))
        out.append(("GPUs asked of Ray", f"{self.requested_gpus()} of {self.ray_gpus}"))
        return out

    def describe(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in self.rows())


def plan(engine: Any, algo: Any, cluster: str, cpus_per_node: int, judge_gpus: Optional[int] = None,
         judge_endpoint: bool = False) -> Plan:
    """The layout of one run. ``judge_gpus``: the tensor parallelism of a judge the job
    serves itself (None: no such judge); ``cluster``: slurm (the judge gets a node of its
    own) or local (one machine: the judge takes its GPUs off the training node)."""
    local = cluster == "local"
    ray_nodes = 1 if local else engine.num_nodes
    ray_gpus_per_node = engine.gpus_per_node
    judge = "endpoint" if judge_endpoint else "none"
    if judge_gpus:
        judge = "shared node" if local else "own node"
        if local:  # one machine: the judge gets half the node (at that TP), training the other half, so
            # the training world stays a power of two that divides the batch sizes as the node's does
            judge_gpus = max(engine.gpus_per_node // 2, 1)
            ray_gpus_per_node -= judge_gpus
    job_nodes = ray_nodes + (1 if judge == "own node" else 0)
    colocate = True if engine.colocate_all is None else bool(engine.colocate_all)
    tp = engine.vllm_tensor_parallel_size
    if colocate:
        actor = Group(ray_nodes, max(ray_gpus_per_node, 0))
        engines = engine.vllm_num_engines or max(actor.gpus // tp, 0)
        role = actor
    else:
        role = Group(engine.role_nodes or ray_nodes, engine.role_gpus_per_node or 0)
        actor = role
        roles = 1 + int(algo.kl_coef > 0) + int(algo.estimator == "gae")
        engines = engine.vllm_num_engines or max((ray_nodes * ray_gpus_per_node - roles * role.gpus) // tp, 0)
    sleep = colocate if engine.vllm_enable_sleep is None else bool(engine.vllm_enable_sleep and colocate)
    # OpenRLHF's bundles take one (logical) CPU per GPU besides the actors' own: Ray is told at
    # least that many, whatever the node's cores (a local run's Slurm setting means nothing).
    ray_cpus = max(cpus_per_node if not local else (os.cpu_count() or 1), 2 * engine.gpus_per_node + 4)
    return Plan(cluster=cluster, job_nodes=job_nodes, gpus_per_node=engine.gpus_per_node, ray_nodes=ray_nodes,
                ray_gpus_per_node=ray_gpus_per_node, ray_cpus_per_node=ray_cpus, colocate_all=colocate,
                actor=actor, ref=role if algo.kl_coef > 0 else None,
                critic=role if algo.estimator == "gae" else None, vllm_engines=engines, vllm_tp=tp, sleep=sleep,
                judge=judge, judge_gpus=judge_gpus or 0)


def problems(p: Plan, engine: Any, algo: Any = None) -> Problems:
    """Every way this layout would fail OpenRLHF's start-up, naming the keys to change."""
    out: Problems = []
    if p.ray_gpus_per_node <= 0:
        out.append(("engine.gpus_per_node", f"the judge's {p.judge_gpus} GPUs leave no GPU for training on a "
                                            f"{p.gpus_per_node}-GPU node: lower the judge's tensor_parallel_size, "
                                            "or run it elsewhere (cluster=slurm gives it a node)"))
        return out
    if p.ray_gpus_per_node % p.vllm_tp:
        out.append(("engine.vllm_tensor_parallel_size", f"{p.vllm_tp} does not divide the {p.ray_gpus_per_node} "
                                                         "GPUs of a Ray node: a tensor-parallel group must sit on one node"))
    if p.vllm_engines <= 0:
        out.append(("engine.vllm_num_engines", "no GPU is left for a vLLM engine"))
    if p.colocate_all:
        if p.vllm_engines * p.vllm_tp != p.actor.gpus:
            out.append(("engine.vllm_num_engines", f"with colocate_all OpenRLHF needs vLLM engines x TP == the "
                                                   f"actor's GPUs: {p.vllm_engines} x {p.vllm_tp} != {p.actor.gpus}; "
                                                   f"leave it null ({p.actor.gpus // p.vllm_tp} here)"))
    else:
        if not (engine.role_nodes and engine.role_gpus_per_node):
            out.append(("engine.role_gpus_per_node", "colocate_all=false gives the actor, reference and critic GPUs "
                                                     "of their own: set engine.role_nodes and engine.role_gpus_per_node "
                                                     "(or leave colocate_all null: everything colocated)"))
        elif p.requested_gpus() > p.ray_gpus:
            parts = " + ".join(f"{name} {g.gpus}" for name, g in (("actor", p.actor), ("ref", p.ref),
                                                                  ("critic", p.critic)) if g)
            out.append(("engine.role_gpus_per_node", f"{parts} + vLLM {p.vllm_engines} x {p.vllm_tp} = "
                                                     f"{p.requested_gpus()} GPUs, the Ray cluster has {p.ray_gpus}: "
                                                     "OpenRLHF would wait for them forever"))
    world = p.actor.gpus  # DeepSpeed's data-parallel world of the actor (and a colocated critic)
    if world and algo is not None:
        if algo.train_batch_size % (algo.micro_batch_size * world):
            out.append(("algo.train_batch_size", f"DeepSpeed needs train_batch_size ({algo.train_batch_size}) divisible "
                                                 f"by micro_batch_size ({algo.micro_batch_size}) x the actor's "
                                                 f"{world} GPUs"))
        if algo.n_samples_per_prompt * algo.rollout_batch_size // algo.micro_batch_size < world:
            out.append(("algo.rollout_batch_size", f"OpenRLHF needs n_samples_per_prompt x rollout_batch_size / "
                                                   f"micro_batch_size >= the actor's {world} GPUs"))
    if p.judge == "own node" and p.judge_gpus > p.gpus_per_node:
        out.append(("tensor_parallel_size", f"the judge's TP {p.judge_gpus} exceeds a node's {p.gpus_per_node} GPUs"))
    return out


def stage_plan(engine: Any, algo: Any, cluster: Any, judges: Any) -> Plan:
    """The plan of a stage's run: ``judges`` are its judge configs (None where unused); one
    served by the job (``serve.launcher: vllm``) gets GPUs, an endpoint none."""
    used = [j for j in judges if j is not None]
    served = [j for j in used if j.serve.launcher == "vllm"]
    return plan(engine, algo, cluster.kind, cluster.slurm.cpus_per_task,
                judge_gpus=served[0].tensor_parallel_size if served else None, judge_endpoint=bool(used) and not served)


# ---------------------------------------------------------------------------- the presets' table
TABLE_HEADER = ["preset", "cluster", "job", "Ray cluster", "actor / ref / critic", "vLLM", "judge"]
PLACEHOLDERS = {"policy_train": ["genrm.model=/path/to/genrm"]}  # what a preset leaves for the user


def preset_rows(presets: List[Tuple[str, str]], clusters=("slurm", "local")) -> List[List[str]]:
    """A row per (cluster preset, cluster kind): the plan its dry run would print."""
    from plumbing.config.hydra_app import compose

    rows = []
    for preset, stage in presets:
        for kind in clusters:
            obj, _ = compose(stage, [f"experiment={preset}", f"cluster={kind}", *PLACEHOLDERS.get(stage, [])],
                             validate_config=False)
            p = obj.plan()
            roles = " / ".join(f"{g.nodes}x{g.gpus_per_node}" if g else "-" for g in (p.actor, p.ref, p.critic))
            judge = {"none": "-", "endpoint": "endpoint", "own node": f"own node, TP {p.judge_gpus}" + (f" x DP {p.judge_dp}" if p.judge_dp > 1 else ""),
                     "shared node": f"GPUs {p.judge_devices} (TP {p.judge_gpus})"}[p.judge]
            rows.append([preset, kind, f"{p.job_nodes} x {p.gpus_per_node} GPUs",
                         f"{p.ray_nodes} x {p.ray_gpus_per_node} GPUs",
                         roles + (" colocated" if p.colocate_all else ""),
                         f"{p.vllm_engines} x TP {p.vllm_tp}" + (", sleep" if p.sleep else ""), judge])
    return rows


def cluster_presets() -> List[Tuple[str, str]]:
    """(preset, stage) of the training presets under conf/experiment/ that use engine=openrlhf."""
    import yaml

    from plumbing.config.hydra_app import compose, conf_dir

    out = []
    for path in sorted((conf_dir() / "experiment").glob("*.yaml")):
        stage = (yaml.safe_load(path.read_text()) or {}).get("stage")
        if stage in ("genrm_train", "policy_train") and not path.stem.startswith("_"):
            obj, _ = compose(stage, [f"experiment={path.stem}", *PLACEHOLDERS.get(stage, [])], validate_config=False)
            if obj.engine.adapter().lays_out_cluster:
                out.append((path.stem, stage))
    return out


def main() -> None:
    """``python -m plumbing.engines.openrlhf_plan``: the README's table of the cluster presets' plans."""
    from plumbing.report import markdown

    print(markdown(TABLE_HEADER, preset_rows(cluster_presets())))


if __name__ == "__main__":
    main()
