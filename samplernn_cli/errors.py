"""The exception types the command line knows how to report.

The core raises these with a message that names the problem and, where there is one, the fix.
The CLI turns each into one line on stderr and the exit code below.
"""

from __future__ import annotations

EXIT_FAILURE = 1  # runtime or data error
EXIT_USAGE = 2  # bad command line (also Typer's own code for bad flags)
EXIT_SIGPIPE = 141  # the reader of a stream on stdout went away (128 + SIGPIPE)
EXIT_SIGINT = 130  # stopped by Ctrl-C (128 + SIGINT)
EXIT_SIGTERM = 143  # stopped by SIGTERM (128 + SIGTERM)


class SampleRNNError(Exception):
    """Base class: a problem to report to the user without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(SampleRNNError):
    """The command line asks for something impossible or contradictory."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A setting is out of range or inconsistent with another."""


class AudioError(SampleRNNError):
    """An audio file is missing, unreadable, not audio, or unusable for training."""


class CheckpointError(SampleRNNError):
    """A checkpoint is missing, corrupt, foreign, unsafe or from an unknown format version."""


class RunFolderError(SampleRNNError):
    """The run folder cannot be used (it exists, or cannot be created or written)."""


class TrainingError(SampleRNNError):
    """Training cannot go on (for example, repeated non-finite losses)."""


class OutputError(SampleRNNError):
    """A file cannot be written (disk full, permission denied, would overwrite)."""


class OutputClosed(SampleRNNError):
    """The reader of the output stream went away (a closed pipe): not a failure to report,
    but the end of the output, so the command line ends quietly with 141, as a program
    killed by SIGPIPE would."""

    exit_code = EXIT_SIGPIPE


class MissingDependencyError(SampleRNNError):
    """An optional dependency that a requested feature needs is not installed."""
