"""Known failures: a stage raises these and its `main()` turns them into one line and a non-zero exit."""

import sys


class StageError(Exception):
    """A failure the user can fix (bad data, bad params). `detail` is an optional short table or list."""

    exit_code = 1

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(StageError):
    """params.yaml is invalid: unknown key, wrong type or out-of-range value (named by its dotted path)."""

    exit_code = 2


def report_failure(exc: StageError, who: str | None = None) -> int:
    """Print a known failure as one line on stderr (`WHO: error: ...`, or `error: ...`), its detail below it,
    and return its exit code: how every entry point (stage, CLI, worker, server) ends on a StageError."""
    # Imported here: this module is imported by everything, also where pydantic is not loaded yet.
    from tuneforge.base.secrets import mask_text

    # Messages may quote a URL of the spec: its password never reaches the console or a log.
    print(f"{who + ': ' if who else ''}error: {mask_text(exc.message)}", file=sys.stderr)
    if exc.detail:
        print(mask_text(exc.detail), file=sys.stderr)
    return exc.exit_code
