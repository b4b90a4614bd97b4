"""The live voice (samplernn export --format nn): nn~'s contract, bitwise continuity across
buffer cuts, resets, threads, rates, and that it plays the model's own distribution."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.quiet import QuietGuard
from samplernn_cli.model import SampleRNN
from samplernn_cli.voice.build import build_voice, script_voice, time_voice
from samplernn_cli.voice.module import SampleTierVoice, interpolation_filter
from samplernn_cli.voice.tiers import Float32Layer, Int8Layer

from .conftest import RATE, SAMPLERNN, TINY_MODEL, tone_mix, train_tiny

HOST_SOURCE = Path(__file__).parent.parent / "samplernn_cli" / "voice" / "host"

# What nn~'s backend reads, checked in a fresh process from the file alone.
CONTRACT = """
import sys, torch
voice = torch.jit.load(sys.argv[1])
assert voice.get_methods() == ["forward"], voice.get_methods()
params = voice.forward_params
assert params.dtype == torch.int64 and params.tolist() == [2, 1, 1, 1], params
assert all(isinstance(s, str) for s in voice.forward_input_labels + voice.forward_output_labels)
attributes = voice.get_attributes()
assert attributes == ["temperature", "seed", "gain", "reset", "listen", "quiet_boost"], attributes
types = {a: getattr(voice, a + "_params").tolist() for a in attributes}
assert types == {"temperature": [2], "seed": [1], "gain": [2], "reset": [0], "listen": [0],
                 "quiet_boost": [2]}
for a in attributes:
    assert isinstance(getattr(voice, "get_" + a)(), list)
# nn~ parses "0.500000" with stof and passes a float; ints with stoi, bools "0"/"1"/"true".
assert voice.set_temperature(float("0.500000")) == 0 and voice.get_temperature() == [0.5]
assert voice.set_temperature(float("-1")) == -1 and voice.get_temperature() == [0.5]
assert voice.set_seed(int("7")) == 0 and voice.get_seed() == [7]
assert voice.set_seed(-3) == -1
assert voice.set_gain(float("0.250000")) == 0 and voice.set_gain(float("nan")) == -1
assert voice.set_reset(True) == 0 and voice.set_reset(False) == 0
assert voice.get_quiet_boost() == [1.2]  # generate's default, for a checkpoint with a level
assert voice.set_quiet_boost(float("1.500000")) == 0 and voice.get_quiet_boost() == [1.5]
assert voice.set_quiet_boost(0.5) == -1 and voice.set_quiet_boost(float("inf")) == -1
assert voice.set_sample_rate(int(sys.argv[2]) * 3) == 0
with torch.inference_mode():
    for n in (1, 1000, 2048, 4096, 8192):
        out = voice(torch.zeros(1, 2, n))
        assert out.shape == (1, 1, n) and out.dtype == torch.float32, (n, out.shape)
        assert torch.isfinite(out).all()
    out = voice(torch.zeros(2, 1, 512))  # a batch (mc.nn~): one take per row
    assert out.shape == (2, 1, 512) and not torch.equal(out[0], out[1])
print("contract ok")
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("voice"), 20, rate=RATE)


