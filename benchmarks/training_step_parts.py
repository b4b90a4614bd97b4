"""What the hand-written parts of the CPU training step save, each against what it replaces.

At the small preset's shapes (LSTM 1x256, frame 16, embed 64, 256 levels, batch 16 x 256
targets: 4096 targets a step), in this process, in alternating rounds:

* table gradient (`samplernn_cli.model.tables`): the backward pass of the first layer's
  table sums, as `embedding_bag`'s own backward pass, and as the Numba kernel on one thread
  and on PyTorch's threads;
* MLP and loss (`samplernn_cli.model.head_loss`): forward and backward through autograd
  (`head_loss` with `fused=False`) and as the fused node; with `--compile`, also that under
  `torch.compile`;
* the whole step (`training.step.forward_backward`, gradient clipping, fused Adam) as
  `samplernn train` runs it, and with each part swapped for what it replaces.

Prints the median over the rounds of each call's time in milliseconds, and its ratio to the
form `samplernn train` runs. Run from the repository root:

    python benchmarks/training_step_parts.py
    python benchmarks/training_step_parts.py --rounds 15 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from unittest import mock

import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.model import SampleRNN, network, tables
from samplernn_cli.model.head_loss import head_loss
from samplernn_cli.training import step
from samplernn_cli.training.step import forward_backward, make_optimizer

SMALL = ModelConfig(hidden_size=256, rnn_layers=1, embed_size=64)
BATCH, TARGETS = 16, 256
# The sample MLP and its loss through autograd, as every other device runs them.
PLAIN_HEAD_LOSS = functools.partial(head_loss, fused=False)

# One call of a candidate: returns the seconds of the part it times (setup excluded).
Candidate = Callable[[], float]


def alternate(candidates: dict[str, Candidate], rounds: int, repeats: int) -> dict[str, float]:
    """The median over ``rounds`` of each candidate's mean time over ``repeats`` calls, the
    candidates taking turns within each round, so a drift in the machine's speed meets all
    of them alike."""
    for candidate in candidates.values():  # warm-up: first-call allocations, compilation
        candidate()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, candidate in candidates.items():
            times[name].append(sum(candidate() for _ in range(repeats)) / repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, results: dict[str, float], shipped: str) -> None:
    print(f"{title}:")
    for name, seconds in results.items():
        ratio = seconds / results[shipped]
        mark = "  <- samplernn train" if name == shipped else ""
        print(f"  {name:38} {seconds * 1e3:8.2f} ms {ratio:6.2f}x{mark}", flush=True)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embedding_bag_sum(codes: torch.Tensor, table: torch.Tensor, levels: int) -> torch.Tensor:
    """``tables.table_sum`` with ``embedding_bag``'s own backward pass, as on other devices."""
    flat = codes.reshape(-1, codes.shape[-1])
    return tables._gather_sum(flat, table, levels).view(*codes.shape[:-1], table.shape[1])


def table_gradient(model: SampleRNN, rounds: int, repeats: int) -> None:
    tier = model.sample_tier
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, tier.q_levels, (BATCH * TARGETS, tier.frame_size), generator=generator)
    table = tier.input_tables().detach()
    upstream = torch.randn(BATCH * TARGETS, table.shape[1], generator=generator)

    def backward(first_layer: Callable[..., torch.Tensor], threads: int) -> Candidate:
        def call() -> float:
            leaf = table.clone().requires_grad_()
            out = first_layer(codes, leaf, tier.q_levels)
            with torch_threads(threads):
                started = time.perf_counter()
                out.backward(upstream)
                return time.perf_counter() - started

        return call

    threads = torch.get_num_threads()
    results = alternate(
        {
            "embedding_bag's backward pass": backward(embedding_bag_sum, threads),
            "Numba kernel, 1 thread": backward(tables.table_sum, 1),
            f"Numba kernel, {threads} threads": backward(tables.table_sum, threads),
        },
        rounds,
        repeats,
    )
    report("table gradient (backward pass only)", results, f"Numba kernel, {threads} threads")


