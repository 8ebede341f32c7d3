"""Hydra glue: every stage is a Hydra app over ``conf/<stage>.yaml`` with a dataclass schema.

``stage_main`` turns ``run(cfg) -> summary`` into ``python -m <module>``: Hydra composes the
config (an unknown key or a wrong type stops there, naming the key), the schema's checks run
(exit code 2 with every problem listed), the output directory is fixed, and the body runs
inside the stage's MLflow run. ``compose`` gives the same validated config without Hydra's
runner, for the pipeline and for tests.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import signal
import sys
from collections import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError

from plumbing.components import fill_names, fill_params
from plumbing.config.validate import ConfigError, unknown_entry_keys, unknown_key, unknown_keys, validate
from plumbing.errors import SuiteError, Terminated


def conf_dir() -> Path:
    """The project's ``conf/``: the checkout's, or the copy a wheel ships (``RALIGN_CONF_DIR`` overrides)."""
    from plumbing.shipped import shipped_dir

    env = os.environ.get("RALIGN_CONF_DIR")
    path = Path(env) if env else shipped_dir("conf")
    if not path.is_dir():
        raise RuntimeError(f"config directory {path} not found: reinstall the suite (pip install .) or set RALIGN_CONF_DIR")
    return path


# ---------------------------------------------------------------------------- stage table
@dataclass(frozen=True)
class StageSpec:
    name: str  # also the root config's name: conf/<name>.yaml
    module: str  # `python -m <module>`; defines SCHEMA and run(cfg)


@functools.lru_cache(maxsize=8)
def _read_stages(path: str, mtime_ns: int) -> Dict[str, StageSpec]:
    import yaml

    table = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise RuntimeError(f"{path}: expected a mapping of stage name to module, got {table!r}")
    return {str(name): StageSpec(str(name), module) for name, module in table.items()}


class StageTable(abc.Mapping[str, StageSpec]):
    """The stages by name as ``conf/stages.yaml`` lists them (``name: module``), read from
    the config directory in use: which package runs a stage is configuration, so the shared
    package names none (tests/unit/test_layering.py)."""

    def _table(self) -> Dict[str, StageSpec]:
        path = conf_dir() / "stages.yaml"
        if not path.is_file():
            raise RuntimeError(f"{path} not found: the config directory lists its stages there")
        return _read_stages(str(path), path.stat().st_mtime_ns)

    def __getitem__(self, name: str) -> StageSpec:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


STAGES: Mapping[str, StageSpec] = StageTable()


SEARCHPATH_ENV = "RALIGN_SEARCHPATH"  # hydra.searchpath of the command, for what it composes


def stage_module(stage: str) -> Any:
    try:
        spec = STAGES[stage]
    except KeyError:
        raise ConfigError([("stage", f"unknown stage {stage!r}; known: {sorted(STAGES)}")]) from None
    return importlib.import_module(spec.module)


def load_stage(stage: str) -> Any:
    """The stage's module, with its schema registered for Hydra as ``<stage>_schema``."""
    from hydra.core.config_store import ConfigStore

    mod = stage_module(stage)
    ConfigStore.instance().store(name=f"{stage}_schema", node=open_entries(OmegaConf.structured(mod.SCHEMA)))
    return mod


def open_entries(node: DictConfig) -> DictConfig:
    """The schema Hydra composes with, its maps of typed entries (a pipeline's steps, a
    matrix's variants) taking any mapping: an entry added from the command line
    (``'+steps.x={stage: correlate}'``) is a plain dict to OmegaConf, which a map typed
    ``Dict[str, PipelineStep]`` refuses. ``validate`` types every entry afterwards, so a
    wrong entry is still refused, naming its key."""
    for key in list(node.keys()):
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            if dataclasses.is_dataclass(child._metadata.element_type):
                child._metadata.element_type = Any
                child._metadata.ref_type = Dict[str, Any]
                OmegaConf.set_struct(child, False)  # `steps.x.enabled=false` on an entry that does not list it
            else:
                open_entries(child)
    return node


