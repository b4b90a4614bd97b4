"""Model quality at equal training budgets: `samplernn train` against the 2022 tool's scheme.

For each clip, a 60 s excerpt (mono, 16 kHz) is written to a temporary folder and both
train on it for the same wall-clock budget, holding out its last 10 %:

* ours: `samplernn train EXCERPT --preset small --max-time BUDGET --val-fraction 0.1`
  (plus each `--ours-args`); scored by the validation figure of the checkpoint the run ends with
  (the one `train` prints, validated at its last iteration), and the run's best figure;
* the 2022 scheme: `../shared/tools/seedref.py train EXCERPT --seconds BUDGET` at the same
  size (LSTM 1x256, frame 16, embed 64, 256 levels, batch 16, `--seed-num-frames` frames per
  window), scored on the same held-out tail by its own windowed evaluation (`val_bits`).

Both then generate clips (`--clip-count` x `--clip-seconds`), whose spectral statistics
(flatness, centroid, RMS level; mean over frames with signal) are printed next to the
training audio's: lower bits must not come with audio further from the training audio.

The runs are sequential (never two at once), so each gets the whole machine; budgets are
wall time. Run from the repository root with the project installed:

    python benchmarks/quality.py                                   # both corpus clips, 150 s
    python benchmarks/quality.py --budgets 150,600 --json quality.json
    python benchmarks/quality.py --ours-args= --ours-args="--sequence-length 1"   # two variants
    python benchmarks/quality.py --tonal --budgets 150,600    # and a made ensemble of tones
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from tonal_clip import ensemble  # benchmarks/tonal_clip.py

from samplernn_cli.clip_stats import spectral_stats
from samplernn_cli.pictures import spectrogram_pair

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
SEEDREF = SHARED / "tools" / "seedref.py"
RATE = 16000
SMALL = ["--hidden_size", "256", "--rnn_layers", "1", "--frame_size", "16", "--embed_size",
         "64", "--quantization", "256", "--batch_size", "16"]  # fmt: skip


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


def clip_stats(paths: list[Path]) -> dict[str, float]:
    stats = [spectral_stats(soundfile.read(str(p), dtype="float32")[0], RATE) for p in paths]
    return {key: float(np.mean([s[key] for s in stats])) for key in stats[0]}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result


def train_ours(
    clip: Path, budget: float, args: argparse.Namespace, folder: Path, extra: str, variant: int
) -> dict:
    name = f"ours{variant}_{clip.stem}_{int(budget)}"
    samplernn = [sys.executable, "-m", "samplernn_cli"]
    started = time.monotonic()
    result = run([*samplernn, "train", str(clip), "-o", name, "--output-root", str(folder),
                  "--preset", "small", "--val-fraction", "0.1", "--seed", str(args.seed),
                  "--max-time", f"{budget}s", "--generate-every", str(10**9), "--quiet",
                  *extra.split()], cwd=folder)  # fmt: skip
    wall = time.monotonic() - started
    checkpoint = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads(run([*samplernn, "inspect-checkpoint", str(checkpoint), "--json"],
                             cwd=folder).stdout)  # fmt: skip
    clips = folder / f"{name}_clips"
    run([*samplernn, "generate", str(checkpoint), "--length", str(args.clip_seconds), "--count",
         str(args.clip_count), "--seed", "1", "-d", str(clips), "--quiet"], cwd=folder)  # fmt: skip
    losses, iteration = summary["losses"], summary["training"]["iteration"]
    if losses["last_val_iteration"] != iteration:
        raise SystemExit(f"{checkpoint} holds no validation figure of its own iteration")
    return {
        "bits": losses["last_val_loss"],
        "best_bits": losses["best_val_loss"],
        "best_iteration": losses["best_val_iteration"],
        "iterations": iteration,
        "wall_s": wall,
        "clips": clip_stats(sorted(clips.glob("*.wav"))),
    }


def train_seed(clip: Path, budget: float, args: argparse.Namespace, folder: Path) -> dict:
    checkpoint = folder / f"seed_{clip.stem}_{int(budget)}.pt"
    result = run([sys.executable, str(SEEDREF), "train", str(clip), "--seconds", str(budget),
                  *SMALL, "--num_frames", str(args.seed_num_frames), "--val-fraction", "0.1",
                  "--seed", str(args.seed), "--save", str(checkpoint)], cwd=folder)  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    clips = folder / f"seed_{clip.stem}_{int(budget)}_clips"
    run([sys.executable, str(SEEDREF), "generate", "--ckpt", str(checkpoint), "--length",
         str(args.clip_seconds), "--count", str(args.clip_count), "--batched", "--seed", "1",
         "--out", str(clips)], cwd=folder)  # fmt: skip
    return {
        "bits": report["val_bits"],
        "iterations": report["iterations"],
        "clips": clip_stats(sorted(clips.glob("*.wav"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, help="audio files (default: the corpus)")
    parser.add_argument("--budgets", default="150", help="training seconds, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="excerpt length")
    parser.add_argument("--offset", type=float, default=0.0, help="excerpt start (s)")
    parser.add_argument("--seed", type=int, default=0)
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
        help="extra `samplernn train` options; repeat to compare several "
        "variants against the same 2022-scheme run",
    )
    parser.add_argument(
        "--tonal",
        action="store_true",
        help="also the made ensemble of sustained tones (benchmarks/tonal_clip.py)",
    )
    parser.add_argument("--clip-count", type=int, default=2, help="clips generated per run")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--pictures",
        type=Path,
        help="write here, for each clip and budget, the spectrograms of the first generated "
        "clip of each scheme beside the training audio's (CLIP_BUDGET.png)",
    )
    parser.add_argument(
        "--keep", type=Path, help="copy each run of ours (run folder and clips) into this folder"
    )
    args = parser.parse_args()
    sources = args.clips or sorted(CORPUS.glob("*.flac"))
    budgets = [float(b) for b in args.budgets.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.tonal:
            made = folder / "ensemble.flac"
            soundfile.write(str(made), ensemble(args.seconds + args.offset), RATE)
            sources = [*sources, made]
        for source in sources:
            clip = excerpt(source, args.seconds, args.offset, folder)
            audio = soundfile.read(str(clip), dtype="float32")[0]
            training_part = audio[: int(len(audio) * 0.9)]
            training = spectral_stats(training_part, RATE)
            for budget in budgets:
                seed = train_seed(clip, budget, args, folder)
                for variant, extra in enumerate(args.ours_args or [""]):
                    ours = train_ours(clip, budget, args, folder, extra, variant)
                    if args.keep is not None:
                        for kept in folder.glob(f"ours{variant}_{clip.stem}_{int(budget)}*"):
                            shutil.copytree(kept, args.keep / kept.name, dirs_exist_ok=True)
                    row = {"clip": source.name, "budget_s": budget, "ours_args": extra,
                           "ours": ours, "seed": seed, "training_audio": training,
                           "gain_pct": 100 * (seed["bits"] - ours["bits"]) / seed["bits"],
                           "end_vs_best_pct": 100 * (ours["bits"] - ours["best_bits"])
                           / ours["best_bits"]}  # fmt: skip
                    results.append(row)
                    print_row(row)
                    if args.pictures is not None:
                        args.pictures.mkdir(parents=True, exist_ok=True)
                        picture = comparison_picture(
                            training_part,
                            folder / f"ours{variant}_{clip.stem}_{int(budget)}_clips",
                            folder / f"seed_{clip.stem}_{int(budget)}_clips",
                            row,
                        )
                        name = f"{source.stem}_{int(budget)}{f'_{variant}' if variant else ''}"
                        matplotlib.image.imsave(args.pictures / f"{name}.png", picture)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def comparison_picture(training: np.ndarray, ours: Path, seed: Path, row: dict) -> np.ndarray:
    """The first clip of each scheme (folders ``ours`` and ``seed``) as a spectrogram beside
    that of as long a stretch from the middle of ``training``, on one colour scale, ours
    above; (H, W, 3) uint8."""
    rows = []
    for label, clips, bits in (("samplernn train", ours, row["ours"]["bits"]),
                               ("2022 scheme", seed, row["seed"]["bits"])):  # fmt: skip
        clip = soundfile.read(str(sorted(clips.glob("*.wav"))[0]), dtype="float32")[0]
        start = max(0, len(training) // 2 - len(clip) // 2)
        truth = torch.from_numpy(np.ascontiguousarray(training[start : start + len(clip)]))
        title = f"{label}, {row['budget_s']:.0f} s ({bits:.2f} bits)"
        rows.append(spectrogram_pair(torch.from_numpy(clip), truth, RATE, title))
    return np.concatenate(rows)


def print_row(row: dict) -> None:
    ours, seed, real = row["ours"], row["seed"], row["training_audio"]
    print(
        f"\n{row['clip']}, {row['budget_s']:.0f} s of training, ours with "
        f"[{row['ours_args'] or 'defaults'}]"
    )
    print(f"  held-out bits/sample: ours {ours['bits']:.3f} ({ours['iterations']} it, best "
          f"{ours['best_bits']:.3f} at {ours['best_iteration']}), 2022 scheme {seed['bits']:.3f} "
          f"({seed['iterations']} it): ours {row['gain_pct']:+.1f} % lower; run end vs its "
          f"best {row['end_vs_best_pct']:+.1f} %")  # fmt: skip
    print(f"  {'':14s} {'flatness':>9s} {'centroid':>9s} {'level':>8s}")
    for label, stats in (("training audio", real), ("ours", ours["clips"]),
                         ("2022 scheme", seed["clips"])):  # fmt: skip
        print(
            f"  {label:14s} {stats['flatness']:9.3f} {stats['centroid_hz']:7.0f}Hz "
            f"{stats['level_dbfs']:6.1f}dB"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
