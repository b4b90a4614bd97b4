"""Model quality at equal training budgets: `samplernn train` against the 2022 tool's scheme,
judged by held-out bits and by what the takes sound like.

For each clip, a `--seconds` excerpt from `--offset` (mono, 16 kHz) is written to a
temporary folder, and for each budget and seed both train on it for the same wall-clock
budget, holding out its last 10 %:

* ours: `samplernn train EXCERPT --preset small --max-time BUDGET --val-fraction 0.1 --seed S`
  (plus each `--ours-args`), scored by the validation figure of the checkpoint the run ends
  with (the one `train` prints, validated at its last iteration);
* the 2022 scheme: `../shared/tools/seedref.py train EXCERPT --seconds BUDGET` at the same
  size (LSTM 1x256, frame 16, embed 64, 256 levels, batch 16, `--seed-num-frames` frames per
  window), scored on the same held-out tail by its own windowed evaluation (`val_bits`).

Then each makes `--takes` takes of `--take-seconds` from fixed seeds (ours: `samplernn
generate CKPT --count N --seed 1`, every take kept; the 2022 scheme: `seedref.py generate
--batched --seed 1`), and each take is measured against the excerpt's training part as
`samplernn train` hears it (peak-normalised and quantized to 256 linear levels; the 2022
scheme's takes brought to the same scale, its levels spaced alike):

* distance: `samplernn_cli.distance` (1: as close as the recording's own pieces as long);
* log-mel distance: the Fréchet distance of the log-mel bands and their deltas alone (80
  numbers a frame, one Gaussian), divided by that of the recording's own pieces: a plain
  mel-frame Fréchet distance, as a second opinion that cannot hear partials;
* traps: `samplernn_cli.generation.ranking`'s rules (silence, quiet, loop, noise);
* level: relative to the training part's.

A row gives each run's bits and its takes' median distance, median log-mel distance, median
level and trap counts; the summary gives, per clip and budget, the mean over seeds with
their range. The runs are sequential (never two at once), so each gets the whole machine;
budgets are wall time. Run from the repository root with the project installed:

    python benchmarks/quality.py                                   # the corpus clips, 150 s
    python benchmarks/quality.py --budgets 150,600 --seeds 0,1 --tonal --json quality.json
    python benchmarks/quality.py CLIP --ours-args= --ours-args="--linear-prediction 0"
    python benchmarks/quality.py CLIP --no-seed --ours-args="--cold-starts 0.5"   # ours only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from tonal_clip import ensemble  # benchmarks/tonal_clip.py

from samplernn_cli.distance import (
    MEL_BANDS,
    Reference,
    frame_features,
    frechet,
    gaussian,
    measure_reference,
)
from samplernn_cli.generation.ranking import TRAPS, score_take
from samplernn_cli.pictures import _colour_range, _draw_spectrogram, _figure, mel_spectrogram
from samplernn_cli.quantize import Quantizer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
SEEDREF = SHARED / "tools" / "seedref.py"
RATE = 16000
SMALL = ["--hidden_size", "256", "--rnn_layers", "1", "--frame_size", "16", "--embed_size",
         "64", "--quantization", "256", "--batch_size", "16"]  # fmt: skip
VAL_FRACTION = 0.1


def heard(audio: np.ndarray) -> np.ndarray:
    """``audio`` as `samplernn train --preset small` hears it: peak-normalised, quantized to
    256 linear levels."""
    quantizer = Quantizer("linear", 256)
    return quantizer.decode(quantizer.encode(torch.from_numpy(audio / peak(audio)))).numpy()


def peak(audio: np.ndarray) -> float:
    return max(float(np.abs(audio).max()), 1e-12)


def excerpt(source: Path, seconds: float, offset: float, folder: Path) -> Path:
    """``seconds`` of ``source`` from ``offset``, mono at 16 kHz, as a float WAV."""
    info = soundfile.info(str(source))
    start = int(offset * info.samplerate)
    audio, rate = soundfile.read(str(source), start=start, frames=int(seconds * info.samplerate),
                                 dtype="float32", always_2d=True)  # fmt: skip
    mono = torch.from_numpy(audio.mean(axis=1))
    if rate != RATE:
        mono = AF.resample(mono, rate, RATE)
    path = folder / f"{source.stem}_{int(seconds)}s.wav"
    soundfile.write(str(path), mono.numpy(), RATE, subtype="FLOAT")
    return path


class Judge:
    """Measures takes against a recording's training part (see the module docstring)."""

    def __init__(self, training: np.ndarray) -> None:
        self.reference: Reference = measure_reference([training], RATE)
        # The log-mel distance's own reference: one Gaussian of the bands and deltas.
        self.columns = slice(0, 2 * MEL_BANDS)
        features = frame_features(training, RATE, self.reference.floor_power)[:, self.columns]
        self.mel = gaussian(features)
        self.mel_normalisers: dict[int, float] = {}
        self.features = features

    def mel_distance(self, take: np.ndarray) -> float:
        """The log-mel Fréchet distance of ``take`` (brought to the recording's level),
        divided by the median of the recording's own pieces as long against the rest."""
        level = float(np.sqrt(np.mean(np.square(take, dtype=np.float64))))
        if level == 0:
            return float("inf")
        scaled = take * (self.reference.rms / level)
        features = frame_features(scaled, RATE, self.reference.floor_power)[:, self.columns]
        frames = features.shape[0]
        if frames not in self.mel_normalisers:
            whole = self.features
            values = []
            for first in range(0, whole.shape[0] - frames + 1, frames):
                rest = np.concatenate([whole[:first], whole[first + frames :]])
                values.append(frechet(*gaussian(whole[first : first + frames]), *gaussian(rest)))
            self.mel_normalisers[frames] = float(np.median(values))
        return frechet(*gaussian(features), *self.mel) / self.mel_normalisers[frames]

    def takes(self, paths: list[Path], scale: float = 1.0) -> dict:
        """The takes' scores (each file's samples divided by ``scale``): per take and their
        medians and trap counts."""
        level = self.reference.level_dbfs
        scores = []
        for n, path in enumerate(paths, 1):
            audio = soundfile.read(str(path), dtype="float32")[0] / scale
            measured = score_take(n, audio, RATE, float("nan"), None, self.reference)
            scores.append({**measured.to_dict(), "mel_distance": self.mel_distance(audio),
                           "level_db": measured.level_dbfs - level})  # fmt: skip
        return {
            "distance": statistics.median(s["distance"] for s in scores),
            "mel_distance": statistics.median(s["mel_distance"] for s in scores),
            "level_db": statistics.median(s["level_db"] for s in scores),
            "traps": {trap: sum(s["trap"] == trap for s in scores) for trap in TRAPS},
            "takes": scores,
        }


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result


