"""The model: the table form of the first MLP layer, causality, chunking and generation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes, prime_model
from samplernn_cli.generation.sampling import sample_from_logits
from samplernn_cli.generation.torch_sampler import TorchSampler
from samplernn_cli.model import SampleRNN, StepDraws, detach_state

VARIANTS = {
    "2-tier-lstm": ModelConfig(frame_sizes=(4,), rnn_layers=2, hidden_size=16, embed_size=3,
                               q_levels=16),
    "2-tier-gru": ModelConfig(frame_sizes=(4,), rnn_type="gru", rnn_layers=1, hidden_size=16,
                              embed_size=3, q_levels=16),
    "3-tier": ModelConfig(frame_sizes=(2, 4), rnn_layers=1, hidden_size=16, embed_size=3,
                          q_levels=16),
    "4-tier-gru": ModelConfig(frame_sizes=(2, 2, 2), rnn_type="gru", rnn_layers=1,
                              hidden_size=8, embed_size=2, q_levels=8),
    "skip-lstm": ModelConfig(frame_sizes=(4,), rnn_layers=3, hidden_size=8, embed_size=3,
                             q_levels=16, skip_connections=True),
    "skip-gru-3-tier": ModelConfig(frame_sizes=(2, 2), rnn_type="gru", rnn_layers=2,
                                   hidden_size=8, embed_size=3, q_levels=16,
                                   skip_connections=True),
    "weight-norm": ModelConfig(frame_sizes=(4,), rnn_layers=2, hidden_size=8, embed_size=3,
                               q_levels=16, weight_norm=True),
    "learned-h0-lstm": ModelConfig(frame_sizes=(2, 2), rnn_layers=2, hidden_size=8,
                                   embed_size=3, q_levels=16, learn_h0=True),
    "learned-h0-gru": ModelConfig(frame_sizes=(4,), rnn_type="gru", rnn_layers=1, hidden_size=8,
                                  embed_size=3, q_levels=16, learn_h0=True),
    "one-hot": ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=8, embed_size=0,
                           q_levels=16),
    "everything": ModelConfig(frame_sizes=(2, 2), rnn_type="gru", rnn_layers=2, hidden_size=8,
                              embed_size=0, q_levels=16, skip_connections=True,
                              weight_norm=True, learn_h0=True),
}  # fmt: skip
# The architectures without linear prediction (the frame tiers' history only), and one with
# a short predictor.
VARIANTS = {name: dataclasses.replace(config, linear_prediction=0)
            for name, config in VARIANTS.items()}  # fmt: skip
VARIANTS["linear-prediction"] = ModelConfig(
    frame_sizes=(2, 2), rnn_layers=1, hidden_size=8, embed_size=3, q_levels=16, linear_prediction=8
)


def build(config: ModelConfig, seed: int = 0) -> SampleRNN:
    torch.manual_seed(seed)
    return SampleRNN(config)


def random_window(model: SampleRNN, batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    length = frames * model.config.tier_frame_samples[-1]
    return torch.randint(0, model.config.q_levels, (batch, model.history + length),
                         generator=generator)  # fmt: skip


@pytest.mark.parametrize("name", VARIANTS)
def test_parameter_count_matches_the_model(name: str) -> None:
    config = VARIANTS[name]
    assert sum(p.numel() for p in build(config).parameters()) == config.parameter_count()


@pytest.mark.parametrize("name", ["2-tier-lstm", "one-hot", "weight-norm"])
def test_table_first_layer_equals_concatenated_embeddings_times_weight(name: str) -> None:
    """Same output and same gradients as the textbook formulation."""
    model = build(VARIANTS[name])
    tier = model.sample_tier
    previous = torch.randint(0, 16, (3, 10, tier.frame_size))
    upstream = torch.randn(3, 10, tier.input.out_features)
    parameters = [p for p in tier.parameters()]

    from_tables = tier.first_layer(previous, tier.input_tables())
    table_grads = torch.autograd.grad((from_tables * upstream).sum(), parameters, allow_unused=True)

    if tier.embedding is None:
        inputs = F.one_hot(previous, 16).float().flatten(-2)
    else:
        inputs = tier.embedding(previous).flatten(-2)
    naive = tier.input(inputs)
    naive_grads = torch.autograd.grad((naive * upstream).sum(), parameters, allow_unused=True)

    torch.testing.assert_close(from_tables, naive, rtol=1e-5, atol=1e-6)
    for got, want in zip(table_grads, naive_grads, strict=True):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_table_sum_backward_equals_embedding_bag_exactly() -> None:
    """The CPU kernel's table gradient is embedding_bag's (up to float summation order), for
    3-D codes and a non-contiguous upstream gradient, and the same on every call."""
    from samplernn_cli.model.tables import table_sum

    levels, positions, width = 8, 4, 5
    codes = torch.randint(0, levels, (3, 7, positions))
    tables = torch.randn(positions * levels, width, requires_grad=True)
    upstream = torch.randn(width, 3, 7).permute(1, 2, 0)  # (3, 7, width), not contiguous
    out = table_sum(codes, tables, levels)
    (got,) = torch.autograd.grad(out, tables, upstream)

    offsets = torch.arange(positions) * levels
    want_out = F.embedding_bag((codes + offsets).reshape(-1, positions), tables, mode="sum")
    (want,) = torch.autograd.grad(want_out, tables, upstream.reshape(-1, width))
    assert torch.equal(out.reshape(-1, width), want_out)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    (again,) = torch.autograd.grad(table_sum(codes, tables, levels), tables, upstream)
    assert torch.equal(again, got)
    with torch.no_grad():  # evaluation and generation take the plain path
        assert torch.equal(table_sum(codes, tables, levels).reshape(-1, width), want_out)


def test_learned_initial_state_is_used_and_trained() -> None:
    model = build(VARIANTS["learned-h0-lstm"])
    window = random_window(model, 2, 2)
    baseline, _ = model(window)
    with torch.no_grad():
        model.frame_tiers[0].h0.fill_(0.5)
    changed, _ = model(window)
    assert not torch.allclose(baseline, changed)
    changed.sum().backward()
    assert model.frame_tiers[0].h0.grad is not None
    assert model.frame_tiers[0].h0.grad.abs().sum() > 0


@pytest.mark.parametrize("name", VARIANTS)
def test_logits_are_causal(name: str) -> None:
    model = build(VARIANTS[name])
    window = random_window(model, 2, 3)
    logits, _ = model(window)
    cut = model.history + 7
    changed = window.clone()
    changed[:, cut:] = (changed[:, cut:] + 1) % model.config.q_levels
    logits_changed, _ = model(changed)
    # Targets up to and including position `cut` only see codes before `cut`.
    keep = cut - model.history + 1
    torch.testing.assert_close(logits[:, :keep], logits_changed[:, :keep])
    assert not torch.allclose(logits[:, keep:], logits_changed[:, keep:])


@pytest.mark.parametrize("name", VARIANTS)
def test_chunks_with_carried_state_equal_one_long_pass(name: str) -> None:
    model = build(VARIANTS[name])
    chunk = 2 * model.config.tier_frame_samples[-1]
    if model.config.linear_prediction:
        # The taps are fitted at each chunk's start and every block within it: chunks on the
        # block grid give the one pass's predictions (the presets' chunks all are).
        chunk = model.predictor.block
    window = random_window(model, 2, 3 * chunk // model.config.tier_frame_samples[-1])
    whole, _ = model(window)
    history = model.history
    parts, state = [], None
    for start in range(0, window.shape[1] - history, chunk):
        logits, state = model(window[:, start : start + history + chunk], state)
        state = detach_state(state)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_generation_step_matches_teacher_forced_forward(name: str) -> None:
    """The sample-by-sample generator computes exactly the training forward's logits."""
    model = build(VARIANTS[name]).eval()
    length = 5 * model.config.tier_frame_samples[-1]
    targets = torch.randint(0, model.config.q_levels, (3, length))
    seen = []

    def forced(t: int, logits: torch.Tensor) -> torch.Tensor:
        seen.append(logits)
        return targets[:, t]

    sampler = TorchSampler(model, [1.0] * 3)
    sampler.pick = forced
    codes = sampler.run(length).codes
    assert torch.equal(codes, targets)
    silence = torch.full((3, model.history), model.quantizer.zero_code)
    with torch.no_grad():
        expected, _ = model(torch.cat([silence, targets], dim=1))
    torch.testing.assert_close(torch.stack(seen, dim=1), expected, rtol=1e-5, atol=1e-5)


