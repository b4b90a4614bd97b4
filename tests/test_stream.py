"""generate -o -: one clip as a WAV stream on stdout, written while it is generated."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from samplernn_cli.config import GenerateSettings
from samplernn_cli.generation.clips import GenerateRequest, GenerateStatus
from samplernn_cli.generation.stream import STREAM_BLOCK_SAMPLES, stream_clip, wav_header

from .conftest import RATE, SAMPLERNN, run_cli, train_tiny

# Reads a WAV from stdin the way a pipe's reader must (no seeking), with soundfile and with
# the standard library's wave module, and prints what each saw.
READER = """
import io, sys, wave
import soundfile
data = sys.stdin.buffer.read()
audio, rate = soundfile.read(io.BytesIO(data))
with wave.open(io.BytesIO(data)) as w:
    frames = w.getnframes()
    assert len(w.readframes(frames)) == 2 * frames
print(len(audio), rate, frames)
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("stream"), 10, rate=RATE)


def test_stream_is_a_wav_of_the_right_length_equal_to_the_file(
    checkpoint: Path, tmp_path: Path
) -> None:
    command = [*SAMPLERNN, "generate", str(checkpoint), "--length", "1.5", "--seed", "4", "-o", "-"]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = subprocess.run([sys.executable, "-c", READER], stdin=producer.stdout,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert producer.stdout is not None
    producer.stdout.close()
    stderr = producer.stderr.read().decode() if producer.stderr else ""
    assert producer.wait(timeout=120) == 0, stderr
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.split() == [str(int(1.5 * RATE)), str(RATE), str(int(1.5 * RATE))]
    assert "generated 1 clip" in stderr  # messages on stderr, never in the stream

    written = run_cli("generate", checkpoint, "--length", "1.5", "--seed", "4", "-o",
                      tmp_path / "clip.wav", cwd=tmp_path)  # fmt: skip
    assert written.returncode == 0, written.stderr
    streamed = subprocess.run([*command], capture_output=True, timeout=120).stdout
    assert streamed == (tmp_path / "clip.wav").read_bytes()


class Recorder(io.RawIOBase):
    """A binary output that notes, at each write, how far generation had got."""

    def __init__(self) -> None:
        self.done = -1  # samples generated when last reported; -1: before generation
        self.writes: list[tuple[int, int]] = []  # (bytes, samples done at the time)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append((len(data), self.done))
        return len(data)


@pytest.mark.parametrize("encoding", ["pcm16", "pcm24", "float"])
def test_audio_is_written_while_it_is_generated(checkpoint: Path, encoding: str) -> None:
    length = 2.0
    total = int(length * RATE)
    out = Recorder()

    def progress(status: GenerateStatus) -> None:
        out.done = status.samples

    settings = GenerateSettings(length=length, seed=1, encoding=encoding)
    stream_clip(GenerateRequest(checkpoint, settings, device="cpu"), out, progress=progress)
    header, *audio = out.writes
    assert header == (44, -1)  # the header goes out before generation starts
    assert len(audio) >= total // STREAM_BLOCK_SAMPLES
    # The first samples leave while most of the clip is still to be generated.
    assert audio[0][1] <= STREAM_BLOCK_SAMPLES + 64 < total
    width = {"pcm16": 2, "pcm24": 3, "float": 4}[encoding]
    assert sum(size for size, _ in audio) == total * width


def test_header_sizes() -> None:
    header = wav_header(1000, 16000, "PCM_24")
    assert int.from_bytes(header[4:8], "little") == 36 + 3000
    assert int.from_bytes(header[40:44], "little") == 3000
    huge = wav_header(2**31, 16000, "FLOAT")  # 8 GiB of samples: beyond RIFF's 32 bits
    assert header[:4] == b"RIFF" and huge[4:8] == huge[40:44] == b"\xff\xff\xff\xff"
    info = soundfile.info(io.BytesIO(header + np.zeros(3000, np.uint8).tobytes()))
    assert info.frames == 1000 and info.samplerate == 16000 and info.subtype == "PCM_24"


def test_a_closed_pipe_ends_quietly(checkpoint: Path) -> None:
    """What `samplernn generate ... -o - | head -c 1000` does: the reader leaves after 1000
    bytes of a much longer stream."""
    command = [*SAMPLERNN, "generate", str(checkpoint), "--length", "60", "-o", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.read(1000)
    # Still running: 60 s of audio is 960 kB, far beyond what a pipe holds unread.
    assert process.poll() is None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert first[:4] == b"RIFF" and len(first) == 1000
    assert "Traceback" not in stderr and "Exception" not in stderr and "error" not in stderr


def test_any_command_with_a_closed_stdout_ends_quietly(checkpoint: Path, tmp_path: Path) -> None:
    """stdout is a pipe whose reader is already gone: the first write fails with EPIPE."""
    commands = [
        ["inspect-checkpoint", str(checkpoint), "--json"],
        ["generate", str(checkpoint), "--length", "0.05", "-d", str(tmp_path)],
    ]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        for args in commands:
            result = subprocess.run([*SAMPLERNN, *args], stdout=write_end, stderr=subprocess.PIPE,
                                    text=True, timeout=120)  # fmt: skip
            assert result.returncode == 141, result.stderr
            assert "Traceback" not in result.stderr and "error" not in result.stderr
    finally:
        os.close(write_end)


@pytest.mark.parametrize("implementation", ["numba", "torch"])
def test_both_samplers_hand_over_codes_in_order(checkpoint: Path, implementation: str) -> None:
    """What on_codes receives, joined, is what the sampler returns (the PyTorch sampler is the
    one every GPU runs)."""
    import torch

    from samplernn_cli.checkpoint import load_checkpoint
    from samplernn_cli.generation.engine import generate_takes

    model = load_checkpoint(checkpoint).build_model()
    parts: list[torch.Tensor] = []
    codes = generate_takes(model, 2, 301, seed=2, on_codes=parts.append,
                           implementation=implementation).codes  # fmt: skip
    assert len(parts) > 10 and all(part.shape[0] == 2 for part in parts)
    torch.testing.assert_close(torch.cat(parts, dim=1), codes, rtol=0, atol=0)


def test_output_file_is_never_overwritten(checkpoint: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken.wav"
    taken.write_bytes(b"mine")
    refused = run_cli("generate", checkpoint, "--length", "0.05", "-o", taken, cwd=tmp_path)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert taken.read_bytes() == b"mine"
    target = tmp_path / "new" / "take.flac"
    made = run_cli("generate", checkpoint, "--length", "0.05", "-o", target, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == str(target) and soundfile.info(target).format == "FLAC"


class _Enough(Exception):
    pass


@pytest.mark.parametrize("implementation", ["numba", "torch"])
@pytest.mark.parametrize("prediction", [0, 8])
def test_an_endless_clip_is_a_long_clip_made_in_segments(
    implementation: str, prediction: int
) -> None:
    """Segments that go on from each other's codes and state give the samples of one long
    clip (with linear prediction too: its taps are refitted on the same grid)."""
    import torch

    from samplernn_cli.config import ModelConfig
    from samplernn_cli.generation.engine import generate_endless, generate_takes
    from samplernn_cli.model import SampleRNN

    torch.manual_seed(0)
    config = ModelConfig(frame_sizes=(2, 4), rnn_layers=1, hidden_size=16, embed_size=4,
                         q_levels=32, linear_prediction=prediction)  # fmt: skip
    model = SampleRNN(config).eval()
    length = 700
    expected = generate_takes(model, 1, length, seed=5, temperature=1.0,
                              implementation=implementation).codes  # fmt: skip
    parts: list[torch.Tensor] = []

    def collect(codes: torch.Tensor) -> None:
        parts.append(codes)
        if sum(part.shape[1] for part in parts) >= length:
            raise _Enough

    with pytest.raises(_Enough):
        generate_endless(model, collect, seed=5, segment=40, implementation=implementation)
    assert torch.equal(torch.cat(parts, 1)[:, :length], expected)


def test_an_endless_stream_plays_until_its_reader_leaves(checkpoint: Path) -> None:
    """`generate --length inf -o - | head -c N`: an endless WAV stream whose start is the
    same clip's first seconds, that ends with 141 when the reader goes, in bounded memory."""
    command = [*SAMPLERNN, "generate", str(checkpoint), "--length", "inf", "--seed", "4",
               "-o", "-", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    seconds = 30  # several segments of the tiny model
    data = process.stdout.read(44 + 2 * RATE * seconds)
    assert process.poll() is None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "error" not in stderr
    assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"  # "until the end of the stream"
    finite = subprocess.run(
        [*SAMPLERNN, "generate", str(checkpoint), "--length", str(seconds), "--seed", "4",
         "-o", "-", "--quiet"], capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert data[44:] == finite[44:]


# Ctrl-C: exit code 130; SIGTERM ends generate as the default action does (a shell sees 143).
@pytest.mark.parametrize(("signal", "code"), [("SIGINT", 130), ("SIGTERM", -15)])
def test_an_endless_stream_stops_on_a_signal(checkpoint: Path, signal: str, code: int) -> None:
    import signal as signals

    command = [*SAMPLERNN, "generate", str(checkpoint), "--length", "inf", "-o", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert len(process.stdout.read(44 + 2 * RATE)) == 44 + 2 * RATE  # a second is out
    process.send_signal(getattr(signals, signal))
    rest = process.stdout.read()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == code
    assert "Traceback" not in stderr
    assert len(rest) % 2 == 0  # whole samples


def test_endless_needs_a_stream(checkpoint: Path, tmp_path: Path) -> None:
    for extra in (["-o", str(tmp_path / "x.wav")], ["-d", str(tmp_path)],
                  ["-o", "-", "--count", "2"], ["-o", "-", "--candidates", "3"]):  # fmt: skip
        result = subprocess.run([*SAMPLERNN, "generate", str(checkpoint), "--length", "inf",
                                 *extra], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 2, (extra, result.stderr)
        assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())
