"""Known failures: a stage raises these and its `main()` turns them into one line and a non-zero exit."""


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