def test_generation_is_reproducible_and_temperature_sharpens() -> None:
    model = build(VARIANTS["2-tier-lstm"]).eval()

    def run(temperature: float, seed: int, count: int = 4) -> torch.Tensor:
        return generate_takes(model, count, 200, temperature=temperature, seed=seed).codes

    first, second = run(1.0, 7), run(1.0, 7)
    assert first.shape == (4, 200)
    assert torch.equal(first, second)
    assert not torch.equal(first, run(1.0, 8))
    # A clip depends on (seed, index) only, not on how many clips share the batch.
    assert torch.equal(run(1.0, 7, count=1)[0], first[0])
    later = generate_takes(model, 2, 200, temperature=1.0, seed=7, first_clip=2).codes
    assert torch.equal(later, first[2:])
    cold = run(0.05, 7)
    changes_cold = (cold[:, 1:] != cold[:, :-1]).float().mean()
    changes_warm = (first[:, 1:] != first[:, :-1]).float().mean()
    assert changes_cold < changes_warm


def test_generation_accepts_one_temperature_per_clip() -> None:
    model = build(VARIANTS["2-tier-lstm"]).eval()
    codes = generate_takes(model, 2, 30, temperature=[0.5, 1.5], seed=0).codes
    assert codes.shape == (2, 30)
    with pytest.raises(ValueError):
        generate_takes(model, 2, 30, temperature=[0.5])


