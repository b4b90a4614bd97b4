"""The ``samplernn`` command line (Typer): the app, its commands and its entry point.

Each command lives in a module of this package: it parses options, builds settings, calls
one core function and turns the result into output (data on stdout, messages on stderr).
Every command runs inside :func:`boundary.guarded`, where errors become one ``error: ...``
line and the exit code documented in README.md. Nothing here imports torch at module level,
so ``samplernn --help`` and shell completion are fast.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import Annotated

import typer

from samplernn_cli import __version__
from samplernn_cli.cli import export, generate, inspection, train
from samplernn_cli.cli.boundary import guarded, print_error, report_usage_error
from samplernn_cli.cli.options import FIXED_AT_RESUME
from samplernn_cli.errors import EXIT_FAILURE, EXIT_USAGE

app = typer.Typer(
    name="samplernn",
    no_args_is_help=True,
    # --install-completion and --show-completion: commands, options, choices and file paths
    # complete in bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(guarded(train.train))
app.command("resume")(guarded(train.resume))
app.command("generate")(guarded(generate.generate))
app.command("evaluate")(guarded(inspection.evaluate))
app.command("inspect-checkpoint")(guarded(inspection.inspect_checkpoint))
app.command("quantize-preview")(guarded(inspection.quantize_preview))
app.command("export")(guarded(export.export))


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"samplernn {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train SampleRNN on your own audio and generate new audio from it.

    Exit codes: 0 success, 1 error, 2 usage error, 130 Ctrl-C, 141 the reader of stdout went
    away, 143 SIGTERM (see README).
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Usage errors (a bad or missing option) are printed as one ``error:`` line, like every
    other error, instead of Typer's framed block, and exit with code 2.
    """
    try:
        code = app(argv, prog_name="samplernn", standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed already
            sys.exit(EXIT_USAGE)
        sys.exit(report_usage_error(exc, FIXED_AT_RESUME))
    except typer.Abort:
        print_error("aborted")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``samplernn`` command: :func:`main`, then a quick exit.

    Once a command that imported torch has returned, Python's own shutdown still collects and
    tears down every module and object it loaded, torch's many among them, with nothing left
    to do: every file the command wrote is closed by then (``benchmarks/process_settings.py``
    times the exit both ways). So the exit handlers run (logging's flush among them), stdout
    and stderr are flushed, and the process ends there with the command's exit code. A thread
    still running (none of ours outlives its command) gets the ordinary exit, which waits for
    it. :func:`main` itself, which tests call in-process, exits the ordinary way.
    """
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_FAILURE
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`| head`) or a closed stream: nothing more can reach it.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