# ---------------------------------------------------------------------------- compose
def compose(stage: str, overrides: Sequence[str] = (), validate_config: bool = True) -> Tuple[Any, DictConfig]:
    """Compose and validate ``conf/<stage>.yaml`` with overrides: (dataclass, DictConfig);
    ``validate_config=False``: typed but not checked."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    mod = load_stage(stage)
    overrides = with_aliases(mod, overrides)
    if os.environ.get(SEARCHPATH_ENV) and not any(o.lstrip("+").startswith("hydra.searchpath=") for o in overrides):
        # the search path of the command that composes this one (a pipeline and its steps, a
        # step job): configs of your own found by the pipeline are found by its steps too
        overrides = [*overrides, f"hydra.searchpath=[{os.environ[SEARCHPATH_ENV]}]"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            cfg = hydra_compose(config_name=stage, overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
            del cfg["hydra"]
        try:
            cfg = OmegaConf.merge(OmegaConf.structured(mod.SCHEMA), cfg)  # entries typed again (open_entries)
        except ConfigKeyError as e:  # keys no field of an entry takes (+data.x={pth: ..}): every one, with the one it may mean
            kind = getattr(e, "object_type", None)
            if not dataclasses.is_dataclass(kind) or getattr(e, "key", None) is None:
                raise
            problems = unknown_keys(cfg) + unknown_entry_keys(cfg, mod.SCHEMA) or [(_key_of(e), unknown_key(kind, str(e.key)))]
            raise ConfigError(problems, f"conf/{stage}.yaml") from None
        fill_names(cfg, choices, overrides)
    except HydraException as e:
        raise ConfigError([(_key_of(e), _message(e) + _preset_hint(stage, overrides))], f"conf/{stage}.yaml") from None
    except Exception as e:  # omegaconf errors during merge carry the key
        if type(e).__module__.startswith("omegaconf"):
            raise ConfigError([(_key_of(e), _message(e) + _preset_hint(stage, overrides))],
                              f"conf/{stage}.yaml") from None
        raise
    finally:
        GlobalHydra.instance().clear()
    obj = validate(cfg, mod.SCHEMA, f"conf/{stage}.yaml", checks=validate_config)
    return obj, cfg


def with_aliases(mod: Any, overrides: Sequence[str]) -> List[str]:
    """Overrides with a stage's ``KEY_ALIASES`` applied: a key the user naturally writes
    (``model=NAME`` in genrm.score) that Hydra would take for a config group of the same
    name goes to the field that holds it."""
    aliases: Dict[str, str] = getattr(mod, "KEY_ALIASES", {})
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        bare = key.lstrip("+")
        prefix = key[:len(key) - len(bare)]
        if sep and prefix in ("", "+") and not bare.startswith("~") and (".params." in bare or bare.endswith(".params")):
            # A component's params are checked against its class's Params (plumbing.components),
            # not by Hydra: a param its YAML leaves at the default is set like one it lists.
            prefix = "++"
        out.append(f"{prefix}{aliases.get(bare, bare)}={value}" if sep else o)
    return out


def _preset_hint(stage: str, overrides: Sequence[str]) -> str:
    """When the overrides pick an experiment preset written for another stage, say so: its
    keys do not fit this stage's config."""
    import yaml

    names = [o.split("=", 1)[1] for o in overrides if o.startswith(("experiment=", "+experiment="))]
    path = conf_dir() / "experiment" / f"{names[-1]}.yaml" if names else None
    if path is None or not path.is_file():
        return ""
    own = str((yaml.safe_load(path.read_text()) or {}).get("stage", "pipeline"))
    return "" if own == stage else (f"; conf/experiment/{names[-1]}.yaml is a preset for stage {own!r}, not "
                                     f"{stage!r}: run it with `ralign run experiment={names[-1]}`")


