"""A simulated Ray cluster: the parts of Ray's API that OpenRLHF's start-up uses, with Ray's
resource semantics and none of its processes.

Nodes have CPUs and GPUs (as ``ray start --num-cpus/--num-gpus`` gives them); a placement
group reserves its bundles on nodes atomically (PACK, STRICT_PACK, SPREAD, STRICT_SPREAD);
an actor takes its ``num_gpus``/``num_cpus`` (fractions allowed) from its bundle, or from
any node outside a placement group. Where real Ray would wait forever (a placement group or
an actor whose resources the cluster does not have, an actor whose start-up cannot get its
workers' GPUs), ``Unplaceable`` is raised at once with what was asked and what was free. Actor methods run in this process when asked for;
``STUB_METHODS`` (the ones that need a GPU: model loading, training) return None.

    import sim_ray as sim; sim.install(nodes=2, gpus_per_node=8, cpus_per_node=96)
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from typing import Any, Dict, List, Optional

EPS = 1e-9
STUB_METHODS = {"init_model_from_pretrained", "save_model", "fit", "empty_cache"}
LOG: List[str] = []  # what was placed where, for tests and messages


class Unplaceable(RuntimeError):
    """Real Ray would wait for these resources forever."""


class Node:
    def __init__(self, node_id: str, cpus: float, gpus: float):
        self.id = node_id
        self.free = {"CPU": float(cpus), "GPU": float(gpus)}
        self.total = dict(self.free)


class Cluster:
    def __init__(self, nodes: int, gpus_per_node: float, cpus_per_node: float):
        self.nodes = [Node(f"node-{i}", cpus_per_node, gpus_per_node) for i in range(nodes)]

    def describe(self) -> str:
        return ", ".join(f"{n.id}: {n.free['GPU']:g}/{n.total['GPU']:g} GPU, {n.free['CPU']:g} CPU free"
                         for n in self.nodes)


CLUSTER: Optional[Cluster] = None
_current_pg: List["PlacementGroup"] = []


def _fits(free: Dict[str, float], need: Dict[str, float]) -> bool:
    return all(free.get(k, 0.0) + EPS >= v for k, v in need.items() if v)


def _take(free: Dict[str, float], need: Dict[str, float]) -> None:
    for k, v in need.items():
        if v:
            free[k] = free.get(k, 0.0) - v


# ----------------------------------------------------------------------------- placement groups
class PlacementGroup:
    def __init__(self, bundles: List[Dict[str, float]], strategy: str = "PACK"):
        self.bundle_specs = [dict(b) for b in bundles]
        self.strategy = strategy
        self.bundle_free: List[Dict[str, float]] = []
        self.bundle_node: List[str] = []
        self.error: Optional[str] = None
        self._place()

    def _place(self) -> None:
        nodes = CLUSTER.nodes
        trial = {n.id: dict(n.free) for n in nodes}
        assignment: List[str] = []
        order = sorted(nodes, key=lambda n: -n.free.get("GPU", 0.0))  # fullest-free first: packs
        used: List[str] = []
        for spec in self.bundle_specs:
            if self.strategy == "STRICT_PACK":
                candidates = [n for n in order if not used or n.id == used[0]]
            elif self.strategy in ("SPREAD", "STRICT_SPREAD"):
                candidates = sorted(order, key=lambda n: used.count(n.id))
                if self.strategy == "STRICT_SPREAD":
                    candidates = [n for n in candidates if n.id not in used]
            else:  # PACK: the nodes already used first, then the others
                candidates = [n for n in order if n.id in used] + [n for n in order if n.id not in used]
            node = next((n for n in candidates if _fits(trial[n.id], spec)), None)
            if node is None:
                self.error = (f"placement group of {len(self.bundle_specs)} bundles {self.bundle_specs[0]} "
                              f"({self.strategy}) cannot be placed; cluster: {CLUSTER.describe()}")
                return
            _take(trial[node.id], spec)
            assignment.append(node.id)
            used.append(node.id)
        for n in nodes:
            n.free = trial[n.id]
        self.bundle_node = assignment
        self.bundle_free = [dict(spec) for spec in self.bundle_specs]
        LOG.append(f"placement group: {len(assignment)} bundles on {sorted(set(assignment))}")

    def ready(self) -> "ObjectRef":
        def resolve():
            if self.error:
                raise Unplaceable(self.error)
            return True

        return ObjectRef(resolve)

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)


def placement_group(bundles, strategy="PACK", name="", lifetime=None, **_):
    return PlacementGroup(bundles, strategy)


def placement_group_table(pg: PlacementGroup) -> Dict[str, Any]:
    return {"bundles_to_node_id": dict(enumerate(pg.bundle_node)), "strategy": pg.strategy}


def get_current_placement_group() -> Optional[PlacementGroup]:
    return _current_pg[-1] if _current_pg else None


def take_from_bundle(pg: PlacementGroup, index: int, need: Dict[str, float], who: str) -> None:
    """Resources from one bundle of a placed group (vLLM's TP workers use this)."""
    if pg.error:
        raise Unplaceable(pg.error)
    if not 0 <= index < pg.bundle_count:
        raise Unplaceable(f"{who}: bundle index {index} of a group of {pg.bundle_count}")
    if not _fits(pg.bundle_free[index], need):
        raise Unplaceable(f"{who}: bundle {index} has {pg.bundle_free[index]} left, {need} asked")
    _take(pg.bundle_free[index], need)


class PlacementGroupSchedulingStrategy:
    def __init__(self, placement_group, placement_group_bundle_index=-1, placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


# ----------------------------------------------------------------------------- tasks and actors
class ObjectRef:
    def __init__(self, resolve):
        self._resolve = resolve


def get(refs, timeout=None):
    if isinstance(refs, list):
        return [get(r) for r in refs]
    if isinstance(refs, ObjectRef):
        return refs._resolve()
    return refs


def _run(value):
    return asyncio.run(value) if inspect.iscoroutine(value) else value


class ActorHandle:
    def __init__(self, cls, args, kwargs, opts):
        self._cls, self._instance = cls, None
        need = {"GPU": float(opts.get("num_gpus") or 0), "CPU": float(opts.get("num_cpus", 1) or 0)}
        strategy = opts.get("scheduling_strategy")
        name = cls.__name__
        pg = strategy.placement_group if isinstance(strategy, PlacementGroupSchedulingStrategy) else None
        # real Ray would wait forever for what cannot be placed: Unplaceable now, not at a first call
        if pg is not None:
            index = strategy.placement_group_bundle_index
            if index is None or index < 0:
                index = next((i for i, f in enumerate(pg.bundle_free) if _fits(f, need)), 0)
            take_from_bundle(pg, index, need, name)
            where = f"in bundle {index} on {pg.bundle_node[index]}"
        else:
            node = next((n for n in CLUSTER.nodes if _fits(n.free, need)), None)
            if node is None:
                raise Unplaceable(f"{name}: {need} asked; cluster: {CLUSTER.describe()}")
            _take(node.free, need)
            where = f"on {node.id}"
        captured = pg is not None and bool(strategy.placement_group_capture_child_tasks)
        if captured:
            _current_pg.append(pg)
        try:
            instance = cls.__new__(cls)
            _run(cls.__init__(instance, *args, **kwargs))  # a failing start-up (a TP worker without a GPU) raises
            self._instance = instance
        finally:
            if captured:
                _current_pg.pop()
        LOG.append(f"{name}: {need['GPU']:g} GPU {where}")  # placed and started

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            def resolve():
                if method in STUB_METHODS:
                    return None
                return _run(getattr(self._instance, method)(*args, **kwargs))

            return ObjectRef(resolve)

        return types.SimpleNamespace(remote=call)


class ActorClass:
    def __init__(self, cls, opts):
        self._cls, self._opts = cls, opts
        self.__name__ = cls.__name__

    def options(self, **opts):
        return ActorClass(self._cls, {**self._opts, **{k: v for k, v in opts.items() if v is not None or k == "num_gpus"}})

    def remote(self, *args, **kwargs):
        return ActorHandle(self._cls, args, kwargs, self._opts)


def remote(*args, **opts):
    if len(args) == 1 and not opts and callable(args[0]):
        return ActorClass(args[0], {}) if inspect.isclass(args[0]) else args[0]
    return lambda cls: ActorClass(cls, opts) if inspect.isclass(cls) else cls


# ----------------------------------------------------------------------------- the module
def install(nodes: int, gpus_per_node: float, cpus_per_node: float) -> Cluster:
    """Put ``ray`` (and the submodules OpenRLHF imports) into sys.modules, over this cluster."""
    global CLUSTER
    CLUSTER = Cluster(nodes, gpus_per_node, cpus_per_node)
    LOG.clear()
    ray = types.ModuleType("ray")
    ray.__sim__ = True
    ray.is_initialized = lambda: True
    ray.init = lambda *a, **k: None
    ray.get = get
    ray.remote = remote
    ray.get_gpu_ids = lambda: [0]
    ray.nodes = lambda: [{"NodeID": n.id, "Alive": True, "Resources": n.total} for n in CLUSTER.nodes]
    util = types.ModuleType("ray.util")
    pg_mod = types.ModuleType("ray.util.placement_group")
    pg_mod.placement_group = placement_group
    pg_mod.PlacementGroup = PlacementGroup
    pg_mod.placement_group_table = placement_group_table
    pg_mod.get_current_placement_group = get_current_placement_group
    strategies = types.ModuleType("ray.util.scheduling_strategies")
    strategies.PlacementGroupSchedulingStrategy = PlacementGroupSchedulingStrategy
    util.placement_group = pg_mod
    util.scheduling_strategies = strategies
    util.placement_group_table = placement_group_table
    util.get_current_placement_group = get_current_placement_group
    private = types.ModuleType("ray._private")
    services = types.ModuleType("ray._private.services")
    services.get_node_ip_address = lambda: "10.0.0.1"
    private.services = services
    worker = types.ModuleType("ray._private.worker")
    worker.global_worker = types.SimpleNamespace(gcs_client=types.SimpleNamespace(address="10.0.0.1:6379"))
    private.worker = worker
    private.__path__ = []  # a package, as the real one is
    ray.util, ray._private = util, private
    sys.modules.update({"ray": ray, "ray.util": util, "ray.util.placement_group": pg_mod,
                        "ray.util.scheduling_strategies": strategies, "ray._private": private,
                        "ray._private.services": services, "ray._private.worker": worker})
    return CLUSTER
