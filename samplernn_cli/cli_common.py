"""Helpers shared by the command modules: error reporting and small conversions."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import typer

from samplernn_cli.errors import EXIT_FAILURE, EXIT_SIGINT, SampleRNNError

DEBUG_ENV = "SAMPLERNN_DEBUG"


def print_error(message: str) -> None:
    """One line on stderr (plain text: paths with brackets are not Rich markup)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn every failure into one line on stderr and an exit code; never a traceback
    (unless SAMPLERNN_DEBUG is set)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except SampleRNNError as exc:
        print_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(EXIT_SIGINT) from None
    except MemoryError:
        print_error("out of memory; use a smaller model, batch size or input")
        raise typer.Exit(EXIT_FAILURE) from None
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "out of memory" in message.lower():
            print_error(f"out of memory ({message}); use a smaller model or batch size")
        else:
            print_error(
                f"unexpected {type(exc).__name__}: {message} (set {DEBUG_ENV}=1 to see "
                "the traceback, and please report it)"
            )
        raise typer.Exit(EXIT_FAILURE) from None


def print_json(document: Any) -> None:
    """One JSON document on stdout (non-finite numbers become null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    sys.stdout.write(json.dumps(clean(document), indent=2) + "\n")
    sys.stdout.flush()


def print_path(path: os.PathLike[str] | str) -> None:
    """A path on stdout, one per line, flushed at once (for pipes and `xargs`)."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
