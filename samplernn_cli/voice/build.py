"""A live voice (:class:`~samplernn_cli.voice.module.LiveVoice`) from a trained model, as a
TorchScript file, and how fast it plays.

The voice holds copies of the weights (weight normalisation and the sample tier's embedding
already applied: the first layer as its per-position tables), its products' weights in int8
(torch's dynamic quantized linear) or float32, so the file needs nothing from this package
to run: nn~ or any libtorch program loads it alone.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils import parametrize

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config.generation import QUIET_BOOST
from samplernn_cli.errors import UsageError
from samplernn_cli.export import check_target
from samplernn_cli.fileio import atomic_write
from samplernn_cli.generation.quiet import QuietGuard, QuietWatch
from samplernn_cli.model import SampleRNN
from samplernn_cli.quantize import Quantizer
from samplernn_cli.voice.module import (
    MAX_RATIO,
    FrameTierVoice,
    LiveVoice,
    RecurrentLayer,
    SampleTierVoice,
)

# Buffers of this many host samples are timed at export (nn~'s default in Pd).
TIMED_BUFFER = 4096
# Calls TorchScript spends profiling and optimising a method before it runs it optimised.
WARM_UP = 2
# Above this real-time factor (seconds of computing per second of audio), a host buffer may
# come late when the machine is busy: the export warns.
RTF_WARNING = 0.7


def _rnn_layers(tier: torch.nn.Module) -> list[RecurrentLayer]:
    """One RecurrentLayer per layer of a frame tier's RNN(s), with its reset state."""
    lstm = tier.rnn_type == "lstm"
    if tier.skip_connections:
        modules = [(rnn, 0) for rnn in tier.rnns]
    else:
        modules = [(tier.rnn, layer) for layer in range(tier.rnn_layers)]
    layers = []
    for index, (rnn, layer) in enumerate(modules):
        voice = RecurrentLayer(
            lstm,
            getattr(rnn, f"weight_ih_l{layer}"),
            getattr(rnn, f"weight_hh_l{layer}"),
            getattr(rnn, f"bias_ih_l{layer}"),
            getattr(rnn, f"bias_hh_l{layer}"),
        )
        if tier.h0 is not None:
            voice.h0.copy_(tier.h0[0, index])
            if lstm:
                voice.c0.copy_(tier.h0[1, index])
        layers.append(voice)
    return layers


