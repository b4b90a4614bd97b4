"""The fast sampler: the same distribution as :func:`generate.autoregress`, with less work per
sample.

What makes it fast (measured in ``benchmarks/generation.py``):

* every weight is resolved once (weight norm applied, the MLP's first layer turned into
  per-position tables) and laid out for ``x @ W``, so a sample costs a gather of
  ``frame_size`` table rows and three small matrix products;
* the per-sample loop runs on NumPy arrays, preallocated and reused: on the CPU a NumPy call
  costs about a microsecond, a PyTorch operator several, and at small model sizes the per-call
  cost is most of the work (hand-written here because no library fuses an autoregressive
  loop; the frame tiers still run in PyTorch, once per frame);
* all clips of a batch share every weight read, so several clips cost little more than one;
* sampling is one pass: exponentiate, cumulative sum, and count the levels below the clip's
  uniform draw (inverse-CDF sampling, the same draws as the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn.utils import parametrize

from samplernn_cli.model import ModelState, SampleRNN


class FastSampler:
    """Generates ``count`` clips at once on the CPU."""

    def __init__(self, model: SampleRNN, count: int, temperatures: Sequence[float]) -> None:
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("FastSampler runs on the CPU")
        if len(temperatures) != count:
            raise ValueError(f"{len(temperatures)} temperatures for {count} clips")
        self.model = model
        self.count = count
        tier = model.sample_tier
        self.frame_size = tier.frame_size
        self.levels = tier.q_levels
        with torch.no_grad(), parametrize.cached():
            # (FS * Q, H): row p * Q + c is the first layer's output for code c at position p.
            self.tables = tier.input_tables().detach().numpy().copy()
            self.hidden = [
                (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())
                for layer in tier.hidden
            ]
            self.output = (
                tier.output.weight.detach().numpy().T.copy(),
                tier.output.bias.detach().numpy().copy(),
            )
        self.offsets = (np.arange(self.frame_size) * self.levels).astype(np.int64)
        self.inverse_temperature = (1.0 / np.asarray(temperatures, dtype=np.float32))[:, None]
        hidden = self.tables.shape[1]
        # Buffers reused for every sample.
        self._x = np.empty((count, hidden), dtype=np.float32)
        self._h1 = np.empty((count, hidden), dtype=np.float32)
        self._h2 = np.empty((count, hidden), dtype=np.float32)
        self._logits = np.empty((count, self.levels), dtype=np.float32)

    def mlp(self, previous: np.ndarray, conditioning: np.ndarray) -> np.ndarray:
        """The sample tier for one step: (count, FS) codes and (count, H) conditioning ->
        (count, levels) logits (a buffer, overwritten by the next call)."""
        x, h1, h2, logits = self._x, self._h1, self._h2, self._logits
        (w1, b1), (w2, b2) = self.hidden
        wo, bo = self.output
        np.sum(self.tables[previous + self.offsets], axis=1, out=x)
        x += conditioning
        np.maximum(x, 0.0, out=x)
        np.matmul(x, w1, out=h1)
        h1 += b1
        np.maximum(h1, 0.0, out=h1)
        np.matmul(h1, w2, out=h2)
        h2 += b2
        np.maximum(h2, 0.0, out=h2)
        np.matmul(h2, wo, out=logits)
        logits += bo
        return logits

    @torch.no_grad()
    def run(
        self,
        num_samples: int,
        uniforms: Callable[[int], np.ndarray],
        *,
        history: torch.Tensor | None = None,
        state: ModelState | None = None,
        progress: Callable[[int, int], bool | None] | None = None,
    ) -> torch.Tensor:
        """Generate ``num_samples`` per clip.

        Args:
            uniforms: ``uniforms(block)`` returns (count, block) float32 draws in [0, 1) for
                the next ``block`` samples (called once per top-tier frame).
            history: (count, model.history) codes before the first sample (default: silence).
            state: the frame tiers' state at that point (default: reset).
            progress: called with (done, total) once per top-tier frame; True stops
                (:class:`generate.GenerationStopped`).

        Returns:
            (count, num_samples) int64 codes.
        """
        from samplernn_cli.generate import GenerationStopped

        model = self.model
        tiers = model.frame_tiers
        frames = [tier.frame_samples for tier in tiers]
        top = frames[-1]
        context = model.history
        total = -(-num_samples // top) * top
        count, frame_size, levels = self.count, self.frame_size, self.levels
        codes = np.full((count, context + total), model.quantizer.zero_code, dtype=np.int64)
        if history is not None:
            codes[:, :context] = history.cpu().numpy()
        codes_torch = torch.from_numpy(codes)  # shares memory with `codes`
        state = list(state) if state is not None else model.initial_state()
        conditioning: list[torch.Tensor] = [torch.empty(0)] * len(tiers)
        bottom = np.empty(0, dtype=np.float32)

        inverse_temperature = self.inverse_temperature
        peak = np.empty((count, 1), dtype=np.float32)
        cdf = np.empty((count, levels), dtype=np.float32)
        below = np.empty((count, levels), dtype=bool)
        draws = np.empty((count, top), dtype=np.float32)
        rows = np.arange(count)

        with parametrize.cached():
            for frame_start in range(0, total, top):
                if progress is not None and progress(frame_start, total):
                    raise GenerationStopped
                draws[:] = uniforms(top)
                for t in range(frame_start, frame_start + top):
                    position = context + t
                    for k in reversed(range(len(tiers))):
                        size = frames[k]
                        if t % size:
                            continue
                        frame = model.quantizer.scale_codes(
                            codes_torch[:, position - size : position]
                        )
                        above = None
                        if k + 1 < len(tiers):
                            ratio = tiers[k + 1].ratio
                            above = conditioning[k + 1][:, (t // size) % ratio].unsqueeze(1)
                        conditioning[k], state[k] = tiers[k](frame.unsqueeze(1), above, state[k])
                        if k == 0:
                            bottom = conditioning[0].numpy()  # (count, frame_size, H)
                    previous = codes[:, position - frame_size : position]
                    logits = self.mlp(previous, bottom[:, t % frame_size])
                    # Inverse-CDF sampling of softmax(logits / temperature).
                    logits *= inverse_temperature
                    np.max(logits, axis=1, keepdims=True, out=peak)
                    logits -= peak
                    np.exp(logits, out=logits)
                    np.cumsum(logits, axis=1, out=cdf)
                    target = draws[:, t - frame_start] * cdf[:, -1]
                    np.less_equal(cdf, target[:, None], out=below)
                    chosen = below.sum(axis=1)
                    np.minimum(chosen, levels - 1, out=chosen)
                    codes[rows, position] = chosen
        if progress is not None:
            progress(total, total)
        return torch.from_numpy(codes[:, context : context + num_samples].copy())