def train_ours(clip: Path, budget: float, seed: int, extra: str, folder: Path,
               args: argparse.Namespace, judge: Judge, name: str) -> dict:  # fmt: skip
    samplernn = [sys.executable, "-m", "samplernn_cli"]
    started = time.monotonic()
    result = run([*samplernn, "train", str(clip), "-o", name, "--output-root", str(folder),
                  "--preset", "small", "--val-fraction", str(VAL_FRACTION), "--seed", str(seed),
                  "--max-time", f"{budget}s", "--generate-every", str(10**9), "--quiet",
                  *extra.split()], cwd=folder)  # fmt: skip
    wall = time.monotonic() - started
    checkpoint = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads(run([*samplernn, "inspect-checkpoint", str(checkpoint), "--json"],
                             cwd=folder).stdout)  # fmt: skip
    clips = folder / f"{name}_takes"
    run([*samplernn, "generate", str(checkpoint), "--length", str(args.take_seconds), "--count",
         str(args.takes), "--seed", "1", "-d", str(clips), "--quiet"], cwd=folder)  # fmt: skip
    losses, iteration = summary["losses"], summary["training"]["iteration"]
    if losses["last_val_iteration"] != iteration:
        raise SystemExit(f"{checkpoint} holds no validation figure of its own iteration")
    return {
        "bits": losses["last_val_loss"],
        "best_bits": losses["best_val_loss"],
        "iterations": iteration,
        "wall_s": wall,
        "scale": 1.0,
        **judge.takes(sorted(clips.glob("*.wav"))),
    }


def train_seed(clip: Path, budget: float, seed: int, folder: Path, args: argparse.Namespace,
               judge: Judge, name: str, gain: float) -> dict:  # fmt: skip
    checkpoint = folder / f"{name}.pt"
    result = run([sys.executable, str(SEEDREF), "train", str(clip), "--seconds", str(budget),
                  *SMALL, "--num_frames", str(args.seed_num_frames), "--val-fraction",
                  str(VAL_FRACTION), "--seed", str(seed), "--save", str(checkpoint)],
                 cwd=folder)  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    clips = folder / f"{name}_takes"
    run([sys.executable, str(SEEDREF), "generate", "--ckpt", str(checkpoint), "--length",
         str(args.take_seconds), "--count", str(args.takes), "--batched", "--seed", "1",
         "--out", str(clips)], cwd=folder)  # fmt: skip
    return {
        "bits": report["val_bits"],
        "iterations": report["iterations"],
        "scale": 1 / gain,
        **judge.takes(sorted(clips.glob("*.wav")), scale=1 / gain),
    }


def describe(label: str, result: dict) -> str:
    traps = ", ".join(f"{n} {t}" for t, n in result["traps"].items() if n) or "no traps"
    return (f"  {label:24s} bits {result['bits']:.3f} ({result['iterations']} it)  distance "
            f"{result['distance']:6.2f}  log-mel {result['mel_distance']:6.2f}  level "
            f"{result['level_db']:6.1f} dB  {traps}")  # fmt: skip


