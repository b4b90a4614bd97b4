"""Linear, mu-law and a-law quantization of waveforms in [-1, 1] to integer codes.

All three share one uniform grid of ``levels`` codes over the (companded) range [-1, 1]:
code ``k`` stands for ``(k - levels // 2) * step`` with ``step = 2 / (levels - 1)``. So

* the waveform's zero is exactly the middle code ``levels // 2`` and decodes back to 0.0
  (a silent input is one code, not a flicker between two, and nothing adds DC);
* codes are rounded to the nearest level, never truncated, so no bin is twice as wide as
  its neighbours (the classic ``int(x * 127)`` bug makes the zero bin double width);
* every value in [-1, 1] comes back within half a step (in the companded domain for
  mu-law and a-law). With an odd number of levels the grid is symmetric from -1 to 1; with
  an even number (256) the lowest code sits half a step below -1, is reached only by -1.0
  itself, and decodes to -1.0.

mu-law uses mu = levels - 1 (255 for the standard 8-bit curve); a-law uses A = 87.6 at any
number of levels. The companding curves are written out here rather than taken from
``torchaudio.functional.mu_law_encoding``, whose grid has no level at zero
(``decode(encode(0)) != 0``) and which offers no a-law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.config.rules import rule

A_LAW_A = 87.6


@dataclass(frozen=True)
class Quantizer:
    """Maps float waveforms to ``q_levels`` integer codes and back."""

    kind: str = "linear"
    q_levels: int = 256

    def __post_init__(self) -> None:
        # The model's own rules for its quantizer settings.
        rule(ModelConfig, "quantizer").check(self.kind)
        rule(ModelConfig, "q_levels").check(self.q_levels)

    @property
    def step(self) -> float:
        """Distance between neighbouring levels in the (companded) range [-1, 1]."""
        return 2.0 / (self.q_levels - 1)

    @property
    def zero_code(self) -> int:
        """The code of silence: the middle level."""
        return self.q_levels // 2

    def compand(self, x: torch.Tensor) -> torch.Tensor:
        """The companding curve, [-1, 1] -> [-1, 1] (identity for linear)."""
        return self._curve(x, inverse=False)

    def expand(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`compand`."""
        return self._curve(y, inverse=True)

    def _curve(self, x: torch.Tensor, *, inverse: bool) -> torch.Tensor:
        """The companding curve or its inverse, applied to the magnitude (both are odd)."""
        if self.kind == "linear":
            return x
        magnitude = x.abs()
        if self.kind == "mu-law":
            mu = self.q_levels - 1
            if inverse:
                curved = torch.expm1(magnitude * math.log1p(mu)) / mu
            else:
                curved = torch.log1p(mu * magnitude) / math.log1p(mu)
            return torch.sign(x) * curved
        # a-law: linear below 1/A (below 1/(1 + ln A) when companded), logarithmic above.
        denominator = 1.0 + math.log(A_LAW_A)
        if inverse:
            small = magnitude * denominator / A_LAW_A
            large = torch.exp(magnitude * denominator - 1.0) / A_LAW_A
            knee = 1.0 / denominator
        else:
            small = A_LAW_A * magnitude / denominator
            large = (1.0 + torch.log((A_LAW_A * magnitude).clamp_min(1.0))) / denominator
            knee = 1.0 / A_LAW_A
        return torch.sign(x) * torch.where(magnitude < knee, small, large)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Float waveform (any shape) -> int64 codes in [0, levels); clamps to [-1, 1] first."""
        y = self.compand(x.float().clamp(-1.0, 1.0))
        # Multiply by the exact half-width instead of dividing by the inexact step, so the
        # grid's own points land on integers.
        codes = torch.round(y * ((self.q_levels - 1) / 2.0)).long() + self.zero_code
        return codes.clamp_(0, self.q_levels - 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer codes (any shape) -> float32 waveform in [-1, 1]."""
        y = (codes.long() - self.zero_code).float() * (2.0 / (self.q_levels - 1))
        # Clamp twice: the lowest level of an even count sits below -1, and exp/log round-off
        # can push the expanded extremes a hair past full scale.
        return self.expand(y.clamp_(-1.0, 1.0)).clamp_(-1.0, 1.0)

    def scale_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> floats in [-2, 2] for the frame tiers, independent of loudness.

        The paper's input scaling, linear in the code index whatever the quantizer, with
        silence (the middle code) at exactly 0.
        """
        return (codes - self.zero_code).float() * (4.0 / (self.q_levels - 1))


def quantization_report(x: torch.Tensor, quantizer: Quantizer) -> tuple[torch.Tensor, dict]:
    """Quantize and dequantize a waveform and measure what that did.

    Args:
        x: (T,) float waveform as training would see it (after mixing, resampling and
            normalisation).

    Returns:
        The dequantized waveform (T,) and a dict: ``snr_db`` (signal to quantization noise,
        noise = dequantized - x, clipping included), ``levels_used`` / ``levels_available``,
        ``entropy_bits`` (of the code histogram: the bits per sample a model that ignores
        context would need), ``silence_fraction`` (share of samples at the silence code),
        ``clipped_fraction`` (share of samples beyond full scale), ``dc_offset``, ``peak_dbfs``
        and ``rms_dbfs`` of the dequantized waveform.
    """
    codes = quantizer.encode(x)
    y = quantizer.decode(codes)
    x64, y64 = x.double(), y.double()
    signal = float((x64**2).sum())
    noise = float(((y64 - x64) ** 2).sum())
    counts = torch.bincount(codes, minlength=quantizer.q_levels).double()
    used = counts[counts > 0] / counts.sum()
    peak = float(y64.abs().max()) if y.numel() else 0.0
    rms = float(y64.pow(2).mean().sqrt()) if y.numel() else 0.0

    def dbfs(value: float) -> float | None:
        return 20 * math.log10(value) if value > 0 else None

    report = {
        "snr_db": 10 * math.log10(signal / noise) if noise > 0 and signal > 0 else None,
        "levels_used": int((counts > 0).sum()),
        "levels_available": quantizer.q_levels,
        "entropy_bits": float(-(used * used.log2()).sum()),
        "silence_fraction": float((codes == quantizer.zero_code).double().mean()),
        "clipped_fraction": float((x.abs() > 1.0).double().mean()),
        "dc_offset": float(y64.mean()),
        "peak_dbfs": dbfs(peak),
        "rms_dbfs": dbfs(rms),
    }
    return y, report