def test_inverse_cdf_sampling_follows_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.1, 0.0, 0.6, 0.3]])).expand(40000, -1)
    uniforms = torch.rand(40000, generator=torch.Generator().manual_seed(0))
    codes = sample_from_logits(logits, torch.ones(40000, 1), uniforms)
    counts = torch.bincount(codes, minlength=4).float() / 40000
    torch.testing.assert_close(counts, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01, rtol=0)
    # Temperature 0.5 squares the probabilities (then renormalises).
    codes = sample_from_logits(logits, torch.full((40000, 1), 0.5), uniforms)
    counts = torch.bincount(codes, minlength=4).float() / 40000
    expected = torch.tensor([0.01, 0.0, 0.36, 0.09]) / 0.46
    torch.testing.assert_close(counts, expected, atol=0.01, rtol=0)


def test_priming_continues_the_state_of_a_teacher_forced_pass() -> None:
    """After a prime, the generated logits equal the teacher-forced logits there."""
    model = build(VARIANTS["3-tier"]).eval()
    prime = torch.randint(0, 16, (29,))  # not a multiple of the top frame (8)
    following = torch.randint(0, 16, (16,))
    seen = []

    def forced(t: int, logits: torch.Tensor) -> torch.Tensor:
        seen.append(logits)
        return following[t].expand(2)

    history, state = prime_model(model, prime, 2)
    sampler = TorchSampler(model, [1.0] * 2)
    sampler.pick = forced
    sampler.run(16, history=history, state=state)
    padding = torch.full((model.history + 3,), model.quantizer.zero_code)  # 29 + 3 = 32
    with torch.no_grad():
        expected, _ = model(torch.cat([padding, prime, following]).unsqueeze(0))
    got = torch.stack(seen, dim=1)
    for clip in range(2):
        torch.testing.assert_close(got[clip], expected[0, -16:], rtol=1e-5, atol=1e-5)


def test_loss_at_initialisation_is_near_uniform() -> None:
    model = build(VARIANTS["2-tier-lstm"])
    window = random_window(model, 4, 8)
    logits, _ = model(window)
    loss = F.cross_entropy(logits.reshape(-1, 16), window[:, model.history :].reshape(-1))
    assert abs(loss.item() - torch.log(torch.tensor(16.0)).item()) < 0.5


@pytest.mark.parametrize("name", ["2-tier-lstm", "3-tier", "one-hot", "everything"])
def test_training_step_matches_the_straightforward_formulation(name: str) -> None:
    """Loss and every gradient of the optimised step (table first layer, MLP in slices)
    equal those of the straightforward formulation on the same batch."""
    from samplernn_cli.model.reference import naive_loss
    from samplernn_cli.training.step import forward_backward

    model = build(VARIANTS[name])
    window = random_window(model, 3, 4)
    loss, _ = naive_loss(model, window)
    naive_grads = torch.autograd.grad(loss, list(model.parameters()))
    # One pass; slices of 5 and of 9 targets, rounded down to whole bottom-tier frames.
    for slice_floats in (10**9, 3 * model.config.hidden_size * 5, 3 * model.config.hidden_size * 9):
        model.zero_grad()
        bits, _ = forward_backward(model, window, None, slice_floats=slice_floats)
        assert bits == pytest.approx(loss.item() / math.log(2), rel=1e-5)
        for (param_name, param), want in zip(model.named_parameters(), naive_grads, strict=True):
            torch.testing.assert_close(param.grad, want, rtol=1e-4, atol=1e-6, msg=param_name)