def _launcher_hint(overrides: Sequence[str]) -> str:
    """The suite's launchers (``hydra/launcher=ralign_local|ralign_slurm``) are Hydra's submitit
    plugin, an optional dependency: say which extra brings it instead of Hydra's 'not found'."""
    import importlib.util

    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith(("hydra/launcher=", "+hydra/launcher="))]
    if not chosen or not chosen[-1].startswith(("ralign_", "submitit_")):
        return ""
    try:
        if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
            return ""
    except ImportError:
        pass
    return (f"hydra/launcher={chosen[-1]} runs the jobs through Hydra's submitit launcher, which is not installed: "
            "pip install 'ralign-suite[dev]' (or ./scripts/setup.sh local,eval,dev; on a cluster the 'cluster' extra)")


def _message(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0]
    cause = e.__cause__ or e.__context__
    if cause is not None and str(cause).strip():
        msg += f" ({str(cause).strip().splitlines()[0]})"
    return msg


def _key_of(e: BaseException) -> str:
    key = getattr(e, "full_key", None)
    cause = e.__cause__ or e.__context__
    if not key and cause is not None:
        key = getattr(cause, "full_key", None)
    return str(key) if key else "?"


def finalize(obj: Any, cfg: DictConfig, output_dir: Optional[str] = None) -> Tuple[Any, DictConfig]:
    """Fix ``output_dir`` (absolute, created) in both views of the config."""
    out = Path(output_dir or obj.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    obj.output_dir = str(out)
    with open_dict(cfg):
        cfg.output_dir = str(out)
    return obj, cfg


def join_sweep(obj: Any, cfg: DictConfig, sweep_dir: Path) -> None:
    """Jobs of one Hydra multirun share the sweep's MLflow store, a ``sweep_id`` tag and a
    parent run (one per sweep), so each job is a child run of the sweep in the MLflow UI."""
    from plumbing.tracking import tracking_uri

    sweep_dir = sweep_dir.expanduser().resolve()
    with open_dict(cfg):
        if obj.tracking.uri is None:
            obj.tracking.uri = cfg.tracking.uri = tracking_uri(None, sweep_dir)
        if obj.tracking.sweep_id is None:
            from plumbing.config.sweep import sweep_id

            obj.tracking.sweep_id = cfg.tracking.sweep_id = sweep_id(obj.name, sweep_dir)
        if obj.tracking.parent_run_id is None and obj.tracking.enabled and not obj.dry_run:
            from plumbing.tracking import sweep_parent

            obj.tracking.parent_run_id = cfg.tracking.parent_run_id = sweep_parent(
                tracking_uri(obj.tracking.uri, sweep_dir), obj.tracking.experiment, obj.tracking.sweep_id)


def scrub_file(path: Path, config: Dict[str, Any]) -> None:
    """Mask the keys a file written by Hydra itself (multirun.yaml) holds in clear."""
    from plumbing.secrets import Scrubber, collect_secret_values, redact_override_text

    if path.is_file():
        text = path.read_text()
        safe = redact_override_text(Scrubber(collect_secret_values(config) | collect_secret_values(text))(text))
        if safe != text:
            path.write_text(safe)


def plain(cfg: DictConfig) -> Dict[str, Any]:
    """Resolved config as plain containers, without Hydra's own node."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)  # type: ignore[union-attr]
    return data  # type: ignore[return-value]


# ---------------------------------------------------------------------------- running
def execute(stage: str, obj: Any, cfg: DictConfig, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Run a validated stage config inside its MLflow run; return the stage's summary.

    A dry run (``dry_run=true``) shows what the stage would do and opens no MLflow run."""
    from plumbing import tracking
    from plumbing.secrets import Scrubber, collect_secret_values

    mod = stage_module(stage)
    config = fill_params(obj, plain(cfg))  # every param a component runs with, defaults included
    scrub = Scrubber(collect_secret_values(config))
    _write_provenance(Path(obj.output_dir), config, [scrub.override(o) for o in overrides])
    tags = tracking.run_tags(stage, obj.name, obj.seed, obj.tracking.sweep_id, obj.tracking.tags)
    uri = tracking.tracking_uri(obj.tracking.uri, obj.output_dir)
    with tracking.start_run(
        uri=uri, experiment=obj.tracking.experiment, run_name=obj.tracking.run_name or run_name(obj), tags=tags,
        parent_run_id=obj.tracking.parent_run_id, config=config, overrides=overrides,
        enabled=obj.tracking.enabled and not obj.dry_run, max_param_length=obj.tracking.max_param_length,
        fluent=getattr(mod, "FLUENT_RUN", True), run_id=obj.tracking.run_id, workdir=obj.output_dir,
        reuse=getattr(mod, "REUSE_RUN", False),
    ) as run:
        summary = mod.run(obj, run) or {}
        summary.setdefault("mlflow_run_id", run.run_id)
        summary.setdefault("tracking_uri", uri)
    if not obj.dry_run:
        from plumbing.report import where_to_look

        checkpoint = summary.get("checkpoint")
        print("\n" + where_to_look(stage, obj.output_dir, run.run_id, uri, checkpoint and str(checkpoint),
                                   pending="job_id" in summary, experiment_id=run.experiment_id),
              flush=True)  # pending: submitted, not yet trained
    return summary


def run_name(obj: Any) -> str:
    """A run's default name in the MLflow UI: what ran, its seed and when (``smoke-s0-1205-0443``)."""
    import time

    return f"{obj.name}-s{obj.seed}-{time.strftime('%m%d-%H%M')}"


def _write_provenance(out: Path, config: Dict[str, Any], overrides: List[str]) -> None:
    """The resolved config (secrets masked) and the overrides, beside the stage's outputs."""
    import yaml

    from plumbing.secrets import redact_tree

    (out / "config.yaml").write_text(yaml.safe_dump(redact_tree(config), sort_keys=False))
    (out / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))


