"""Which architecture learns most in the same CPU time? Validation bits per sample.

Every configuration has the same small size (hidden 256, 2 RNN layers per tier, embed 64,
batch 16, 256 linear levels, 256-sample truncated-BPTT steps) and the same budget of process
CPU time (user + system, all threads; immune to other load on the machine, unlike wall
time). Each trains with `samplernn_cli.training.session.train` on a clip of the development
corpus and reports the validation NLL on the clip's held-out tail (5 %) when its budget runs out.
Leading and trailing silence (below -60 dBFS) is trimmed first, so the held-out tail is
music or speech rather than the fade-out.

    python benchmarks/architectures.py                      # 600 CPU-seconds per run
    python benchmarks/architectures.py --budget 60 --clips piano --configs seed,fixed
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.training.requests import StopRequest, TrainRequest, TrainStatus
from samplernn_cli.training.session import train

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
CLIPS = {
    "piano": CORPUS / "piano_bach_bwv846_prelude.flac",
    "speech": CORPUS / "speech_asterisk_allison_en.flac",
}
SMALL = {"hidden_size": 256, "rnn_layers": 2, "embed_size": 64, "q_levels": 256}
FIXES = {"skip_connections": True, "weight_norm": True, "learn_h0": True}
CONFIGS = {
    # The 2022 tool's configuration (the `seed` preset) at the small size.
    "seed": ModelConfig(frame_sizes=(16,), rnn_type="lstm", **SMALL),
    "gru": ModelConfig(frame_sizes=(16,), rnn_type="gru", **SMALL),
    # The paper's weight norm and learned initial state.
    "wn+h0": ModelConfig(frame_sizes=(16,), rnn_type="lstm", weight_norm=True, learn_h0=True,
                         **SMALL),
    # ... plus the Dadabots skip connections: every fix this tool offers.
    "fixed": ModelConfig(frame_sizes=(16,), rnn_type="lstm", **FIXES, **SMALL),
    "fixed-gru": ModelConfig(frame_sizes=(16,), rnn_type="gru", **FIXES, **SMALL),
    # 3-tier: frames of 4 and 16 samples (the same 16-sample top frame as the 2-tier runs).
    "3-tier": ModelConfig(frame_sizes=(4, 4), rnn_type="lstm", **FIXES, **SMALL),
}  # fmt: skip
TRAIN = TrainConfig(batch_size=16, num_frames=16, sequence_seconds=8.0, val_fraction=0.05)
NEVER = 2**62


@dataclass
class Outcome:
    iterations: int
    val_bits: float | None
    train_bits: float | None
    samples_per_s: float


def trimmed(source: Path, folder: Path) -> Path:
    """The clip without leading and trailing silence (below -60 dBFS of its peak)."""
    data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    loud = np.flatnonzero(np.abs(mono) > np.abs(mono).max() * 10 ** (-60 / 20))
    out = folder / f"{source.stem}-trimmed.flac"
    soundfile.write(out, mono[loud[0] : loud[-1] + 1], rate, subtype="PCM_16")
    return out


def run(config: ModelConfig, source: Path, budget: float, folder: Path, name: str) -> Outcome:
    stop = StopRequest()
    started = time.process_time()
    rates: list[float] = []

    def watch(status: TrainStatus) -> None:
        rates.append(status.samples_per_s)
        if time.process_time() - started >= budget:
            stop.request("cpu_budget")

    torch.manual_seed(0)
    result = train(
        TrainRequest(
            inputs=(source,),
            run=RunFolder(path=folder / name, name=name),
            model=config,
            audio=AudioConfig(sample_rate=16000),
            train=TRAIN,
            live=LiveSettings(generate_every=NEVER, checkpoint_every=NEVER, val_every=NEVER),
            device="cpu",
        ),
        progress=watch,
        stop=stop,
    )
    return Outcome(
        iterations=result.iteration,
        val_bits=result.last_val_loss,
        train_bits=result.last_loss,
        samples_per_s=float(np.median(rates)) if rates else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="CPU-seconds per run")
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    logging.getLogger("samplernn").setLevel(logging.WARNING)
    print(
        f"# budget {args.budget:g} CPU-seconds per run, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; validation NLL on the held-out 5 % tail"
    )
    print(
        f"{'clip':8} {'config':10} {'params':>9} {'iters':>6} {'samples/s':>10} "
        f"{'train bits':>10} {'val bits':>9}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for clip in args.clips.split(","):
            source = trimmed(CLIPS[clip], folder)
            for name in args.configs.split(","):
                config = CONFIGS[name]
                outcome = run(config, source, args.budget, folder, f"{clip}-{name}")
                print(
                    f"{clip:8} {name:10} {config.parameter_count():>9,} "
                    f"{outcome.iterations:>6} {outcome.samples_per_s:>10,.0f} "
                    f"{outcome.train_bits or float('nan'):>10.3f} "
                    f"{outcome.val_bits or float('nan'):>9.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
