"""The Numba sampler draws what the PyTorch sampler draws, sample for sample."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from samplernn_cli.generation import kernels, numba_sampler
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.numba_sampler import NumbaSampler
from samplernn_cli.model.precision import PRECISIONS

from .test_model import VARIANTS, build


def compiled_mlp(
    sampler: NumbaSampler, previous: np.ndarray, conditioning: np.ndarray
) -> np.ndarray:
    """The sample tier for one step as the compiled kernel computes it, from the weights the
    sampler prepared: (count, FS) codes and (count, H) conditioning -> (count, levels)."""
    tables, offsets = sampler.mlp[:2]
    hidden, hidden2, output = sampler.layers
    x = tables[previous + offsets].sum(axis=1) + conditioning
    np.maximum(x, 0.0, out=x)
    h1 = np.empty_like(x)
    kernels.affine_blocked(x, hidden.weight, hidden.scale, hidden.bias, h1)
    np.maximum(h1, 0.0, out=h1)
    h2 = np.empty_like(x)
    kernels.affine_blocked(h1, hidden2.weight, hidden2.scale, hidden2.bias, h2)
    np.maximum(h2, 0.0, out=h2)
    logits = np.empty((x.shape[0], sampler.levels), dtype=np.float32)
    kernels.affine_blocked(h2, output.weight, output.scale, output.bias, logits)
    return logits


@pytest.mark.parametrize("name", VARIANTS)
def test_logits_agree_with_the_pytorch_mlp(name: str) -> None:
    model = build(VARIANTS[name]).eval()
    tier = model.sample_tier
    sampler = NumbaSampler(model, [1.0, 1.0, 1.0])
    generator = torch.Generator().manual_seed(0)
    previous = torch.randint(0, tier.q_levels, (3, tier.frame_size), generator=generator)
    conditioning = torch.randn(3, tier.input.out_features, generator=generator)
    with torch.no_grad():
        expected = tier.head(tier.first_layer(previous, tier.input_tables()) + conditioning)
    got = compiled_mlp(sampler, previous.numpy(), conditioning.numpy())
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_same_seed_same_samples_as_the_pytorch_sampler(name: str) -> None:
    model = build(VARIANTS[name]).eval()
    kwargs = {"temperature": [0.7, 1.0, 1.4], "seed": 3}
    compiled = generate_takes(model, 3, 300, implementation="numba", **kwargs).codes
    stepped = generate_takes(model, 3, 300, implementation="torch", **kwargs).codes
    assert torch.equal(compiled, stepped)


def test_priming_and_statistics_agree_on_long_runs() -> None:
    model = build(VARIANTS["3-tier"]).eval()
    prime = torch.randint(0, 16, (37,))
    compiled = generate_takes(model, 4, 2000, seed=5, prime=prime, implementation="numba").codes
    stepped = generate_takes(model, 4, 2000, seed=5, prime=prime, implementation="torch").codes
    # Rare float ties may let the streams part; the distributions must still agree.
    same = (compiled == stepped).float().mean().item()
    assert same > 0.99
    histogram_numba = torch.bincount(compiled.flatten(), minlength=16).float() / compiled.numel()
    histogram_torch = torch.bincount(stepped.flatten(), minlength=16).float() / stepped.numel()
    assert (histogram_numba - histogram_torch).abs().max() < 0.01


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("rows", [1, 3, 5, 30])
@pytest.mark.parametrize("inner,outputs", [(16, 8), (300, 1030), (512, 4096)])
def test_every_product_agrees_with_numpy(
    precision: str, rows: int, inner: int, outputs: int
) -> None:
    # Covers BLAS (many rows) and both compiled kernels, serial and split between threads
    # (rows * outputs * inner above numba_sampler.PARALLEL_MACS), with outputs not a multiple
    # of 4, for float32 and int8 weights.
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, inner), dtype=np.float32)
    layer = numba_sampler.Linear(
        rng.standard_normal((outputs, inner), dtype=np.float32),
        rng.standard_normal(outputs, dtype=np.float32),
        precision,
    )
    expected = x.astype(np.float64) @ layer.dense.T.astype(np.float64) + layer.bias
    parts = (layer.weight, layer.scale, layer.bias)
    products = {
        "chosen": layer,
        "row by row": lambda x, out: kernels.affine(x, *parts, out),
        "row by row, threads": lambda x, out: kernels.affine_parallel(x, *parts, out, 2),
        "blocked": lambda x, out: kernels.affine_blocked(x, *parts, out),
        "blocked, threads": lambda x, out: kernels.affine_parallel(x, *parts, out, 2, True),
    }
    for name, product in products.items():
        out = np.full((rows, outputs), np.nan, dtype=np.float32)
        product(x, out)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3, err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_clip_groups_do_not_change_the_samples(threads: int) -> None:
    # All clips in one group (one thread) or split into groups over several threads must
    # draw exactly what the PyTorch sampler draws.
    import numba

    # The sampler runs on torch's thread count (at most numba's pool).
    before = torch.get_num_threads()
    torch.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        model = build(VARIANTS["3-tier"]).eval()
        kwargs = {"temperature": [0.7, 1.0, 1.4, 1.0, 0.9], "seed": 4}
        compiled = generate_takes(model, 5, 200, implementation="numba", **kwargs).codes
        assert numba.get_num_threads() == min(threads, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(before)
    stepped = generate_takes(model, 5, 200, implementation="torch", **kwargs).codes
    assert torch.equal(compiled, stepped)


@pytest.mark.parametrize("split", [False, True])
def test_one_clip_on_one_thread_or_split_between_threads(
    split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fewer clips than threads: the layers are split between the threads only where they are
    # large (never for this tiny model, unless the threshold is lowered to nothing); either
    # way the samples are the PyTorch sampler's.
    import numba

    calls: list[bool] = []
    sample_steps = kernels.sample_steps

    def recorded(*args: object) -> None:
        calls.append(bool(args[-1]))
        sample_steps(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(kernels, "sample_steps", recorded)
    if split:
        monkeypatch.setattr(numba_sampler, "SPLIT_MACS", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        model = build(VARIANTS["3-tier"]).eval()
        compiled = generate_takes(model, 1, 200, implementation="numba", seed=3).codes
    finally:
        torch.set_num_threads(before)
    stepped = generate_takes(model, 1, 200, implementation="torch", seed=3).codes
    assert torch.equal(compiled, stepped)
    assert calls and set(calls) == {split}


THREADS_AFTER_NUMBA = """
import numba, torch
from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN
from samplernn_cli.model.tables import table_sum

assert torch.get_num_threads() == 1
tables = torch.randn(4 * 32, 16, requires_grad=True)  # a training step's table gradient
table_sum(torch.randint(0, 32, (64, 4)), tables, 32).sum().backward()
assert torch.get_num_threads() == 1, ("after the table gradient", torch.get_num_threads())
config = ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=16, embed_size=4, q_levels=32)
generate_takes(SampleRNN(config).eval(), 2, 64, seed=1, implementation="numba")
threads = (torch.get_num_threads(), numba.get_num_threads())
assert threads == (1, 1), ("after the compiled sampler", threads)
print("one thread")
"""


def test_a_run_limited_to_one_thread_stays_on_one_when_numba_starts() -> None:
    # Numba's OpenMP layer, starting its pool of two, sets the process's OpenMP threads to
    # two, torch's included; a run given one thread (two runs side by side) must keep one.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", THREADS_AFTER_NUMBA], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and "one thread" in done.stdout, done.stderr