def check_int8() -> None:
    """Raise UsageError where this torch cannot make the int8 products (no dynamic
    quantized linear, or no quantized engine for this CPU)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            weight = torch.quantize_per_tensor(torch.ones(2, 2), 1.0, 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(weight, None)
            torch.ops.quantized.linear_dynamic(torch.ones(1, 2), packed, True)
    except (AttributeError, RuntimeError) as error:
        raise UsageError(
            f"this torch ({torch.__version__}) cannot make int8 products "
            f"({str(error).splitlines()[0]}); export with --precision float32"
        ) from None


def code_boundaries(quantizer: Quantizer) -> torch.Tensor:
    """(levels - 1,) the waveform values where the quantizer's codes change: halfway between
    neighbouring levels in its companded domain, where its encode rounds."""
    halves = torch.arange(quantizer.q_levels - 1, dtype=torch.float64) + 0.5
    companded = (halves - quantizer.zero_code) * (2.0 / (quantizer.q_levels - 1))
    return quantizer.expand(companded.clamp(-1.0, 1.0))


@torch.no_grad()
def build_voice(
    model: SampleRNN,
    sample_rate: int,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    guard: QuietGuard | None = None,
    precision: str = "int8",
) -> LiveVoice:
    """The live voice of ``model`` (trained at ``sample_rate``) on the CPU, unscripted; its
    quiet boost judges takes by ``guard``'s floor and window and starts at its boost (None:
    the training audio's level unknown, the boost never acts); its products' weights in
    ``precision``, int8 or float32.

    Raises:
        UsageError: the model uses linear prediction, which the voice does not run, or
            int8 was asked of a torch without dynamic quantized linear products.
    """
    config = model.config
    if config.linear_prediction:
        raise UsageError(
            "this model was trained with --linear-prediction, which the live voice does not "
            "run; export a model trained without it (the default)"
        )
    if guard is None:  # a watch that never finds the take quiet
        guard = QuietGuard(floor=0.0, boost=1.0, blocks=QuietGuard.window_blocks(sample_rate))
    model = model.cpu().eval()
    if precision == "int8":
        check_int8()
    with parametrize.cached(), warnings.catch_warnings():
        # This torch calls quantized tensors deprecated (it still has them, as does nn~'s
        # libtorch 2.5.1): not a warning for the user.
        warnings.filterwarnings(
            "ignore", message=".*quantized tensor creation", category=UserWarning
        )
        tiers = []
        for tier in model.frame_tiers:
            hidden = tier.hidden_size
            skip = tier.skip_connections
            tiers.append(
                FrameTierVoice(
                    tier.frame_samples,
                    tier.ratio,
                    skip,
                    tier.input.weight,
                    tier.input.bias,
                    _rnn_layers(tier),
                    tier.skip_output.weight if skip else torch.zeros(hidden, 0),
                    tier.skip_output.bias if skip else torch.zeros(hidden),
                    tier.upsample.weight,
                    tier.upsample.bias,
                    precision,
                )
            )
        sample = model.sample_tier
        levels = torch.arange(config.q_levels)
        sample_voice = SampleTierVoice(
            sample.input_tables(),
            [layer.weight for layer in sample.hidden],
            [layer.bias for layer in sample.hidden],
            sample.output.weight,
            sample.output.bias,
            tiers[0].frame_samples,
            tiers[-1].frame_samples,
            precision,
        )
        return LiveVoice(
            tiers,
            sample_voice,
            model.quantizer.decode(levels),
            model.quantizer.scale_codes(levels),
            code_boundaries(model.quantizer),
            model.quantizer.zero_code,
            sample_rate,
            temperature,
            seed,
            QuietWatch(guard, model.quantizer.decode(levels)),
            guard.boost,
        )


def script_voice(voice: LiveVoice) -> torch.jit.ScriptModule:
    """The voice compiled by TorchScript, the format nn~ loads (torch calls TorchScript
    deprecated in favour of torch.export, which libtorch hosts such as nn~ cannot load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(voice)


@dataclass(frozen=True)
class Timing:
    """How fast a voice played: seconds of computing per second of audio, per buffer."""

    host_rate: int
    buffer: int
    # The first WARM_UP calls after loading, in order: TorchScript profiles and optimises
    # the method during them, so they take longer (nn~'s first buffers do too).
    warm_up: list[float]
    factors: list[float]  # one per buffer after those, in order

    @property
    def worst(self) -> float:
        return max(self.factors)

    @property
    def median(self) -> float:
        ordered = sorted(self.factors)
        return ordered[len(ordered) // 2]

    @property
    def late(self) -> int:
        """Buffers that took longer than they last."""
        return sum(factor > 1.0 for factor in self.factors)


def time_voice(
    voice: torch.jit.ScriptModule, host_rate: int, *, buffer: int = TIMED_BUFFER, seconds: float = 4
) -> Timing:
    """Play WARM_UP buffers and then ``seconds`` of audio the way nn~ does: one call per
    buffer, each from a new thread joined before the next, under inference mode, on one
    thread; then ask the voice to reset."""
    if voice.set_sample_rate(host_rate) != 0:
        raise UsageError(f"the voice refused a host rate of {host_rate} Hz")
    calls = WARM_UP + max(2, round(seconds * host_rate / buffer))
    factors: list[float] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        silence = torch.zeros(1, 1, buffer)

        def call() -> None:
            with torch.inference_mode():
                started = time.perf_counter()
                voice(silence)
                factors.append((time.perf_counter() - started) * host_rate / buffer)

        for _ in range(calls):
            thread = threading.Thread(target=call)
            thread.start()
            thread.join()
    finally:
        torch.set_num_threads(threads)
        voice.set_reset(True)
    return Timing(host_rate, buffer, factors[:WARM_UP], factors[WARM_UP:])


@dataclass(frozen=True)
class VoiceExport:
    path: Path
    size_bytes: int
    sample_rate: int  # the model's
    timing: Timing


def timing_rate(model_rate: int) -> int:
    """The host rate an export is timed at: the lowest multiple of the model's rate that is
    at least 44.1 kHz (a 16 kHz model: 48 kHz), or the model's own rate above it."""
    ratio = max(1, min(MAX_RATIO, -(-44100 // model_rate)))
    return model_rate * ratio


def export_voice(
    source: Path,
    target: Path,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    precision: str = "int8",
    force: bool = False,
    timed_seconds: float = 4.0,
) -> VoiceExport:
    """Write the live voice of the checkpoint (or export) ``source`` to ``target``
    (atomically), after timing it at :func:`timing_rate` in buffers of TIMED_BUFFER.

    Raises:
        CheckpointError: ``source`` is not a usable checkpoint.
        UsageError: the model uses linear prediction.
        OutputError: ``target`` exists (without ``force``), is ``source``, or cannot be
            written.
    """
    checkpoint = load_checkpoint(source)
    check_target(source, target, force=force, example="voice.ts")
    rate = checkpoint.sample_rate
    guard = QuietGuard.for_recording(
        checkpoint.training_level_dbfs, rate, QUIET_BOOST, checkpoint.reference
    )
    voice = build_voice(
        checkpoint.build_model(),
        rate,
        temperature=temperature,
        seed=seed,
        guard=guard,
        precision=precision,
    )
    scripted = script_voice(voice)
    timing = time_voice(scripted, timing_rate(checkpoint.sample_rate), seconds=timed_seconds)
    scripted.set_sample_rate(checkpoint.sample_rate)  # as built: the host sets its own
    data = scripted.save_to_buffer()
    atomic_write(target, lambda handle: handle.write(data), what="voice", overwrite=force)
    return VoiceExport(target, target.stat().st_size, checkpoint.sample_rate, timing)
