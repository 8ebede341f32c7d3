"""Errors a user can fix: printed as one clear message (no traceback), exit code 2."""


class SuiteError(Exception):
    """Bad input, bad config, a missing resource: the message says what and where."""

    exit_code = 2


class RunFailed(SuiteError):
    """The work ran but its result cannot be trusted (e.g. too many model calls failed): the
    outputs are written, the run is FAILED, the exit code 1."""

    exit_code = 1


class ModelLoadError(SuiteError):
    """A model that does not load (missing path, corrupt checkpoint): the stage stops before
    it computes anything with it, instead of failing every call and scoring the failures."""

    def __init__(self, model: str, error: BaseException, log: object = None):
        super().__init__(f"the model {model} does not load: {type(error).__name__}: {first_line(error)}"
                         + (f" (its server's log: {log})" if log else ""))


def first_line(error: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (its repr when it has none)."""
    return ((str(error).splitlines() or [repr(error)])[0])[:limit]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a Slurm time limit, a preemption, scancel) reached the stage: it stops as a
    Ctrl-C does, its MLflow run ends KILLED."""