@pytest.fixture(scope="module")
def exported(trained: Path) -> Path:
    target = trained.parent / "voice.ts"
    done = subprocess.run(
        [*SAMPLERNN, "export", str(trained), "--format", "nn", "-o", str(target), "--seed", "5"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert "real-time" in done.stderr or "a second of audio in" in done.stderr
    return target


def play(voice: torch.jit.ScriptModule, cuts: list[int], control: float = 0.0) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([voice(torch.full((1, 1, n), control))[0, 0] for n in cuts])


def test_the_file_keeps_nn_tildes_contract_in_a_fresh_process(exported: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONTRACT, str(exported), str(RATE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "contract ok" in done.stdout


def test_the_same_samples_however_the_host_cuts_its_buffers(exported: Path) -> None:
    voice = torch.jit.load(str(exported))
    assert voice.set_sample_rate(3 * RATE) == 0
    whole = play(voice, [16384])
    assert whole.abs().max() > 0.01  # sound, not silence
    for cuts in ([4096] * 4, [2048] * 8, [1, 1000, 3000, 7, 12376], [333] * 49 + [67]):
        voice.set_reset(True)
        assert torch.equal(play(voice, cuts), whole), cuts
    fresh = torch.jit.load(str(exported))
    fresh.set_sample_rate(3 * RATE)
    assert torch.equal(play(fresh, [5000, 11384]), whole)  # a reset is a fresh load


def test_settings_change_the_take_and_come_back(exported: Path) -> None:
    voice = torch.jit.load(str(exported))
    first = play(voice, [4096])
    assert voice.set_seed(6) == 0
    other = play(voice, [4096])
    assert not torch.equal(first, other)
    assert voice.set_seed(5) == 0  # the export's seed: the first take again
    assert torch.equal(play(voice, [4096]), first)
    voice.set_reset(True)
    assert voice.set_gain(0.5) == 0
    assert torch.equal(play(voice, [4096]), first * 0.5)
    # A temperature offset on the input changes the take; NaN is read as no offset.
    voice.set_gain(1.0)
    voice.set_reset(True)
    assert not torch.equal(play(voice, [4096], control=0.5), first)
    voice.set_reset(True)
    assert torch.equal(play(voice, [4096], control=math.nan), first)


def test_calls_from_new_threads_and_setters_outside_inference_mode(exported: Path) -> None:
    voice = torch.jit.load(str(exported))
    expected = play(voice, [2048] * 4)
    voice.set_reset(True)
    parts: list[torch.Tensor] = []

    def call() -> None:  # as Pd's nn~: a new thread per buffer, joined before the next
        with torch.inference_mode():
            parts.append(voice(torch.zeros(1, 1, 2048))[0, 0].clone())

    for index in range(4):
        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
        # Setters run between calls, outside inference mode, on the same module.
        assert voice.set_temperature(1.0) == 0 and voice.set_gain(1.0) == 0
        if index == 1:
            assert voice.set_sample_rate(RATE) == 0  # also outside inference mode
            voice.set_reset(False)
    assert torch.equal(torch.cat(parts[:2]), expected[:4096])


def test_a_rate_that_is_no_multiple_is_refused_and_silent(
    exported: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    voice = torch.jit.load(str(exported))
    assert voice.set_sample_rate(44100) == -1
    assert "44100 Hz" in capfd.readouterr().out
    with torch.inference_mode():
        out = voice(torch.zeros(1, 1, 4096))
        assert out.shape == (1, 1, 4096) and not out.any()
        assert voice(torch.zeros(1, 1)).shape == (1, 1, 0)  # a shape it cannot use
    assert voice.set_sample_rate(2 * RATE) == 0
    with torch.inference_mode():
        assert voice(torch.zeros(1, 1, 4096)).any()


def test_interpolation_matches_torchaudio_and_keeps_images_down() -> None:
    """A tone at the model's rate, interpolated by 3 in the voice's filter, against
    torchaudio's sinc resampler (after the filter's delay) and in its spectrum."""
    ratio, rate = 3, 16000
    t = torch.arange(rate) / rate
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * t)
    weights = interpolation_filter(ratio, 8, 8.6, 0.92)
    taps = weights.shape[2]
    out = torch.nn.functional.conv1d(
        torch.cat([torch.zeros(taps - 1), tone]).view(1, 1, -1), weights
    )  # fmt: skip
    ours = out[0].t().reshape(-1)
    reference = torchaudio.functional.resample(tone, rate, rate * ratio)
    delay = (taps // 2) * ratio  # the filter's delay in output samples
    aligned = ours[delay + 3000 : delay + 45000]
    assert torch.allclose(aligned, reference[3000:45000], atol=3e-3)
    spectrum = torch.fft.rfft(ours[3000:45000] * torch.hann_window(42000)).abs()
    frequencies = torch.fft.rfftfreq(42000, 1 / (rate * ratio))
    peak = spectrum.max()
    images = spectrum[(frequencies > rate / 2) & (frequencies < rate * ratio / 2)]
    assert 20 * torch.log10(images.max() / peak) < -70


@pytest.mark.parametrize(
    "config",
    [
        TINY_MODEL,
        ModelConfig(frame_sizes=(2, 4), rnn_type="gru", rnn_layers=2, hidden_size=16,
                    embed_size=0, q_levels=32, skip_connections=True, weight_norm=True,
                    learn_h0=True, quantizer="mu-law", linear_prediction=0),
    ],
    ids=["lstm-2-tier", "gru-3-tier-skip-weightnorm-h0-mulaw"],
)  # fmt: skip
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_voice_runs_the_model(config: ModelConfig, precision: str) -> None:
    """At a tiny temperature the voice picks each sample's most likely code; the model's
    own teacher-forced logits over the same codes must agree (in int8, but for near ties)."""
    torch.manual_seed(0)
    model = SampleRNN(config).eval()
    if config.learn_h0:
        with torch.no_grad():
            for tier in model.frame_tiers:
                tier.h0.normal_()
    voice = script_voice(build_voice(model, RATE, temperature=1e-4, seed=1, precision=precision))
    samples = play(voice, [600])
    codes = model.quantizer.encode(samples)
    assert torch.equal(model.quantizer.decode(codes), samples)
    history = model.history
    window = torch.cat([torch.full((history,), model.quantizer.zero_code), codes]).unsqueeze(0)
    length = (window.shape[1] - history) // model.config.tier_frame_samples[-1]
    window = window[:, : history + length * model.config.tier_frame_samples[-1]]
    with torch.no_grad():
        logits, _ = model(window)
    logits = logits[0]
    chosen = window[0, history:]
    best = logits.argmax(1)
    # Where another code won, it must have been a near tie (the draw's noise is 1e-4 wide).
    gap = logits.gather(1, best.unsqueeze(1))[:, 0] - logits.gather(1, chosen.unsqueeze(1))[:, 0]
    assert (best == chosen).float().mean() > 0.98
    assert gap.max() < 0.01


@pytest.mark.parametrize("relu", [False, True])
def test_int8_layers_are_near_float32_per_output_and_survive_saving(relu: bool) -> None:
    """An int8 layer is within a few percent of the float32 one on every output, a row of
    tiny weights included (a scale per output, not one for the whole matrix), and a saved
    and reloaded one gives the same numbers (the packed weights are saved)."""
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 64), torch.randn(96)
    weight[7] *= 1e-3
    bias[7] *= 1e-3
    x = torch.relu(torch.randn(3, 64))
    exact = Float32Layer(weight, bias, relu)(x)
    wanted = x @ weight.T + bias
    torch.testing.assert_close(exact, wanted.relu() if relu else wanted)
    scripted = torch.jit.script(Int8Layer(weight, bias, relu))
    approx = scripted(x)
    assert (approx >= 0).all() if relu else (approx < 0).any()
    # Per output, against the size of its value before the ReLU.
    error = ((approx - exact).norm(dim=0) / wanted.norm(dim=0)).max()
    assert error < 0.05
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    assert torch.equal(torch.jit.load(buffer)(x), approx)


@pytest.mark.parametrize("batch", [1, 2])
def test_the_sample_tiers_inputs_are_sums_of_table_rows(batch: int) -> None:
    """The sample tier keeps each sample's first-layer input as the draws before it leave
    it; before each draw it must equal the sum of the table rows of the frame_size codes
    before that sample, whether the chunk's start was gathered or carried, for one row
    (nn~'s case, its own path) and a batch, drawn a sample or a frame at a time."""
    torch.manual_seed(0)
    fs, levels, hidden, chunk = 4, 8, 6, 8
    tables = torch.randn(fs * levels, hidden)
    weights = [torch.randn(hidden, hidden), torch.randn(hidden, hidden)]
    tier = SampleTierVoice(
        tables, weights, [torch.randn(hidden)] * 2, torch.randn(levels, hidden),
        torch.zeros(levels), fs, chunk,
    )  # fmt: skip
    tier.reset(batch)
    codes = torch.randint(levels, (batch, fs + 3 * chunk))

    def expected(position: int) -> torch.Tensor:  # the input of the sample at position
        return sum(tables[j * levels + codes[:, position - fs + j]] for j in range(fs))

    for start in (fs, fs + chunk):  # the first chunk gathers, the second is carried
        assert tier.carried_valid == (start > fs)
        inputs = tier.begin(codes[:, start - fs : start])
        # Noise that makes each draw the code wanted.
        wanted = codes[:, start : start + chunk]
        noise = torch.nn.functional.one_hot(wanted, levels).float() * 1e6
        for s in range(chunk):
            assert torch.allclose(inputs[:, s], expected(start + s), atol=1e-5)
            assert torch.equal(tier.draw(inputs, noise, s, 1), wanted[:, s : s + 1])
        tier.end(inputs, True)
    # A frame at a time: the same codes, and the inputs the next chunk carries.
    start = fs + 2 * chunk
    inputs = tier.begin(codes[:, start - fs : start])
    wanted = codes[:, start : start + chunk]
    noise = torch.nn.functional.one_hot(wanted, levels).float() * 1e6
    for s in range(0, chunk, fs):
        assert torch.equal(tier.draw(inputs, noise, s, fs), wanted[:, s : s + fs])
    for s in range(fs):  # what the chunk's codes add to the next chunk's first inputs
        position = start + chunk + s
        partial = sum(tables[j * levels + codes[:, position - fs + j]] for j in range(fs - s))
        assert torch.allclose(inputs[:, chunk + s], partial, atol=1e-5)


def test_the_voice_plays_the_models_distribution(trained: Path, exported: Path) -> None:
    """The model's own bits per sample of the voice's take (temperature 1, at the model's
    rate) against those of `generate`'s takes: the same distribution within noise."""
    from samplernn_cli.checkpoint import load_checkpoint

    model = load_checkpoint(trained).build_model()
    voice = torch.jit.load(str(exported))
    assert voice.set_quiet_boost(1.0) == 0  # as generate_takes below, without the boost
    samples = play(voice, [8192] * 4)
    codes = model.quantizer.encode(samples)
    history = model.history
    window = torch.cat([torch.full((history,), model.quantizer.zero_code), codes]).unsqueeze(0)
    with torch.no_grad():
        logits, _ = model(window)
    # logits[0, i] is the distribution of codes[i].
    picked = torch.log_softmax(logits[0].double(), 1).gather(1, codes.unsqueeze(1))
    voice_bits = float(-picked.mean() / math.log(2))
    takes = generate_takes(model, 4, codes.numel(), seed=3, precision="float32")
    generated = takes.bits_per_sample.numpy()
    assert abs(voice_bits - generated.mean()) < max(0.05, 4 * generated.std()), (
        voice_bits,
        generated,
    )


def test_the_quiet_boost_acts_once_a_window_is_quiet_however_the_buffers_are_cut() -> None:
    """The voice's quiet boost is generate's: nothing in a take's first window; then, under
    a floor nothing reaches, the take at boost times the temperature (a different take); a
    floor nothing falls under changes nothing; and a floor the take crosses back and forth
    gives the same samples however the host cuts its buffers."""
    torch.manual_seed(0)
    model = SampleRNN(TINY_MODEL).eval()
    window = QuietGuard.window_blocks(RATE) * QuietGuard.BLOCK

    def voice_with(floor: float, boost: float = 1.5) -> torch.jit.ScriptModule:
        guard = QuietGuard(floor=floor, boost=boost, blocks=QuietGuard.window_blocks(RATE))
        return script_voice(build_voice(model, RATE, seed=3, guard=guard))

    plain = play(voice_with(math.inf, boost=1.0), [4 * window])
    always = play(voice_with(math.inf), [4 * window])
    assert torch.equal(always[:window], plain[:window])
    assert not torch.equal(always[window:], plain[window:])
    assert torch.equal(play(voice_with(0.0), [4 * window]), plain)
    # A floor at the take's median block level: the boost switches on and off.
    blocks = plain[: 4 * window].reshape(-1, QuietGuard.BLOCK).double().square().mean(1)
    switching = voice_with(float(blocks.median()), boost=3.0)
    whole = play(switching, [4 * window])
    assert not torch.equal(whole, plain) and not torch.equal(whole, always)
    for cuts in ([1000] * 4 + [4 * window - 4000], [window] * 4, [7, 3 * window, window - 7]):
        switching.set_reset(True)
        assert torch.equal(play(switching, cuts), whole), cuts


def test_time_voice_reports_warm_up_and_steady_buffers(exported: Path) -> None:
    voice = torch.jit.load(str(exported))
    timing = time_voice(voice, 3 * RATE, buffer=1024, seconds=0.5)
    assert len(timing.warm_up) == 2 and len(timing.factors) >= 2
    assert timing.median > 0 and timing.worst >= timing.median


def test_export_refuses_what_it_cannot_write(trained: Path, tmp_path: Path) -> None:
    target = tmp_path / "voice.ts"
    target.write_bytes(b"mine")
    cases = [
        (["--format", "nn", "-o", str(target)], "already exists"),
        (["--format", "nn", "--half", "float16", "-o", str(tmp_path / "a.ts")], "--half"),
        (["--format", "nn", "--temperature", "0", "-o", str(tmp_path / "b.ts")], "temperature"),
        (["--seed", "3", "-o", str(tmp_path / "c.pt")], "--format nn"),
        (["--precision", "int8", "-o", str(tmp_path / "d.pt")], "--format nn"),
        (["--format", "nn", "--precision", "int4", "-o", str(tmp_path / "e.ts")], "int4"),
    ]
    for extra, message in cases:
        done = subprocess.run(
            [*SAMPLERNN, "export", str(trained), *extra], capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        assert done.returncode == 2 if "exists" not in message else done.returncode == 1
        assert message in done.stderr and "Traceback" not in done.stderr
    assert target.read_bytes() == b"mine"
    assert not (tmp_path / "a.ts").exists()


def test_a_float32_voice_holds_the_weights_as_trained(
    trained: Path, exported: Path, tmp_path: Path
) -> None:
    """--precision float32 writes the products' weights in four bytes where the default
    (int8) writes one: a larger file, which plays the take of a float32 voice built here."""
    target = tmp_path / "voice32.ts"
    done = subprocess.run(
        [*SAMPLERNN, "export", str(trained), "--format", "nn", "--precision", "float32",
         "-o", str(target), "--seed", "5"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "float32" in done.stderr
    assert target.stat().st_size > exported.stat().st_size
    from samplernn_cli.checkpoint import load_checkpoint

    model = load_checkpoint(trained).build_model()
    built = script_voice(build_voice(model, RATE, seed=5, precision="float32"))
    built.set_quiet_boost(torch.jit.load(str(target)).get_quiet_boost()[0])
    take = play(torch.jit.load(str(target)), [4096])
    assert torch.equal(take, play(built, [4096]))


def test_a_model_with_linear_prediction_is_refused() -> None:
    from samplernn_cli.errors import UsageError

    model = SampleRNN(ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=16,
                                  embed_size=4, q_levels=32, linear_prediction=8))  # fmt: skip
    with pytest.raises(UsageError, match="linear-prediction"):
        build_voice(model, RATE)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("c++") is None, reason="no C++ toolchain"
)
def test_the_cpp_host_plays_the_voice_as_python_does(exported: Path, tmp_path: Path) -> None:
    """The project's own libtorch host, built with cmake, calls the voice as nn~ does
    (threads, inference mode, string attributes) and gets the very samples Python gets."""
    from torch.utils import cmake_prefix_path

    build = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", str(HOST_SOURCE), "-B", str(build),
         f"-DCMAKE_PREFIX_PATH={cmake_prefix_path}"], check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    raw = tmp_path / "out.f32"
    done = subprocess.run(
        [str(build / "samplernn-voice-host"), str(exported), "--rate", str(2 * RATE),
         "--buffer", "2048", "--seconds", "1", "--set", "temperature=0.900000",
         "--set", "seed=9", "--set", "reset=true", "--out", str(raw)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "real-time factor" in done.stdout and "late" in done.stdout
    host = torch.from_numpy(np.fromfile(raw, dtype=np.float32))
    voice = torch.jit.load(str(exported))
    voice.set_sample_rate(2 * RATE)
    voice.set_temperature(0.9)
    voice.set_seed(9)
    assert torch.equal(host, play(voice, [2048] * (host.numel() // 2048)))
    refused = subprocess.run(
        [str(build / "samplernn-voice-host"), str(exported), "--set", "temperature=-1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "refused" in refused.stderr


def test_evaluate_scores_the_voices_take_like_generates(
    trained: Path, exported: Path, tmp_path: Path
) -> None:
    """Through the commands: `samplernn evaluate` gives a take of the voice (at the model's
    rate) the bits per sample it gives `samplernn generate`'s takes (without the quiet
    boost, which the voice leaves to the performer), within their spread."""
    import json

    voice = torch.jit.load(str(exported))
    assert voice.set_quiet_boost(1.0) == 0
    soundfile.write(tmp_path / "voice.wav", play(voice, [4096] * 8).numpy(), RATE,
                    subtype="FLOAT")  # fmt: skip
    made = tmp_path / "made"
    subprocess.run(
        [*SAMPLERNN, "generate", str(trained), "--length", str(4096 * 8 / RATE), "--count", "4",
         "--seed", "8", "--precision", "float32", "--encoding", "float", "-d", str(made),
         "--quiet-boost", "1", "--quiet"], check=True, capture_output=True,
    )  # fmt: skip

    def bits(files: list[Path]) -> list[float]:
        done = subprocess.run(
            [*SAMPLERNN, "evaluate", str(trained), *map(str, files), "--gain", "none", "--json"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return [entry["bits_per_sample"] for entry in json.loads(done.stdout)["files"]]

    (ours,) = bits([tmp_path / "voice.wav"])
    theirs = np.array(bits(sorted(made.glob("*.wav"))))
    assert abs(ours - theirs.mean()) < max(0.05, 4 * theirs.std()), (ours, theirs)


def test_listening_runs_the_frame_tiers_over_what_it_hears() -> None:
    """While listen is on the voice is silent, its codes are the second input's (a frame
    late, encoded as the quantizer does), and its frame tiers' state is the model's after
    the same codes; released, it plays on from there (float32: the model's state exactly)."""
    torch.manual_seed(0)
    model = SampleRNN(TINY_MODEL).eval()
    voice = script_voice(build_voice(model, RATE, seed=2, precision="float32"))
    frame = model.config.tier_frame_samples[-1]
    heard = torch.from_numpy(tone_mix(0.05, RATE)).float()[: 100 * frame]
    assert voice.set_listen(True) == 0 and voice.get_listen() == [True]
    with torch.inference_mode():
        silent = voice(torch.stack([torch.zeros_like(heard), heard]).unsqueeze(0))
    assert not silent.any()
    codes = torch.cat([torch.full((frame,), model.quantizer.zero_code),
                       model.quantizer.encode(heard)[:-frame]])  # fmt: skip
    window = torch.cat([torch.full((model.history,), model.quantizer.zero_code), codes])
    with torch.no_grad():
        _, state = model.frame_tiers_pass(window.unsqueeze(0))
    h, c = state[0]
    buffers = dict(voice.named_buffers())  # the scripted module's own, as they are now
    torch.testing.assert_close(buffers["tiers.0.layers.0.h"], h[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(buffers["tiers.0.layers.0.c"], c[0], rtol=1e-5, atol=1e-6)
    voice.set_listen(False)
    assert play(voice, [2048]).abs().max() > 0.01


def test_what_it_hears_does_not_depend_on_the_buffers() -> None:
    torch.manual_seed(0)
    model = SampleRNN(TINY_MODEL).eval()
    voice = script_voice(build_voice(model, RATE, seed=2))
    sound = torch.from_numpy(tone_mix(2.0, 3 * RATE, seed=4)).float()[:8192]
    takes = []
    for cuts in ([4096, 4096], [1000, 3000, 192, 4000]):
        voice.set_reset(True)
        voice.set_sample_rate(3 * RATE)
        voice.set_listen(True)
        with torch.inference_mode():
            start = 0
            for n in cuts:
                piece = sound[start : start + n]
                voice(torch.stack([torch.zeros(n), piece]).unsqueeze(0))
                start += n
        voice.set_listen(False)
        takes.append(play(voice, [4096]))
    assert torch.equal(takes[0], takes[1]) and takes[0].abs().max() > 0.01


@pytest.mark.parametrize(("kind", "levels"), [("linear", 256), ("mu-law", 256), ("linear", 32)])
def test_what_the_voice_hears_is_encoded_as_the_quantizer_does(kind: str, levels: int) -> None:
    from samplernn_cli.quantize import Quantizer
    from samplernn_cli.voice.build import code_boundaries

    quantizer = Quantizer(kind, levels)
    boundaries = code_boundaries(quantizer).float()
    torch.manual_seed(0)
    x = torch.rand(100_000) * 2 - 1
    ours = torch.bucketize(x, boundaries)
    # Only values within float32 rounding of a boundary may land on the neighbouring code.
    assert (ours != quantizer.encode(x)).sum() <= 2
    assert (ours - quantizer.encode(x)).abs().max() <= 1
    every = quantizer.decode(torch.arange(levels))
    assert torch.equal(torch.bucketize(every, boundaries), torch.arange(levels))
