"""The live voice in int8 against float32 (`samplernn export --format nn --precision`): how
fast each plays, how far apart their distributions are, and what their takes sound like.

For one trained checkpoint (16 kHz):

- speed: both voices built and scripted in this process, played as nn~ plays them
  (`time_voice`: buffers of 4,096 at a 48 kHz host, a new thread per buffer, one thread of
  computing) in turns for --rounds rounds; the median real-time factor of each and the median
  of the rounds' ratios;
- distribution: both voices read the same audio (--audio, encoded by the model's quantizer;
  e.g. the recording's held-out end), teacher-forced: each sample's distribution given the
  true codes before it. KL(float32 || int8) per sample (mean, 99th percentile, largest) and
  each one's bits per sample on the audio;
- takes: --takes takes of --length s from each voice (seeds 1 to --takes, temperature 1, the
  export's quiet boost), at the model's rate, scored as `generate` scores takes (the model's
  bits in float32 as `samplernn evaluate` gives them, the distance to the recording and the
  traps, from the checkpoint's reference statistics).

    python benchmarks/voice_precision.py CKPT --audio clip.flac
"""

from __future__ import annotations

import argparse
import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config.generation import QUIET_BOOST
from samplernn_cli.data.split import Segment
from samplernn_cli.evaluation import evaluate_bits
from samplernn_cli.generation.quiet import QuietGuard
from samplernn_cli.generation.ranking import describe_traps, median_distance, score_take
from samplernn_cli.voice.build import build_voice, script_voice, time_voice
from samplernn_cli.voice.module import LiveVoice

PRECISIONS = ("float32", "int8")


@torch.inference_mode()
def forced_log_probs(voice: LiveVoice, codes: torch.Tensor) -> torch.Tensor:
    """(N, levels) log-probabilities of each code of ``codes`` (N,) given the true codes
    before it (zeros before the first), from the voice's own tiers and layers, stepped as
    its chunk loop (LiveVoice._chunk) steps them, with the draws replaced by the true codes."""
    voice._reset(1)
    chunk, fs, sample = voice.chunk, voice.frame_size, voice.sample
    usable = codes[: codes.numel() // chunk * chunk]
    padded = torch.cat([torch.full((chunk,), voice.zero_code), usable]).unsqueeze(0)
    top = torch.zeros(1, voice.hidden)
    found = []
    for start in range(0, usable.numel(), chunk):
        window = padded[:, start : start + 2 * chunk]  # the chunk before it, then it
        inputs = sample.begin(window[:, chunk - fs : chunk])
        for s in range(0, chunk, fs):
            position = chunk + s
            inputs[:, s : s + fs] += voice.step_frame_tiers(window, position, s, top)
            for j in range(fs):
                logits = sample.logits(inputs[:, s + j], sample.b_out.unsqueeze(0))
                found.append(torch.log_softmax(logits[0].double(), 0))
                code = int(window[0, position + j])
                inputs[0, s + j + 1 : s + j + 1 + fs] += sample.code_rows[code]
        sample.end(inputs, True)
    return torch.stack(found)


def play_take(voice: torch.jit.ScriptModule, seed: int, samples: int) -> torch.Tensor:
    voice.set_reset(True)
    voice.set_seed(seed)
    with torch.inference_mode():
        return voice(torch.zeros(1, 2, samples))[0, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--audio", type=Path, required=True, help="audio to read, teacher-forced")
    parser.add_argument("--seconds", type=float, default=10.0, help="of --audio, from its end")
    parser.add_argument("--rounds", type=int, default=20, help="speed: rounds of 6 buffers")
    parser.add_argument("--takes", type=int, default=8)
    parser.add_argument("--length", type=float, default=4.0, help="seconds per take")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(args.checkpoint)
    rate = checkpoint.sample_rate
    model = checkpoint.build_model().eval()
    guard = QuietGuard.for_recording(
        checkpoint.training_level_dbfs, rate, QUIET_BOOST, checkpoint.reference
    )
    voices = {p: build_voice(model, rate, seed=1, guard=guard, precision=p) for p in PRECISIONS}
    scripted = {p: script_voice(v) for p, v in voices.items()}

    factors: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for number in range(args.rounds):
        for p in PRECISIONS if number % 2 == 0 else PRECISIONS[::-1]:
            timing = time_voice(scripted[p], 48000, seconds=6 * 4096 / 48000)
            factors[p].append(statistics.mean(timing.factors))
    ratio = statistics.median(a / b for a, b in zip(*factors.values(), strict=True))
    print(f"{args.checkpoint.name}: real-time factor at 48,000 Hz, {args.rounds} rounds")
    for p, values in factors.items():
        print(f"  {p:8s} median {statistics.median(values):.3f}  best {min(values):.3f}")
    print(f"  int8 is {ratio:.2f}x as fast (the median of the rounds' ratios)")

    audio = read_audio(args.audio, checkpoint.audio).samples
    audio = audio[-int(args.seconds * rate) :]
    codes = model.quantizer.encode(audio)
    logs = {p: forced_log_probs(v, codes) for p, v in voices.items()}
    kl = (logs["float32"].exp() * (logs["float32"] - logs["int8"])).sum(1) / math.log(2)
    truth = codes[: kl.numel()].unsqueeze(1)
    print(f"{args.audio.name}, last {args.seconds:g} s, teacher-forced ({kl.numel():,} samples):")
    print(f"  KL(float32 || int8) per sample: mean {kl.mean():.5f}, 99th percentile "
          f"{kl.quantile(0.99):.5f}, largest {kl.max():.4f} bits")  # fmt: skip
    for p, lp in logs.items():
        print(f"  {p:8s} bits on the audio {float(-lp.gather(1, truth).mean() / math.log(2)):.4f}")

    samples = int(args.length * rate)
    # The takes' bits as `samplernn evaluate` scores a file: in training's sequences.
    chunk = checkpoint.train.chunk_length(checkpoint.model_config)
    sequence = checkpoint.progress.sequence_samples or round(
        checkpoint.train.sequence_seconds * rate
    )
    print(f"{args.takes} takes of {args.length:g} s each (seeds 1 to {args.takes}):")
    for p, voice in scripted.items():
        voice.set_sample_rate(rate)
        scores = []
        for seed in range(1, args.takes + 1):
            take = play_take(voice, seed, samples)
            take_codes = model.quantizer.encode(take)
            segment = Segment(0, 0, take_codes.numel())
            bits = evaluate_bits(model, [take_codes], [segment], sequence_length=sequence,
                                 chunk_length=chunk)  # fmt: skip
            assert bits is not None
            scores.append(score_take(seed, take.numpy(), rate, bits, None, checkpoint.reference))
        mean_bits = np.mean([s.bits for s in scores])
        traps = describe_traps(scores) or "none"
        print(f"  {p:8s} bits {mean_bits:.3f}  median distance {median_distance(scores):.2f}  "
              f"traps: {traps}")  # fmt: skip
        print(f"           distances {[round(s.distance, 2) for s in scores]}")
        print(f"           bits {[round(s.bits, 3) for s in scores]}")


if __name__ == "__main__":
    main()
