"""Run OpenRLHF 0.11.2's real ``train_ppo_ray`` start-up (its parser, its post-parse checks,
``train()`` with its assertions, ``RayActorGroup`` and ``create_vllm_engines`` with their
placement groups) on a simulated Ray cluster of a given size (``tests/helpers/sim_ray.py``).

Stand-ins only for what needs a GPU: vLLM's engine (its TP workers take their GPUs from the
placement group's bundles, as vLLM's Ray executor does), DeepSpeed (its batch-size assertion
is kept; model loading and training are no-ops), the PPO trainer's fit. Everything OpenRLHF decides about
where things go runs for real.

    echo '[{"argv": [...], "nodes": 2, "gpus_per_node": 8, "cpus_per_node": 96}]' \\
        | python tests/helpers/openrlhf_startup.py
prints one JSON result per case: {"ok": true, "placed": [...]} or {"ok": false, "stage":
"parse" | "assert" | "placement" | "error", "error": "..."}.
"""

import contextlib
import io
import json
import os
import runpy
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim_ray as sim  # noqa: E402


class _FakeEngine:
    """vLLM's AsyncLLMEngine as far as placement goes: with the Ray executor its TP workers
    take VLLM_RAY_PER_WORKER_GPUS each from the bundles in VLLM_RAY_BUNDLE_INDICES."""

    def __init__(self, args):
        if args.get("distributed_executor_backend") == "ray":
            pg = sim.get_current_placement_group()
            if pg is None:
                raise sim.Unplaceable("a vLLM engine with tensor parallelism outside a placement group")
            per = float(os.environ["VLLM_RAY_PER_WORKER_GPUS"])
            for index in map(int, os.environ["VLLM_RAY_BUNDLE_INDICES"].split(",")):
                sim.take_from_bundle(pg, index, {"GPU": per}, "vLLM tensor-parallel worker")
            sim.LOG.append(f"vLLM engine: TP {args['tensor_parallel_size']} on bundles "
                           f"{os.environ['VLLM_RAY_BUNDLE_INDICES']}")

    async def is_sleeping(self):
        return False

    async def sleep(self, level=1):
        return None

    async def wake_up(self, tags=None):
        return None


def _install_stand_ins():
    vllm = types.ModuleType("vllm")
    vllm.__version__ = "0.29.0"
    vllm.inputs = types.ModuleType("vllm.inputs")
    vllm.inputs.TokensPrompt = dict
    vllm.utils = types.ModuleType("vllm.utils")
    vllm.utils.random_uuid = lambda: "0"
    vllm.AsyncEngineArgs = lambda *a, **k: dict(k)
    vllm.AsyncLLMEngine = types.SimpleNamespace(from_engine_args=_FakeEngine)
    models = types.ModuleType("openrlhf.models")
    models.Actor = object
    models.get_llm_for_sequence_regression = lambda *a, **k: None
    ds = types.ModuleType("openrlhf.utils.deepspeed")
    ds.DeepspeedStrategy = object
    sys.modules.update({"vllm": vllm, "vllm.inputs": vllm.inputs, "vllm.utils": vllm.utils,
                        "openrlhf.models": models, "openrlhf.utils.deepspeed": ds})

    import openrlhf.utils as utils
    from openrlhf.trainer.ray import launcher  # real: RayActorGroup and the actor base classes

    def get_strategy(args):
        """DeepSpeed's strategy, as far as start-up goes: its batch-size assertion
        (train batch == micro batch x accumulation steps x data-parallel world)."""
        world = args.actor.num_nodes * args.actor.num_gpus_per_node // args.ds.ring_attn_size // args.ds.tensor_parallel_size
        micro, batch = args.train.micro_batch_size, args.train.batch_size
        accumulation = batch // micro // world
        assert batch == micro * accumulation * world, (
            f"DeepSpeed: train_batch_size {batch} != micro_batch {micro} * gradient_acc_step {accumulation} * world {world}")
        return types.SimpleNamespace(print=lambda *a, **k: None, args=args)

    utils.get_strategy = get_strategy
    actor = types.ModuleType("openrlhf.trainer.ray.ppo_actor")
    actor.PolicyModelActor = sim.remote(num_gpus=1)(type("PolicyModelActor", (launcher.BaseModelActor,), {}))
    critic = types.ModuleType("openrlhf.trainer.ray.ppo_critic")
    critic.CriticModelActor = sim.remote(num_gpus=1)(type("CriticModelActor", (launcher.BaseModelActor,), {}))
    trainer = types.ModuleType("openrlhf.trainer.ppo_trainer")

    class PPOTrainer:
        def __init__(self, *a, **k):
            pass

        def get_max_steps(self):
            return 1

    trainer.PPOTrainer = sim.remote(PPOTrainer)  # a bare @ray.remote, as OpenRLHF's: one CPU to schedule
    sys.modules.update({"openrlhf.trainer.ray.ppo_actor": actor, "openrlhf.trainer.ray.ppo_critic": critic,
                        "openrlhf.trainer.ppo_trainer": trainer})


def start(case):
    sim.install(case["nodes"], case["gpus_per_node"], case["cpus_per_node"])
    sys.modules.pop("openrlhf.cli.train_ppo_ray", None)
    err, old_argv = io.StringIO(), sys.argv
    sys.argv = ["train_ppo_ray", *case["argv"]]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
        return {"ok": True, "placed": list(sim.LOG)}
    except SystemExit as e:
        return {"ok": False, "stage": "parse", "error": f"exit {e.code}: {err.getvalue().strip()[-800:]}"}
    except AssertionError as e:
        return {"ok": False, "stage": "assert", "error": str(e)}
    except sim.Unplaceable as e:
        return {"ok": False, "stage": "placement", "error": str(e)}
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"ok": False, "stage": "error", "error": f"{type(e).__name__}: {e}"}
    finally:
        sys.argv = old_argv


def main():
    sim.install(1, 1, 1)  # the real modules decorate their classes with this ray at import
    _install_stand_ins()
    for case in json.load(sys.stdin):
        print(json.dumps(start(case)), flush=True)


if __name__ == "__main__":
    main()
