"""The `ralign` command.

    ralign run experiment=NAME [overrides...]   run an experiment (or a one-stage preset)
    ralign run -m experiment=NAME seed=1,2,3    a Hydra multirun sweep of it
    ralign stages                               list the stages and their entry points
    ralign tiny-model --out DIR [--seed N]      build a tiny offline Qwen3 + tokenizer
    ralign ui [OUTPUT_DIR]                      print the MLflow UI command for a run folder
    ralign --version                            the installed suite's version
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import yaml


def preset_stage(args: List[str]) -> str:
    """The stage an `experiment=NAME` preset is written for (its `stage:` key; default pipeline)."""
    from plumbing.config.hydra_app import conf_dir

    names = [a.split("=", 1)[1] for a in args if a.startswith(("experiment=", "+experiment="))]
    if not names or "," in names[-1]:
        return "pipeline"
    path = conf_dir() / "experiment" / f"{names[-1]}.yaml"
    if not path.is_file():
        return "pipeline"  # Hydra reports the unknown preset with the list of known ones
    data = yaml.safe_load(path.read_text()) or {}
    return str(data.get("stage", "pipeline"))


def _run(args: List[str]) -> int:
    from plumbing.config.hydra_app import stage_module

    stage = preset_stage(args)
    mod = stage_module(stage)
    sys.argv = [f"ralign run ({stage})", *args]
    mod.main()
    return 0


def version() -> str:
    """The installed distribution's version; a checkout put on PYTHONPATH without
    installing has no metadata, so it says so rather than failing."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("ralign-suite")
    except PackageNotFoundError:
        return "0+unknown (not installed)"


def _ui(args: List[str]) -> int:
    folder = Path(args[0] if args else ".").resolve()
    dbs = [folder / "mlflow.db"] if (folder / "mlflow.db").exists() else sorted(folder.glob("**/mlflow.db"))
    if not dbs:
        print(f"no mlflow.db under {folder}", file=sys.stderr)
        return 2
    print(f"mlflow ui --backend-store-uri sqlite:///{dbs[0]}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if argv[0] in ("--version", "-V"):
        print(f"ralign {version()}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return _run(rest)
    if cmd == "tiny-model":
        from plumbing.tiny_models import main as tiny_main

        return tiny_main(rest)
    if cmd == "stages":
        from plumbing.config.hydra_app import STAGES

        for s in STAGES.values():
            print(f"{s.name:16s} python -m {s.module}")
        return 0
    if cmd == "ui":
        return _ui(rest)
    print(f"ralign: unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
