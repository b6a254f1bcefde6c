"""The package's errors, in one leaf module that imports nothing from selfsup.

``UserError`` is a mistake a person can make and fix: a bad name or value, a missing or
corrupt file, a run directory that is not what the command needs. Its message names the
file or value; the command line shows it on one line and exits with code 2 (``EXIT_USER``).
Everything else that escapes is a bug or a failure of the run itself (a diverged loss exits
with code 1, an interrupt with 130).
"""

from __future__ import annotations

from typing import Any

EXIT_USER = 2


class UserError(Exception):
    """A mistake in the input: the message says what and where; exit code 2 on the command line."""


class ConfigError(UserError, ValueError):
    """A configuration value or key that cannot be used; raised before any work starts."""


class UnknownNameError(UserError, KeyError):
    """An unknown registry name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class DatasetNotFoundError(UserError, FileNotFoundError):
    """The dataset's files are nowhere we look; the message says how to get them."""


class DatasetFileError(UserError, ValueError):
    """A dataset file that is truncated, corrupt or not of the expected format."""


class RunDirectoryError(UserError, RuntimeError):
    """A run directory that would be overwritten or does not hold a run."""


class CheckpointError(RunDirectoryError):
    """A checkpoint or neighbour file that cannot be read, or whose contents are refused."""


class DeviceError(UserError, RuntimeError):
    """A device that cannot be used here."""


class ReportError(UserError, RuntimeError):
    """A folder that holds nothing to report."""


# failed runs (exit 1) and interrupted ones (exit 130): not mistakes in the input
class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was written, the run can be resumed."""


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class CollapseError(DivergenceError):
    """The representation collapsed for ``train.collapse_patience`` steps in a row; the checkpoint from before the
    collapse is kept. ``record`` says where (eval.json's ``collapsed``)."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record
