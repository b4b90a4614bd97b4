"""Where the command line meets the process: every exception becomes one ``error:`` line on
stderr and the exit code documented in README.md, and SIGINT/SIGTERM become a stop request
for the training core (which never touches the process's signal handlers itself).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from samplernn_cli.errors import (
    EXIT_FAILURE,
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    EXIT_SIGTERM,
    EXIT_USAGE,
    OutputClosed,
    SampleRNNError,
)
from samplernn_cli.training.requests import StopReason, StopRequest  # imports no torch

DEBUG_ENV = "SAMPLERNN_DEBUG"
# A second SIGINT/SIGTERM at least this long after the first stops at once, without a
# checkpoint; an earlier one is taken as the same request (one Ctrl-C can arrive twice:
# under torchrun, from the terminal and again from torchrun itself).
SIGNAL_REPEAT_SECONDS = 1.0
logger = logging.getLogger("samplernn")
Command = TypeVar("Command", bound=Callable[..., Any])


def print_error(message: str) -> None:
    """One line on stderr (plain text: paths with brackets are not Rich markup)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def report(exc: BaseException) -> int:
    """Print ``exc`` as one ``error:`` line and return its exit code."""
    if isinstance(exc, SampleRNNError):
        print_error(str(exc))
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        print_error("interrupted")
        return EXIT_SIGINT
    if isinstance(exc, MemoryError):
        print_error("out of memory; use a smaller model, batch size or input")
        return EXIT_FAILURE
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "out of memory" in message.lower():
        print_error(f"out of memory ({message}); use a smaller model or batch size")
    else:
        print_error(
            f"unexpected {type(exc).__name__}: {message} (set {DEBUG_ENV}=1 to see "
            "the traceback, and please report it)"
        )
    return EXIT_FAILURE


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so that the interpreter's last
    flush of whatever is still buffered does not fail again on the closed pipe (and print
    "Exception ignored ... BrokenPipeError" at exit): the recipe of Python's documentation
    (signal module, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout: nothing will flush to it
        pass


def guarded(command: Command) -> Command:
    """Run a command inside the boundary: any failure becomes one line on stderr and an
    exit code; never a traceback (unless SAMPLERNN_DEBUG is set). A closed stdout (the
    reader of a pipe went away) ends the command quietly with 141, as SIGPIPE would."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except (OutputClosed, BrokenPipeError):
            silence_stdout()
            raise typer.Exit(EXIT_SIGPIPE) from None
        except (SampleRNNError, KeyboardInterrupt, MemoryError) as exc:
            raise typer.Exit(report(exc)) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise typer.Exit(report(exc)) from None

    return run  # type: ignore[return-value]


def report_usage_error(exc: typer.TyperException, fixed_at_resume: set[str]) -> int:
    """A command line Typer could not parse: one line, exit code 2 (or Typer's own)."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    context = getattr(exc, "ctx", None)
    option = getattr(exc, "option_name", None)
    if context is not None and context.info_name == "resume" and option in fixed_at_resume:
        message = (
            f"{option} is stored in the checkpoint and cannot change when resuming; "
            "start a new run with `samplernn train` to change it"
        )
    elif context is not None:
        message = f"{message} (see {context.command_path} --help)"
    print_error(message)
    return getattr(exc, "exit_code", EXIT_USAGE)


def exit_code_for_stop(stopped_by: StopReason | str) -> int:
    """The exit code of a training session that ended for ``stopped_by``."""
    return {StopReason.SIGINT: EXIT_SIGINT, StopReason.SIGTERM: EXIT_SIGTERM}.get(stopped_by, 0)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``stop`` requests while a training session polls it.

    The first signal asks for a clean stop (after the current iteration, with a
    checkpoint); another, a second or more later, stops at once (KeyboardInterrupt).
    Before the session polls (while the input is read, say) and after it, the signals act
    as they always do: SIGINT interrupts, SIGTERM ends the process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if not stop.watched:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if stop.requested:
            if time.monotonic() - stop.since < SIGNAL_REPEAT_SECONDS:
                return
            raise KeyboardInterrupt
        stop.request(StopReason(name))
        logger.warning(
            f"{name} received: stopping after this iteration and writing a checkpoint "
            "(send it again, a second or more later, to stop at once without one)"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
