"""Run OpenRLHF 0.11.2's real argument parser (and its post-parse checks) on command lines.

The parser is built inline under ``if __name__ == "__main__"`` of
``openrlhf/cli/train_ppo_ray.py``; this runs that module as ``__main__`` with stand-ins for
what needs GPUs (Ray actors, vLLM engines, the trainer classes) and a ``get_strategy`` that
stops right after parsing, handing back the parsed arguments.

    echo '[["--actor.model_name_or_path", "m", ...], ...]' | python tests/helpers/openrlhf_parse.py
prints one JSON result per command line: {"ok": true, "args": {...}} or {"ok": false, "error": ...}.
"""

import contextlib
import io
import json
import runpy
import sys
import types


class Parsed(Exception):
    def __init__(self, args):
        self.args_ = args


def _stand_ins():
    import openrlhf.utils as utils  # real: only get_strategy is replaced

    def get_strategy(args):
        raise Parsed(args)

    utils.get_strategy = get_strategy
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: True
    ray.init = lambda *a, **k: None
    ray.get = lambda x: x
    util = types.ModuleType("ray.util")
    pg = types.ModuleType("ray.util.placement_group")
    pg.placement_group = lambda *a, **k: None
    ray.util = util
    util.placement_group = pg
    trainer_ray = types.ModuleType("openrlhf.trainer.ray")
    trainer_ray.create_vllm_engines = lambda *a, **k: None
    launcher = types.ModuleType("openrlhf.trainer.ray.launcher")
    for name in ("RayActorGroup", "ReferenceModelActor", "RewardModelActor"):
        setattr(launcher, name, type(name, (), {}))
    actor = types.ModuleType("openrlhf.trainer.ray.ppo_actor")
    actor.PolicyModelActor = type("PolicyModelActor", (), {})
    critic = types.ModuleType("openrlhf.trainer.ray.ppo_critic")
    critic.CriticModelActor = type("CriticModelActor", (), {})
    return {"ray": ray, "ray.util": util, "ray.util.placement_group": pg, "openrlhf.trainer.ray": trainer_ray,
            "openrlhf.trainer.ray.launcher": launcher, "openrlhf.trainer.ray.ppo_actor": actor,
            "openrlhf.trainer.ray.ppo_critic": critic}


def _plain(ns):
    out = {}
    for k, v in vars(ns).items():
        out[k] = _plain(v) if hasattr(v, "__dict__") and not isinstance(v, type) else v
    return out


def parse(argv):
    stand_ins = _stand_ins()
    saved = {k: sys.modules.get(k) for k in stand_ins}
    sys.modules.update(stand_ins)
    sys.modules.pop("openrlhf.cli.train_ppo_ray", None)
    err = io.StringIO()
    old_argv = sys.argv
    sys.argv = ["train_ppo_ray", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
        return {"ok": False, "error": "the module returned without reaching get_strategy"}
    except Parsed as p:
        return {"ok": True, "args": json.loads(json.dumps(_plain(p.args_), default=str))}
    except SystemExit as e:
        return {"ok": False, "error": f"exit {e.code}: {err.getvalue().strip()[-800:]}"}
    except AssertionError as e:
        return {"ok": False, "error": f"assertion: {e}"}
    finally:
        sys.argv = old_argv
        for key, module in saved.items():  # put back only what was replaced
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


if __name__ == "__main__":
    print(json.dumps([parse(a) for a in json.load(sys.stdin)]))
