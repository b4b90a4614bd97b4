"""Generation at int8 is the same model as at float32: the int8 sampler computes exactly its
rounded model, whose next-sample distributions differ from the trained model's by a KL
divergence far under a bound, and whose clips have the same spectral statistics within
their seed-to-seed spread."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.clip_stats import spectral_stats
from samplernn_cli.generation.engine import generate_takes, resolve_precision
from samplernn_cli.model.precision import divergence, rounded_copy

from .test_model import VARIANTS, build

# parent: a tiny model that has learned two tones (checkpoint, its training audio).
from .test_reuse import RATE, parent  # noqa: F401

# The bound on the mean KL divergence per sample, in bits: the extra cost of coding the
# model's own samples with the int8 distributions instead. A hundredth of a bit per sample
# is under 1 % of the 1 to 3.5 bits per sample the trained models spend on audio; measured
# on trained models (small and default size) it is 20 to 100 times smaller
# (benchmarks/precision.py, docs/performance.md#precision).
MAX_MEAN_KL_BITS = 0.01


# Every kind of large weight int8 rounds: LSTM layers (input and recurrent weights scaled
# together), GRU layers (apart), skip connections' output, weight normalisation.
@pytest.mark.parametrize("name", ["skip-lstm", "everything", "weight-norm"])
def test_the_int8_sampler_computes_the_rounded_model(name: str) -> None:
    model = build(VARIANTS[name]).eval()
    kwargs = {"temperature": [0.8, 1.0, 1.3], "seed": 2}
    compiled = generate_takes(model, 3, 200, implementation="numba", precision="int8", **kwargs)
    stepped = generate_takes(rounded_copy(model), 3, 200, implementation="torch", **kwargs)
    assert torch.equal(compiled.codes, stepped.codes)
    torch.testing.assert_close(compiled.bits_per_sample, stepped.bits_per_sample)
    # The PyTorch sampler at int8 is the same rounded model.
    on_torch = generate_takes(model, 3, 200, implementation="torch", precision="int8", **kwargs)
    assert torch.equal(on_torch.codes, stepped.codes)


def test_int8_distributions_are_the_trained_models(parent: tuple[Path, Path]) -> None:  # noqa: F811
    path, source = parent
    checkpoint = load_checkpoint(path)
    model = checkpoint.build_model()
    codes = model.quantizer.encode(torch.from_numpy(soundfile.read(source, dtype="float32")[0]))
    codes = torch.cat([torch.full((model.history,), model.quantizer.zero_code), codes])
    found = divergence(model, codes, checkpoint.train.chunk_length(checkpoint.model_config))
    assert 0 < float(found.kl_bits.mean()) < MAX_MEAN_KL_BITS
    assert abs(found.bits_int8 - found.bits_float32) < MAX_MEAN_KL_BITS
    # The model has learned something, so the check is not of a flat distribution.
    assert found.bits_float32 < 4.0


def test_int8_clips_sound_like_float32_clips(parent: tuple[Path, Path]) -> None:  # noqa: F811
    model = load_checkpoint(parent[0]).build_model()
    stats: dict[str, list[dict[str, float]]] = {}
    for precision in ("float32", "int8"):
        takes = generate_takes(model, 6, RATE, seed=11, precision=precision)
        audio = model.quantizer.decode(takes.codes)
        stats[precision] = [spectral_stats(clip.numpy(), RATE) for clip in audio]
    for key in ("flatness", "centroid_hz", "level_dbfs"):
        values = {p: [s[key] for s in rows] for p, rows in stats.items()}
        spread = max(statistics.stdev(v) for v in values.values())
        gap = abs(statistics.mean(values["int8"]) - statistics.mean(values["float32"]))
        assert gap <= 2 * spread, (key, values)


def test_auto_precision_is_int8_on_the_cpu_only() -> None:
    assert resolve_precision("auto", torch.device("cpu")) == "int8"
    assert resolve_precision("auto", torch.device("cuda")) == "float32"
    assert resolve_precision("float32", torch.device("cpu")) == "float32"
    with pytest.raises(ValueError):
        resolve_precision("int4", torch.device("cpu"))
