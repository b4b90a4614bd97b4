"""How fast a live voice (`samplernn export --format nn`) plays, against `samplernn
generate`'s compiled sampler on the same model, in the same run, on one thread.

For a trained `--preset small` checkpoint (--checkpoint) and untrained models of three sizes,
the voice is called as nn~ calls it (`samplernn_cli.voice.build.time_voice`: buffers of
4,096 samples at a 48 kHz host, a new thread per buffer, inference mode), and the Numba
sampler generates the same number of samples of one clip in float32 and int8
(`generate_takes`). Each figure is a
real-time factor: seconds of computing per second of 16 kHz audio (below 1: faster than real
time). The ratio column is the voice's factor over the Numba float32 sampler's. Untrained
weights draw codes all over the range, so the first layer's table rows miss the cache more
often than a trained model's do: a trained model's figure is the one a user meets.

--parts times the voice at --preset small with one part of its per-sample loop taken out at
a time (the frame tier's step, the two hidden layers, the Gumbel draws, the rows each
draw adds to the first layer's inputs): what each costs is the difference from the whole.

    python benchmarks/voice.py --checkpoint outputs/small/small_best_model.pt
    python benchmarks/voice.py --checkpoint outputs/small/small_best_model.pt --parts

--against ROOT times this checkout's voice against the voice of another checkout of the
package (ROOT: its top folder, e.g. a `git worktree` of an older commit) on the same
checkpoint: one process each, playing buffers in turn (--rounds of 6 buffers, nn~'s 4,096
samples at 48 kHz, each from a new thread, one thread of computing, as the export times
them), so that the machine's drift reaches both alike; it prints
each one's median real-time factor and the median of the rounds' ratios.

    python benchmarks/voice.py --checkpoint CKPT --against ../samplernn-old
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN
from samplernn_cli.voice import build as voice_build
from samplernn_cli.voice.build import build_voice, script_voice, time_voice

RATE = 16000
HOST_RATE = 48000
SMALL = {"hidden_size": 256, "rnn_layers": 1, "frame_sizes": (16,), "embed_size": 64}
SIZES = {
    "small": SMALL,
    "small, hidden 128": {**SMALL, "hidden_size": 128},
    "default": {},
}
# Text of module.py replaced to take one part out of the per-sample loop.
PARTS = {
    "frame tier": [
        ("tier.step(frame, above.select(1, (s // size) % above_ratio))", "pass"),
        ("tier.step(frame, top)", "pass"),
    ],
    "hidden layers": [
        (
            "return self.output(self.hidden2(self.hidden1(torch.relu(first))), offset)",
            "return self.output(torch.relu(first), offset)",
        ),
    ],
    "Gumbel draws": [
        (
            """noise = gumbel_noise(
                self.seed, int(self.chunk_index[0]), [batch, self.chunk, self.levels]
            )""",
            "noise = torch.zeros(batch, self.chunk, self.levels)",
        )
    ],
    "first layer rows": [
        ("line.narrow(0, start + j + 1, fs).add_(self.code_rows[code])", "pass"),
    ],
}


def numba_factor(model: SampleRNN, samples: int, precision: str) -> float:
    generate_takes(model, 1, 4096, seed=1, precision=precision)  # compile, warm up
    started = time.perf_counter()
    generate_takes(model, 1, samples, seed=1, precision=precision)
    return (time.perf_counter() - started) * RATE / samples


def voice_factor(model: SampleRNN, seconds: float) -> tuple[float, float]:
    timing = time_voice(script_voice(build_voice(model, RATE, seed=1)), HOST_RATE, seconds=seconds)
    return timing.median, timing.worst


def models(checkpoint: Path | None) -> dict[str, SampleRNN]:
    found = {}
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint)
        if loaded.sample_rate != RATE:
            sys.exit(f"{checkpoint}: a {RATE} Hz model is needed")
        found[f"{checkpoint.name} (trained)"] = loaded.build_model()
    torch.manual_seed(0)
    for name, values in SIZES.items():
        found[f"{name}, untrained"] = SampleRNN(ModelConfig(**values, linear_prediction=0))
    return found


def sizes(seconds: float, checkpoint: Path | None) -> None:
    print(f"torch {torch.__version__}, one thread; real-time factors at a {HOST_RATE} Hz host")
    print(f"{'model':32s} {'parameters':>11s} {'voice':>7s} {'worst':>7s} "
          f"{'numba f32':>10s} {'numba int8':>11s} {'ratio':>6s}")  # fmt: skip
    for name, model in models(checkpoint).items():
        model.eval()
        parameters = sum(p.numel() for p in model.parameters())
        scale = 0.25 if name.startswith("default") else 1.0
        median, worst = voice_factor(model, seconds * scale)
        samples = int(RATE * seconds * scale)
        torch.set_num_threads(1)
        f32, int8 = numba_factor(model, samples, "float32"), numba_factor(model, samples, "int8")
        print(f"{name:32s} {parameters:>11,} {median:7.3f} {worst:7.3f} {f32:10.3f} "
              f"{int8:11.3f} {median / f32:5.2f}x")  # fmt: skip


def parts(seconds: float, checkpoint: Path | None) -> None:
    folder_of_voice = Path(voice_build.__file__).parent
    sources = {name: (folder_of_voice / f"{name}.py").read_text() for name in ("module", "tiers")}
    name, model = next(iter(models(checkpoint).items()))
    model.eval()
    whole, _ = voice_factor(model, seconds)
    print(f"{name}, real-time factor at {HOST_RATE} Hz: whole loop {whole:.3f}")
    with tempfile.TemporaryDirectory() as folder:
        sys.path.insert(0, folder)
        for number, (part, replacements) in enumerate(PARTS.items()):
            texts = dict(sources)
            for old, new in replacements:
                found = [key for key, text in texts.items() if old in text]
                if not found:
                    sys.exit(
                        f"the voice's module.py and tiers.py no longer have {old!r}: update PARTS"
                    )
                texts[found[0]] = texts[found[0]].replace(old, new)
            # The changed module imports the changed tiers.
            tiers_name, module_name = f"voice_tiers_{number}", f"voice_without_{number}"
            texts["module"] = texts["module"].replace(
                "from samplernn_cli.voice.tiers import", f"from {tiers_name} import"
            )
            loaded = {}
            for key, stem in (("tiers", tiers_name), ("module", module_name)):
                path = Path(folder) / f"{stem}.py"
                path.write_text(texts[key])
                spec = importlib.util.spec_from_file_location(stem, path)
                assert spec is not None and spec.loader is not None
                loaded[key] = importlib.util.module_from_spec(spec)
                sys.modules[stem] = loaded[key]
                spec.loader.exec_module(loaded[key])
            # build_voice makes the classes it finds in samplernn_cli.voice.build.
            classes = ("LiveVoice", "FrameTierVoice", "RecurrentLayer", "SampleTierVoice")
            saved = {cls: getattr(voice_build, cls) for cls in classes}
            for cls in classes:
                setattr(voice_build, cls, getattr(loaded["module"], cls))
            try:
                without, _ = voice_factor(model, seconds)
            finally:
                for cls, value in saved.items():
                    setattr(voice_build, cls, value)
            share = (whole - without) / whole
            print(f"  without {part:18s} {without:.3f}  (the part: {share:.0%} of the loop)")


# A process that builds the voice of the package on its PYTHONPATH and, for each number it
# reads, plays that many buffers as the export times them (time_voice: nn~'s way, a new
# thread per buffer, after its warm-up buffers) and prints their mean real-time factor.
PLAYER = """
import sys, warnings
warnings.simplefilter("ignore")
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.voice.build import TIMED_BUFFER, build_voice, script_voice, time_voice
model = load_checkpoint(sys.argv[1]).build_model().eval()
voice = script_voice(build_voice(model, 16000, seed=1))
print("ready", flush=True)
for line in sys.stdin:
    factors = time_voice(voice, 48000, seconds=int(line) * TIMED_BUFFER / 48000).factors
    print(sum(factors) / len(factors), flush=True)
