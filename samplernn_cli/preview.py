"""``samplernn quantize-preview``: hear and measure the quantization before training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samplernn_cli.audio import ENCODINGS, read_audio, write_audio
from samplernn_cli.config import AudioConfig
from samplernn_cli.errors import UsageError
from samplernn_cli.quantize import Quantizer, quantization_report


@dataclass(frozen=True)
class PreviewRequest:
    input_path: Path
    audio: AudioConfig
    quantizer: Quantizer
    output: Path | None = None  # default: next to the input, INPUT.quantized-KIND-LEVELS.wav
    encoding: str = "float"  # float keeps the dequantized values exactly
    force: bool = False


def default_output(input_path: Path, quantizer: Quantizer) -> Path:
    return input_path.with_name(
        f"{input_path.stem}.quantized-{quantizer.kind}-{quantizer.q_levels}.wav"
    )


def preview(request: PreviewRequest) -> dict[str, Any]:
    """Process the input exactly as training would, quantize and dequantize it, write the
    result and return the measurements (see :func:`quantization_report`) with the output
    path and the input's description.

    Raises:
        AudioError, OutputError, UsageError: see :mod:`samplernn_cli.errors`. The input is
        never overwritten; an existing output only with ``force``.
    """
    if request.encoding not in ENCODINGS:
        raise UsageError(f"unknown encoding {request.encoding!r}")
    output = request.output or default_output(request.input_path, request.quantizer)
    if output.resolve() == request.input_path.resolve():
        raise UsageError(f"{output} is the input file; choose another output with -o")
    if output.exists() and not request.force:
        raise UsageError(f"{output} already exists; choose another name with -o or pass --force")
    wave = read_audio(request.input_path, request.audio)
    dequantized, report = quantization_report(wave.samples, request.quantizer)
    write_audio(output, dequantized, wave.sample_rate, subtype=ENCODINGS[request.encoding])
    return {
        "input": str(request.input_path),
        "output": str(output),
        "sample_rate": wave.sample_rate,
        "duration_s": wave.duration,
        "quantizer": {"kind": request.quantizer.kind, "levels": request.quantizer.q_levels},
        "normalize": request.audio.normalize,
        "gain": wave.gain,
        **report,
        "source": wave.source.to_dict(),
    }