def summarise(rows: list[dict]) -> None:
    """Per clip, budget and scheme: means over seeds, with their range."""
    print("\nsummary: mean over seeds [min, max]")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["clip"], row["budget_s"], row["scheme"]), []).append(row)
    for (clip, budget, scheme), runs in groups.items():

        def spread(key: str, runs: list[dict] = runs) -> str:
            values = [r[key] for r in runs]
            return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"

        caught = sum(sum(r["traps"].values()) for r in runs)
        takes = sum(len(r["takes"]) for r in runs)
        print(
            f"{clip} {budget:.0f} s, {scheme}: bits {spread('bits')}, distance "
            f"{spread('distance')}, log-mel {spread('mel_distance')}, traps {caught}/{takes}"
        )
    sys.stdout.flush()


def takes_picture(path: Path, training: np.ndarray, runs: list[tuple[str, dict, Path, float]],
                  count: int = 2) -> None:  # fmt: skip
    """A PNG: 4 s of the training part, then the first ``count`` takes of each run, as mel
    spectrograms on one colour scale, each titled with its distance and trap."""
    panels = []
    length = round(4 * RATE)
    middle = max(0, training.size // 2 - length // 2)
    panels.append(("training audio", training[middle : middle + length]))
    for label, result, folder, scale in runs:
        for take, wav in zip(result["takes"][:count], sorted(folder.glob("*.wav")), strict=False):
            audio = soundfile.read(str(wav), dtype="float32")[0] / scale
            verdict = take["trap"] or "kept"
            panels.append((f"{label}, take {take['take']}: distance {take['distance']:.2f}, "
                           f"{take['level_db']:+.0f} dB, {verdict}", audio))  # fmt: skip
    spectrograms = [mel_spectrogram(torch.from_numpy(np.asarray(a, np.float32)), RATE)
                    for _, a in panels]  # fmt: skip
    figure = _figure(12.0, 0.4 + 2.0 * ((len(panels) + 1) // 2))
    limits = _colour_range(spectrograms)
    for index, ((title, _), spectrogram) in enumerate(zip(panels, spectrograms, strict=True)):
        ax = figure.add_subplot((len(panels) + 1) // 2, 2, index + 1)
        _draw_spectrogram(ax, spectrogram, limits, title)
    figure.savefig(path, dpi=70)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, help="audio files (default: the corpus)")
    parser.add_argument("--budgets", default="150", help="training seconds, comma-separated")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="excerpt length")
    parser.add_argument("--offset", type=float, default=0.0, help="excerpt start (s)")
    parser.add_argument(
        "--seed-num-frames",
        type=int,
        default=8,
        help="frames per window of the 2022 scheme (its small setting)",
    )
    parser.add_argument(
        "--ours-args",
        action="append",
        default=None,
        help="extra `samplernn train` options; repeat to compare several variants against "
        "the same 2022-scheme runs",
    )
    parser.add_argument("--no-seed", action="store_true", help="leave the 2022 scheme out")
    parser.add_argument(
        "--tonal",
        action="store_true",
        help="also the made ensemble of sustained tones (tonal_clip.py)",
    )
    parser.add_argument("--takes", type=int, default=8, help="takes generated per run")
    parser.add_argument("--take-seconds", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--pictures",
        type=Path,
        help="write here, for each clip and budget, the first seed's first two takes of each "
        "scheme beside the training audio (CLIP_BUDGET.png)",
    )
    args = parser.parse_args()
    sources = args.clips or sorted(CORPUS.glob("*.flac"))
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.ours_args or [""]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.tonal:
            made = folder / "ensemble.flac"
            soundfile.write(str(made), ensemble(args.seconds + args.offset), RATE)
            sources = [*sources, made]
        for source in sources:
            clip = excerpt(source, args.seconds, args.offset, folder)
            audio = soundfile.read(str(clip), dtype="float32")[0]
            training = heard(audio)[: int(len(audio) * (1 - VAL_FRACTION))]
            judge = Judge(training)
            for budget in budgets:
                for seed in seeds:
                    runs = []
                    schemes = [] if args.no_seed else [("2022 scheme", None)]
                    schemes += [(f"ours [{extra or 'defaults'}]", extra) for extra in variants]
                    print(f"\n{source.name}, {budget:.0f} s of training, seed {seed}")
                    for number, (label, extra) in enumerate(schemes):
                        name = f"{clip.stem}_{int(budget)}_{seed}_{number}"
                        if extra is None:
                            result = train_seed(clip, budget, seed, folder, args, judge, name,
                                                1 / peak(audio))  # fmt: skip
                        else:
                            result = train_ours(clip, budget, seed, extra, folder, args, judge,
                                                name)  # fmt: skip
                        row = {"clip": source.name, "budget_s": budget, "seed": seed,
                               "scheme": label, **result}  # fmt: skip
                        rows.append(row)
                        print(describe(label, result), flush=True)
                        runs.append((label, result, folder / f"{name}_takes", result["scale"]))
                    if args.pictures is not None and seed == seeds[0]:
                        args.pictures.mkdir(parents=True, exist_ok=True)
                        takes_picture(args.pictures / f"{source.stem}_{int(budget)}.png",
                                      training, runs)  # fmt: skip
            summarise([r for r in rows if r["clip"] == source.name])
    summarise(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
