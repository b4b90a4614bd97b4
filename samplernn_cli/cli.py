"""The ``samplernn`` command line (Typer): the app, its entry point and error handling.

Each command lives in a ``cli_*.py`` module: it parses options, builds config objects, calls
one core function and turns the result into output (data on stdout, messages on stderr).
Errors become one ``error: ...`` line on stderr and the exit code documented in README.md.
Nothing here imports torch at module level, so ``samplernn --help`` is fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from samplernn_cli import __version__, cli_generate, cli_inspect, cli_train
from samplernn_cli.cli_common import print_error
from samplernn_cli.errors import EXIT_FAILURE, EXIT_USAGE
from samplernn_cli.options import FIXED_AT_RESUME

app = typer.Typer(
    name="samplernn",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(cli_train.train)
app.command("resume")(cli_train.resume)
app.command("generate")(cli_generate.generate)
app.command("evaluate")(cli_inspect.evaluate)
app.command("inspect-checkpoint")(cli_inspect.inspect_checkpoint)
app.command("quantize-preview")(cli_inspect.quantize_preview)


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

    Exit codes: 0 success, 1 error, 2 usage error, 130 Ctrl-C, 143 SIGTERM (see README).
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
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        context = getattr(exc, "ctx", None)
        option = getattr(exc, "option_name", None)
        if context is not None and context.info_name == "resume" and option in FIXED_AT_RESUME:
            message = (
                f"{option} is stored in the checkpoint and cannot change when resuming; "
                "start a new run with `samplernn train` to change it"
            )
        elif context is not None:
            message = f"{message} (see {context.command_path} --help)"
        print_error(message)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except typer.Abort:
        print_error("aborted")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