def test_input_noise_changes_what_the_model_sees_not_what_it_predicts() -> None:
    """forward_backward(inputs=...) runs the model on the noisy copy and scores it against
    the window's own codes, in one pass or in slices."""
    from samplernn_cli.data.augment import jitter
    from samplernn_cli.training.step import forward_backward

    model = build(VARIANTS["2-tier-lstm"])
    window = random_window(model, 3, 4)
    noisy = jitter(window, 0.3, model.config.q_levels, seed=1, iteration=0)
    assert not torch.equal(noisy, window)
    logits, _ = model(noisy)
    levels = logits.shape[-1]
    want = F.cross_entropy(logits.reshape(-1, levels), window[:, model.history :].reshape(-1))
    for slice_floats in (10**9, 3 * model.config.hidden_size * 5):
        bits, _ = forward_backward(model, window, None, inputs=noisy, slice_floats=slice_floats)
        assert bits == pytest.approx(want.item() / math.log(2), rel=1e-5)
    same, _ = forward_backward(model, window, None, inputs=window)
    assert same == pytest.approx(forward_backward(model, window, None)[0], rel=1e-6)


@pytest.mark.parametrize("name", ["3-tier", "skip-lstm"])
def test_frame_dropout_acts_only_while_training(name: str) -> None:
    """set_dropout(p) drops the frame tiers' per-frame outputs in training mode (every tier,
    the masks drawn from the step's draws), and changes nothing in eval mode or at p = 0. A
    training pass with dropout and no draws is an error, not a silent fallback."""
    model = build(VARIANTS[name])
    window = random_window(model, 3, 4)
    everything = StepDraws(7, slice(None), 3)
    with torch.no_grad():
        plain = model(window)[0]
        model.set_dropout(0.5)
        first, second = model(window, None, everything)[0], model(window, None, everything)[0]
        assert not torch.allclose(first, plain) and torch.equal(first, second)
        with pytest.raises(ValueError, match="needs the step's draws"):
            model(window)
        model.eval()
        assert torch.equal(model(window)[0], plain)
        model.train()
        model.set_dropout(0.0)
        assert torch.equal(model(window)[0], plain)
    model.set_dropout(0.5)
    assert all(tier.dropout == 0.5 for tier in model.frame_tiers)  # every tier, not the bottom
    # The masks depend on the seed and the rows only: the processes of a distributed run,
    # each with its rows, drop what one process would.
    with torch.no_grad():
        parts = [model(window[rows], None, StepDraws(7, rows, 3))[0]
                 for rows in (slice(0, 1), slice(1, 3))]  # fmt: skip
        torch.testing.assert_close(torch.cat(parts), first)
        assert not torch.allclose(model(window, None, StepDraws(8, slice(None), 3))[0], first)


@pytest.mark.skipif(
    __import__("platform").libc_ver()[0] != "glibc", reason="the heap settings are glibc's"
)
def test_training_steps_reuse_heap_memory_instead_of_faulting_pages_in() -> None:
    """With keep_heap_memory (which every training session calls), repeated CPU training
    steps at the small preset's shapes take almost no page faults: each freed buffer is
    reused instead of being unmapped and faulted in (and zeroed) again on the next step."""
    import subprocess
    import sys

    script = """
import resource, torch
from samplernn_cli.config import ModelConfig
from samplernn_cli.device import keep_heap_memory
from samplernn_cli.model import SampleRNN
from samplernn_cli.training.step import forward_backward, make_optimizer
assert keep_heap_memory()
torch.manual_seed(0)
model = SampleRNN(ModelConfig(hidden_size=256, rnn_layers=1, frame_sizes=(16,), embed_size=64))
optimizer = make_optimizer(model, 1e-3)
window = torch.randint(0, 256, (16, model.history + 256))
def step():
    optimizer.zero_grad(set_to_none=True)
    forward_backward(model, window, None)
    optimizer.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    # Without the settings a step faults its buffers in anew, thousands of pages; with them
    # only a few hundred at most (benchmarks/process_settings.py counts both).
    assert float(result.stdout.strip().splitlines()[-1]) < 1000


def test_objects_are_frozen_for_the_collector_only_while_training() -> None:
    import gc

    from samplernn_cli.device import long_lived_objects_frozen

    before = gc.get_freeze_count()
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), long_lived_objects_frozen():
        raise RuntimeError("a failed run")
    assert gc.get_freeze_count() == 0
