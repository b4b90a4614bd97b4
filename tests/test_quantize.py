"""Property tests of the quantizers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samplernn_cli.errors import ConfigError
from samplernn_cli.quantize import Quantizer

KINDS = ["linear", "mu-law", "a-law"]
levels_strategy = st.sampled_from([3, 4, 5, 16, 255, 256, 257, 1024, 65536])
waveforms = st.lists(
    st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, width=32), min_size=1, max_size=64
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("levels", [3, 4, 256, 257, 65536])
def test_zero_is_the_middle_level_and_decodes_to_zero(kind: str, levels: int) -> None:
    quantizer = Quantizer(kind, levels)
    assert quantizer.zero_code == levels // 2
    assert quantizer.encode(torch.zeros(3)).tolist() == [levels // 2] * 3
    assert quantizer.decode(torch.tensor([levels // 2])).item() == 0.0
    assert quantizer.scale_codes(torch.tensor([levels // 2])).item() == 0.0


@settings(max_examples=200, deadline=None)
@given(levels=levels_strategy, values=waveforms)
def test_linear_round_trip_within_half_a_step(levels: int, values: list[float]) -> None:
    quantizer = Quantizer("linear", levels)
    x = torch.tensor(values, dtype=torch.float32)
    error = (quantizer.decode(quantizer.encode(x)) - x).abs().max().item()
    assert error <= quantizer.step / 2 + 1e-6


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["mu-law", "a-law"]), levels=levels_strategy, values=waveforms)
def test_companded_round_trip_within_half_a_step_of_the_curve(
    kind: str, levels: int, values: list[float]
) -> None:
    quantizer = Quantizer(kind, levels)
    x = torch.tensor(values, dtype=torch.float32)
    y = quantizer.compand(x)
    y_back = quantizer.compand(quantizer.decode(quantizer.encode(x)))
    assert (y_back - y).abs().max().item() <= quantizer.step / 2 + 1e-5


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(KINDS), levels=levels_strategy, values=waveforms)
def test_encoding_is_monotonic_and_in_range(kind: str, levels: int, values: list[float]) -> None:
    quantizer = Quantizer(kind, levels)
    x = torch.tensor(sorted(values), dtype=torch.float32)
    codes = quantizer.encode(x)
    assert codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < levels
    assert torch.all(codes[1:] >= codes[:-1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("levels", [3, 16, 255, 256])
def test_every_level_is_a_fixed_point_and_odd_symmetric(kind: str, levels: int) -> None:
    quantizer = Quantizer(kind, levels)
    codes = torch.arange(levels)
    decoded = quantizer.decode(codes)
    assert torch.equal(quantizer.encode(decoded), codes)
    assert torch.all(decoded[1:] > decoded[:-1])
    assert decoded.min() >= -1.0 and decoded.max() <= 1.0
    # Levels mirror around the middle one (the lowest level of an even count has no mirror).
    zero = quantizer.zero_code
    for k in range(1, levels - zero):
        assert decoded[zero + k].item() == pytest.approx(-decoded[zero - k].item(), abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_no_double_width_zero_bin(kind: str) -> None:
    """Bins next to zero are as wide as the zero bin (truncation would double it)."""
    quantizer = Quantizer(kind, 256)
    x = torch.linspace(-0.05, 0.05, 200_001)
    codes = quantizer.encode(x)
    widths = {}
    for code in (quantizer.zero_code - 1, quantizer.zero_code, quantizer.zero_code + 1):
        members = x[codes == code]
        widths[code] = (members.max() - members.min()).item()
    zero_width = widths[quantizer.zero_code]
    for code, width in widths.items():
        assert width == pytest.approx(zero_width, rel=0.05), (code, widths)


def test_mu_law_matches_the_standard_curve_at_256_levels() -> None:
    quantizer = Quantizer("mu-law", 256)
    x = torch.tensor([0.5])
    expected = torch.log1p(255 * x) / torch.log1p(torch.tensor(255.0))
    assert quantizer.compand(x).item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_law_curve_is_continuous_at_the_knee() -> None:
    quantizer = Quantizer("a-law", 256)
    knee = 1 / 87.6
    below, above = quantizer.compand(torch.tensor([knee * (1 - 1e-6), knee * (1 + 1e-6)]))
    assert below.item() == pytest.approx(above.item(), abs=1e-5)
    assert quantizer.compand(torch.tensor([1.0])).item() == pytest.approx(1.0)


def test_encode_clamps_out_of_range_values() -> None:
    quantizer = Quantizer("linear", 256)
    assert quantizer.encode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


@pytest.mark.parametrize(("kind", "levels"), [("linear", 2), ("linear", 70000), ("ulaw", 256)])
def test_invalid_quantizers_are_refused(kind: str, levels: int) -> None:
    with pytest.raises(ConfigError):
        Quantizer(kind, levels)