def quiet_libraries() -> None:
    """Per-request INFO lines of HTTP and database libraries would drown the progress display;
    a library's warning is shown once per process, however often its code resets Python's
    once-only registry (``catch_warnings`` does: transformers' deprecation notices came back
    with every trainer a pipeline started)."""
    import warnings

    for name in ("aiohttp", "urllib3", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(warnings.showwarning, "once_per_process", False):
        warnings.showwarning = _once(warnings.showwarning)


def _once(show: Callable[..., None]) -> Callable[..., None]:
    seen: set = set()

    def show_once(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        key = (category, str(message))
        if key not in seen:
            seen.add(key)
            show(message, category, filename, lineno, file, line)

    show_once.once_per_process = True  # type: ignore[attr-defined]
    return show_once


def report_error(e: BaseException) -> int:
    """Print a user-facing error without traceback (secret values masked); return the exit code."""
    from plumbing.secrets import Scrubber, redact_override_text

    print(f"error: {redact_override_text(Scrubber()(str(e)))}", file=sys.stderr)
    return getattr(e, "exit_code", 2)


LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher", "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
                    "hydra._internal.utils")


def _redact_overrides(record: logging.LogRecord) -> bool:
    from plumbing.secrets import redact_override_text

    record.msg, record.args = redact_override_text(record.getMessage()), ()
    return True


class _Redacting:
    """A text stream that masks secret ``key=value`` overrides in what is written to it."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        from plumbing.secrets import redact_override_text

        return self._stream.write(redact_override_text(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @staticmethod
    def unwrapped(stream: Any) -> Any:
        return stream._stream if isinstance(stream, _Redacting) else stream


def _terminate(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second TERM must not cut the clean-up short
    raise Terminated()


def stage_main(stage: str) -> Callable[[], Any]:
    """The ``python -m`` entry of a stage: Hydra CLI (overrides, -m sweeps, launchers).

    Everything is taken from the stage's canonical module (``STAGES``), not from the copy
    Python runs as ``__main__``: a second copy of the schema class would not match configs
    composed later in the same process (multirun jobs, pipeline steps).
    """

    def entry() -> Any:
        import hydra

        mod = load_stage(stage)
        sys.argv[1:] = with_aliases(mod, sys.argv[1:])
        if os.environ.get(SEARCHPATH_ENV) and not any(a.lstrip("+").startswith("hydra.searchpath=") for a in sys.argv):
            sys.argv.append(f"hydra.searchpath=[{os.environ[SEARCHPATH_ENV]}]")  # a step of a pipeline that had one
        for name in LAUNCHER_LOGGERS:  # they print each job's overrides as given, keys included
            logging.getLogger(name).addFilter(_redact_overrides)
        hint = _preset_hint(stage, sys.argv[1:])
        if hint:  # its keys would fail Hydra's composition with a message that does not say why
            sys.exit(report_error(ConfigError([("experiment", hint.lstrip("; "))], f"conf/{stage}.yaml")))
        hint = _launcher_hint(sys.argv[1:])
        if hint:
            sys.exit(report_error(ConfigError([("hydra/launcher", hint)], f"conf/{stage}.yaml")))

        started = []
        stderr = sys.stderr
        sys.stderr = _Redacting(stderr)  # Hydra's own refusals repeat the override, key value and all

        @hydra.main(version_base=None, config_path=str(conf_dir()), config_name=stage)
        def _main(cfg: DictConfig) -> Any:
            from hydra.core.hydra_config import HydraConfig

            started.append(True)
            sys.stderr = _Redacting.unwrapped(sys.stderr)  # not a captured stream: submitit pickles this function
            quiet_libraries()
            hc = HydraConfig.get()
            overrides = list(hc.overrides.task)
            if hc.searchpath:  # passed on to every config this process composes (pipeline steps)
                os.environ[SEARCHPATH_ENV] = ",".join(hc.searchpath)
            try:
                with open_dict(cfg):  # before validation: paths made from ${output_dir} (a tiny model's)
                    # follow the job's folder, not a ${now:...} resolved again when a sweep's job starts
                    cfg.output_dir = str(Path(hc.runtime.output_dir).expanduser().resolve())
                fill_names(cfg, dict(hc.runtime.choices), overrides)
                obj = validate(cfg, mod.SCHEMA, f"conf/{stage}.yaml")
                obj, cfg = finalize(obj, cfg, hc.runtime.output_dir)
                if hc.mode is not None and hc.mode.name == "MULTIRUN":
                    join_sweep(obj, cfg, Path(hc.sweep.dir))
                    scrub_file(Path(hc.sweep.dir) / "multirun.yaml", plain(cfg))  # Hydra wrote the overrides as given
                return execute(stage, obj, cfg, overrides)
            except (ConfigError, SuiteError) as e:
                sys.exit(report_error(e))

        on_term = signal.signal(signal.SIGTERM, _terminate)
        try:
            return _main()
        except KeyboardInterrupt as e:  # Ctrl-C or TERM: the run is KILLED (tracking), no traceback
            print(f"\n[{stage}] stopped by {'SIGTERM' if isinstance(e, Terminated) else 'Ctrl-C'}; "
                  "its MLflow run ends KILLED, a rerun resumes", file=sys.stderr)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except SystemExit as e:  # Hydra exits 1 when an override does not compose (unknown key,
            # wrong type): a config error like the suite's own, so exit 2 (its message is printed).
            # Not in a multirun: its jobs may run elsewhere (submitit) and fail for other reasons.
            multirun = any(a in ("-m", "--multirun") for a in sys.argv[1:])
            if e.code == 1 and not started and not multirun:
                sys.exit(2)
            raise
        finally:
            signal.signal(signal.SIGTERM, on_term)
            sys.stderr = stderr

    entry.__doc__ = f"Run the {stage} stage from the command line (Hydra)."
    return entry
