"""Everything that draws on the terminal (Rich): the log handler, progress displays, and the
tables of ``inspect-checkpoint``, ``evaluate`` and ``quantize-preview``.

Status and progress go to stderr; stdout is kept for data (paths, JSON). On a terminal, Rich
draws a live progress bar with log messages above it; otherwise (a pipe, a file, a batch
job) there is one plain line every N iterations, and ``--quiet`` leaves only warnings and
errors.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the module itself must not import torch
    from typing_extensions import Self

    from samplernn_cli.generation.clips import GenerateStatus
    from samplernn_cli.training.requests import TrainStatus

LOGGER_NAME = "samplernn"


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def setup_logging(*, quiet: bool, rich_output: bool) -> Console | None:
    """Route the ``samplernn`` logger to stderr; returns the Rich console when there is one."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    console = None
    handler: logging.Handler
    if rich_output:
        console = Console(stderr=True)
        handler = RichHandler(
            console=console, show_path=False, markup=False, show_level=False, log_time_format="%X"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    logger.addHandler(handler)
    return console


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _status_fields(status: TrainStatus) -> list[str]:
    total = f"/{status.total_iterations}" if status.total_iterations else ""
    parts = [
        f"iter {status.iteration}{total}",
        f"epoch {status.epoch}",
        f"train {status.loss:.3f} bits",
        "val " + ("-" if status.val_loss is None else f"{status.val_loss:.3f} bits"),
        f"{status.samples_per_s:,.0f} samples/s",
    ]
    if status.eta_seconds is not None:
        parts.append(f"ETA {_format_eta(status.eta_seconds)}")
    return parts


class _BarDisplay:
    """A Rich progress bar labelled ``label`` on a terminal (``console`` given, not quiet),
    started and stopped as a context manager; plain lines or nothing are the subclasses'."""

    def __init__(self, console: Console | None, *, quiet: bool, label: str) -> None:
        self.quiet = quiet
        self.label = label
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if console is not None and not quiet:
            self.progress = Progress(
                TextColumn(f"[bold]{label}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                transient=False,
            )

    def __enter__(self) -> Self:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=None, info="starting")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()


class TrainDisplay(_BarDisplay):
    """Progress for ``samplernn train``: a Rich bar, plain lines, or nothing.

    Use as a context manager; call the instance with each :class:`TrainStatus`.
    """

    def __init__(self, console: Console | None, *, quiet: bool, log_every: int) -> None:
        super().__init__(console, quiet=quiet, label="training")
        self.log_every = log_every

    def __call__(self, status: TrainStatus) -> None:
        if self.quiet:
            return
        if self.progress is not None and self.task is not None:
            total = status.total_iterations
            self.progress.update(
                self.task,
                completed=status.iteration,
                total=total,
                info="  ".join(_status_fields(status)),
            )
            return
        first = status.iteration == status.start_iteration + 1
        if first or status.iteration % self.log_every == 0:
            sys.stderr.write(" | ".join(_status_fields(status)) + "\n")
            sys.stderr.flush()


class GenerateDisplay(_BarDisplay):
    """Progress for ``samplernn generate``: a Rich bar with samples/s and the real-time
    factor on a terminal, a plain line per 10 % otherwise, or nothing with ``--quiet``."""

    def __init__(self, console: Console | None, *, quiet: bool) -> None:
        super().__init__(console, quiet=quiet, label="generating")
        self.next_report = 0.1
        self.next_minute = 1  # of audio, for a stream without end

    def __call__(self, status: GenerateStatus) -> None:
        if self.quiet:
            return
        done = status.samples / status.sample_rate
        speed = f"{status.samples_per_s:,.0f} samples/s  {status.realtime_factor:.2f}x real time"
        if status.samples_total is None:  # a stream without end
            info = f"{done:,.1f} s of audio  {speed}"
            if self.progress is not None and self.task is not None:
                self.progress.update(self.task, completed=status.samples, total=None,
                                     info=info)  # fmt: skip
            elif done >= 60 * self.next_minute:  # a line per minute of audio
                self.next_minute = int(done // 60) + 1
                sys.stderr.write(f"{info}\n")
                sys.stderr.flush()
            return
        total = status.samples_total / status.sample_rate
        info = f"{done:.1f}/{total:.1f} s of audio  {speed}"
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task, completed=status.samples, total=status.samples_total, info=info
            )
            return
        fraction = status.samples / max(1, status.samples_total)
        if fraction >= self.next_report:
            self.next_report = min(1.0, (int(fraction * 10) + 1) / 10)
            sys.stderr.write(f"{fraction:.0%} | {info}\n")
            sys.stderr.flush()


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """Values as a row of block characters, lowest to highest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))] for v in values)


def _fmt(value: object, unit: str = "", digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _describe_origin(origin: dict | None) -> str:
    """A parent or source checkpoint: name, iteration, run and the start of its sha256."""
    if origin is None:
        return "-"
    text = (f"{origin.get('file')} (iteration {origin.get('iteration')} of run "
            f"{origin.get('run_name')}, {origin.get('kind')} file, sha256 "
            f"{str(origin.get('sha256'))[:16]}...)")  # fmt: skip
    if origin.get("exported_from"):
        text += f", exported from {_describe_origin(origin['exported_from'])}"
    return text


def _describe_inputs(source: dict) -> str:
    files = source["files"]
    held = "whole files" if source.get("val_split") == "files" else "file ends"
    split = f"{source['train_seconds']:.1f} s trained on, {source['val_seconds']:.1f} s held out"
    if len(files) == 1:
        file = files[0]
        duration, rate = _fmt(file["duration_s"], " s", 1), _fmt(file["sample_rate"], " Hz")
        return f"{file['name']} ({duration}, {rate}, {_fmt(file['channels'])} ch); {split}"
    return f"{len(files)} files, {_duration(source['duration_s'])}; {split} ({held})"


def _describe_round(round_: dict) -> str:
    """'iteration 3,000: 4 clips, median distance 2.31 to the training audio, 1 trap'."""
    takes = round_["takes"]
    words = [f"iteration {round_['iteration']:,}: {len(takes)} clips"]
    if round_["median_distance"] is not None:
        words.append(f"median distance {round_['median_distance']:.2f} to the training audio")
    traps = round_["traps"]
    words.append(f"{traps} trap{'s' if traps != 1 else ''}" if traps else "no traps")
    return ", ".join(words)


def render_checkpoint(summary: dict) -> None:
    """The human summary of ``samplernn inspect-checkpoint`` on stdout."""
    console = Console()
    model, training, losses = summary["model"], summary["training"], summary["losses"]
    source, optimizer = summary["input"], summary["optimizer"]
    table = Table(title=summary["path"], show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()

    def bits(value: float | None, iteration: int | None) -> str:
        return "-" if value is None else f"{value:.4f} bits (iteration {iteration:,})"

    rows = [
        ("format", f"{summary['format']} v{summary['format_version']}, written by samplernn "
                   f"{summary['package_version']} on {summary['created']}"),
        ("run", _fmt(summary["run_name"])),
        ("architecture", model["description"]),
        ("parameters", f"{model['parameters']:,} ("
                       + ", ".join(f"{k}: {v:,}" for k, v in model["parameters_by_part"].items())
                       + ")"),
        ("quantizer", f"{summary['quantizer']['kind']}, {summary['quantizer']['levels']} levels"),
        ("sample rate", f"{summary['sample_rate']:,} Hz"),
        ("iteration / epoch", f"{training['iteration']:,} / {training['epoch']} "
                              f"({_fmt(training['iterations_per_epoch'])} iterations per epoch)"),
        ("training time", _duration(training["training_seconds"])),
        ("training loss", f"last {bits(losses['last_loss'], losses['last_loss_iteration'])}; "
                          f"best {bits(losses['best_loss'], losses['best_loss_iteration'])}"),
        ("validation loss",
         f"last {bits(losses['last_val_loss'], losses['last_val_iteration'])}; "
         f"best {bits(losses['best_val_loss'], losses['best_val_iteration'])}"),
        ("training input", _describe_inputs(source)),
        ("batches", f"{training['batch_size']} sequences of {training['sequence_seconds']:g} s "
                    f"({training['sequence_starts']} starts, speed spread "
                    f"{training['speed_spread']:g}, shifted copies "
                    f"{training['shift_copies']}, gains {training['min_gain']:g} to 1, "
                    f"polarity flips {training['polarity_flip']:g}, "
                    f"input noise {training['input_noise']:g}, prediction noise "
                    f"{training['prediction_noise']:g}, frame dropout "
                    f"{training['frame_dropout']:g}), {training['num_frames']} frames "
                    f"({training['chunk_samples']} samples) per step, seed {training['seed']}, "
                    f"weight average {training['average_decay']:g}"),
        ("optimizer", "none (an exported model: weights only)" if optimizer is None else
                      f"{optimizer['name']}, learning rate {optimizer['learning_rate']:g} at "
                      f"the last step (--lr-schedule {training['lr_schedule']}), "
                      f"betas {tuple(optimizer['betas'])}, eps {optimizer['eps']:g}, "
                      f"grad clip {optimizer['grad_clip']:g}"),
        ("weights", f"{summary['weights_dtype']} ({summary['kind']} file)"),
        ("fine-tuned from", _describe_origin(summary["parent"])),
        ("exported from", _describe_origin(summary["exported_from"])),
        ("file size", f"{summary['file_size_bytes'] / 1e6:,.1f} MB"),
    ]  # fmt: skip
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    curve = [v for _, v in summary["loss_curve"]]
    if curve:
        table.add_row(
            "loss curve",
            Text(f"{sparkline(curve)}  {curve[0]:.2f} -> {curve[-1]:.2f} bits"),
        )
    val_curve = [v for _, v in summary["val_curve"]]
    if val_curve:
        table.add_row(
            "validation curve",
            Text(f"{sparkline(val_curve)}  {val_curve[0]:.2f} -> {val_curve[-1]:.2f} bits"),
        )
    if summary["last_round"] is not None:
        table.add_row("last clips", Text(_describe_round(summary["last_round"])))
    console.print(table)
    files = source["files"]
    if len(files) > 1:
        listing = Table(title="input files", title_justify="left")
        for column in ("file", "duration", "rate", "ch", "trained on", "held out"):
            listing.add_column(column, justify="left" if column == "file" else "right")
        for file in files:
            listing.add_row(
                Text(str(file["path"] or file["name"])),
                _fmt(file["duration_s"], " s", 1),
                _fmt(file["sample_rate"], " Hz"),
                _fmt(file["channels"]),
                f"{file['train_seconds']:.1f} s",
                f"{file['val_seconds']:.1f} s",
            )
        console.print(listing)


def render_preview(report: dict) -> None:
    """The human summary of ``samplernn quantize-preview`` on stdout."""
    console = Console()
    table = Table(title=report["output"], show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    source = report["source"]
    quantizer = report["quantizer"]
    rows = [
        ("input", f"{source['name']}: {source['frames'] / source['sample_rate']:.2f} s at "
                  f"{source['sample_rate']:,} Hz, {source['channels']} channel(s), "
                  f"{source['subtype']}"),
        ("processed", f"{report['duration_s']:.2f} s at {report['sample_rate']:,} Hz mono"
                      + (f", peak-normalised (gain {report['gain']:.3g})"
                         if report["normalize"] else ", not normalised")),
        ("quantizer", f"{quantizer['kind']}, {quantizer['levels']} levels"),
        ("SNR", _fmt(report["snr_db"], " dB", 2)),
        ("levels used", f"{report['levels_used']:,} of {report['levels_available']:,}"),
        ("code entropy", _fmt(report["entropy_bits"], " bits per sample", 3)),
        ("silence", f"{report['silence_fraction']:.2%} of samples at the silence code"),
        ("clipped", f"{report['clipped_fraction']:.4%} of samples beyond full scale"),
        ("DC offset", f"{report['dc_offset']:+.6f}"),
        ("peak / RMS", f"{_fmt(report['peak_dbfs'], ' dBFS', 2)} / "
                       f"{_fmt(report['rms_dbfs'], ' dBFS', 2)}"),
    ]  # fmt: skip
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console.print(table)


def render_evaluation(report: dict) -> None:
    """The human summary of ``samplernn evaluate`` on stdout."""
    console = Console()
    table = Table(
        title=f"{report['checkpoint']} (iteration {report['iteration']:,}), {report['part']}",
        title_justify="left",
    )
    table.add_column("audio")
    table.add_column("seconds", justify="right")
    table.add_column("bits per sample", justify="right")
    table.add_column("gain (scored at)")
    for row in report["files"]:
        gain = row["gain"]
        table.add_row(Text(row["path"]), f"{row['seconds']:.2f}", f"{row['bits_per_sample']:.4f}",
                      Text(f"{gain['db']:+.1f} dB: {gain['reason']}"))  # fmt: skip
    if len(report["files"]) > 1:
        table.add_row(
            "all", f"{report['samples'] / report['sample_rate']:.2f}",
            f"{report['bits_per_sample']:.4f}", "",
        )  # fmt: skip
    console.print(table)