def mlp_and_loss(model: SampleRNN, rounds: int, repeats: int, compiled: bool) -> None:
    tier = model.sample_tier
    hidden = tier.input.out_features
    generator = torch.Generator().manual_seed(1)
    summed = torch.randn(BATCH * TARGETS, hidden, generator=generator)
    conditioning = torch.randn(BATCH * TARGETS, hidden, generator=generator)
    targets = torch.randint(0, tier.q_levels, (BATCH * TARGETS,), generator=generator)
    scale = 1.0 / targets.numel()

    def forward_and_backward(loss_of: Callable[..., torch.Tensor]) -> Candidate:
        def call() -> float:
            tier.zero_grad(set_to_none=True)
            first = summed.clone().requires_grad_()
            above = conditioning.clone().requires_grad_()
            started = time.perf_counter()
            loss_of(tier, first, above, targets, scale).backward()
            return time.perf_counter() - started

        return call

    candidates = {
        "autograd (fused=False)": forward_and_backward(PLAIN_HEAD_LOSS),
        "fused node (head_loss)": forward_and_backward(head_loss),
    }
    if compiled:
        candidates["torch.compile(fused=False)"] = forward_and_backward(
            torch.compile(PLAIN_HEAD_LOSS)
        )
    results = alternate(candidates, rounds, repeats)
    report("MLP and loss (forward and backward)", results, "fused node (head_loss)")


def whole_step(model: SampleRNN, rounds: int, repeats: int, compiled: bool) -> None:
    optimizer = make_optimizer(model, 1e-3)
    generator = torch.Generator().manual_seed(2)
    window = torch.randint(0, SMALL.q_levels, (BATCH, model.history + TARGETS),
                           generator=generator)  # fmt: skip

    def training_step(*swaps: contextlib.AbstractContextManager) -> Candidate:
        def call() -> float:
            with contextlib.ExitStack() as stack:
                for swap in swaps:
                    stack.enter_context(swap)
                started = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                forward_backward(model, window, None)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                return time.perf_counter() - started

        return call

    def embedding_bag() -> contextlib.AbstractContextManager:
        return mock.patch.object(network, "table_sum", embedding_bag_sum)

    def one_thread() -> contextlib.AbstractContextManager:
        # The kernel's backward pass sets Numba's thread count on every call.
        set_threads = tables.set_num_threads
        return mock.patch.object(tables, "set_num_threads", lambda _: set_threads(1))

    def plain_loss() -> contextlib.AbstractContextManager:
        return mock.patch.object(step, "head_loss", PLAIN_HEAD_LOSS)

    candidates = {
        "as samplernn train runs it": training_step(),
        "with embedding_bag's backward pass": training_step(embedding_bag()),
        "with the table gradient on 1 thread": training_step(one_thread()),
        "with autograd's MLP and loss": training_step(plain_loss()),
        "with both replaced": training_step(embedding_bag(), plain_loss()),
    }
    if compiled:
        candidates["with torch.compile's MLP and loss"] = training_step(
            mock.patch.object(step, "head_loss", torch.compile(PLAIN_HEAD_LOSS))
        )
    results = alternate(candidates, rounds, repeats)
    report("whole training step", results, "as samplernn train runs it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5, help="calls per candidate per round")
    parser.add_argument("--compile", action="store_true",
                        help="also time the MLP and loss under torch.compile")  # fmt: skip
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.rounds} rounds of "
          f"{args.repeats} calls each")  # fmt: skip
    torch.manual_seed(0)
    model = SampleRNN(SMALL)
    table_gradient(model, args.rounds, args.repeats)
    mlp_and_loss(model, args.rounds, args.repeats, args.compile)
    whole_step(model, args.rounds, args.repeats, args.compile)


if __name__ == "__main__":
    main()