"""


def against(checkpoint: Path | None, other: Path, rounds: int) -> None:
    if checkpoint is None:
        sys.exit("--against needs --checkpoint")
    roots = {"this checkout": Path(__file__).resolve().parents[1], str(other): other.resolve()}
    players = {}
    for name, root in roots.items():
        if not (root / "samplernn_cli").is_dir():
            sys.exit(f"{root} holds no samplernn_cli package")
        env = {**os.environ, "PYTHONPATH": str(root)}
        command = [sys.executable, "-c", PLAYER, str(checkpoint.resolve())]
        pipe = subprocess.PIPE
        # In its own folder: python -c puts the working folder first on the path.
        player = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=env, cwd=root)
        assert player.stdin is not None and player.stdout is not None
        if player.stdout.readline().strip() != "ready":
            sys.exit(f"the voice of {root} did not start")
        players[name] = player
    factors: dict[str, list[float]] = {name: [] for name in players}
    for number in range(rounds):
        order = list(players) if number % 2 == 0 else list(players)[::-1]
        for name in order:
            player = players[name]
            assert player.stdin is not None and player.stdout is not None
            player.stdin.write("6\n")
            player.stdin.flush()
            factors[name].append(float(player.stdout.readline()))
    for player in players.values():
        assert player.stdin is not None
        player.stdin.close()
        player.wait()
    print(f"{checkpoint.name}: real-time factor at {HOST_RATE} Hz, {rounds} rounds of 6 buffers")
    for name, values in factors.items():
        print(f"  {name:40s} median {statistics.median(values):.3f}  best {min(values):.3f}")
    mine, theirs = factors.values()
    ratio = statistics.median(b / a for a, b in zip(mine, theirs, strict=True))
    print(f"  this checkout is {ratio:.2f}x as fast (the median of the rounds' ratios)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="of audio per timing")
    parser.add_argument("--parts", action="store_true", help="what each part of the loop costs")
    parser.add_argument("--checkpoint", type=Path, help="a trained 16 kHz --preset small model")
    parser.add_argument("--against", type=Path, help="another checkout's top folder")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of --against")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    if args.against is not None:
        against(args.checkpoint, args.against, args.rounds)
    elif args.parts:
        parts(args.seconds, args.checkpoint)
    else:
        sizes(args.seconds, args.checkpoint)


if __name__ == "__main__":
    main()
