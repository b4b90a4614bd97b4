"""Reading, mixing, resampling, normalising and writing audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.audio import read_audio, resample, write_audio
from samplernn_cli.config import AudioConfig
from samplernn_cli.errors import AudioError, OutputError

from .conftest import WriteAudio, tone_mix


@pytest.mark.parametrize(
    ("name", "subtype"),
    [
        ("u8.wav", "PCM_U8"),
        ("s16.wav", "PCM_16"),
        ("s24.wav", "PCM_24"),
        ("s32.wav", "PCM_32"),
        ("f32.wav", "FLOAT"),
        ("f64.wav", "DOUBLE"),
        ("s16.flac", "PCM_16"),
        ("s24.flac", "PCM_24"),
        ("v.ogg", "VORBIS"),
        ("m.mp3", "MPEG_LAYER_III"),
    ],
)
def test_formats_and_bit_depths_read_alike(
    write_audio: WriteAudio, name: str, subtype: str
) -> None:
    path = write_audio(name, seconds=0.5, subtype=subtype)
    wave = read_audio(path, AudioConfig(sample_rate=16000, normalize=False))
    reference = torch.from_numpy(tone_mix(0.5, 16000))
    assert wave.sample_rate == 16000
    assert wave.samples.dtype == torch.float32
    if subtype in ("VORBIS", "MPEG_LAYER_III"):
        # Lossy codecs add delay and padding; check the level only.
        assert abs(wave.samples.abs().max().item() - 0.8) < 0.1
        return
    assert wave.samples.numel() == reference.numel()
    tolerance = 1 / 100 if subtype == "PCM_U8" else 1e-4
    assert (wave.samples - reference).abs().max().item() < tolerance


def test_channels_are_averaged(write_audio: WriteAudio) -> None:
    left = tone_mix(0.2, 16000)
    data = np.stack([left, -left * 0.5, np.zeros_like(left)], axis=1)
    path = write_audio("three.wav", data=data, subtype="FLOAT")
    wave = read_audio(path, AudioConfig(normalize=False))
    assert wave.source.channels == 3
    np.testing.assert_allclose(wave.samples.numpy(), left * 0.5 / 3, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_resampling_keeps_duration_and_pitch(write_audio: WriteAudio, rate: int) -> None:
    t = np.arange(rate) / rate
    path = write_audio(f"r{rate}.wav", data=(0.5 * np.sin(2 * np.pi * 440 * t)), rate=rate,
                       subtype="FLOAT")  # fmt: skip
    wave = read_audio(path, AudioConfig(sample_rate=16000, normalize=False))
    assert wave.sample_rate == 16000
    assert wave.samples.numel() == 16000
    spectrum = torch.fft.rfft(wave.samples[2000:14000] * torch.hann_window(12000))
    peak_hz = spectrum.abs().argmax().item() * 16000 / 12000
    assert abs(peak_hz - 440) < 3


def test_keep_sample_rate(write_audio: WriteAudio) -> None:
    path = write_audio("r.wav", seconds=0.3, rate=22050)
    wave = read_audio(path, AudioConfig(sample_rate=None))
    assert wave.sample_rate == 22050
    assert wave.source.sample_rate == 22050


def test_peak_normalisation_is_one_gain_for_the_whole_file(write_audio: WriteAudio) -> None:
    quiet = tone_mix(1.0, 16000) * 0.1
    quiet[:8000] *= 0.1  # a quieter first half must stay quieter
    path = write_audio("q.wav", data=quiet, subtype="FLOAT")
    wave = read_audio(path, AudioConfig(normalize=True))
    assert wave.samples.abs().max().item() == pytest.approx(1.0)
    np.testing.assert_allclose(wave.samples.numpy(), quiet * wave.gain, rtol=1e-5, atol=1e-7)
    assert wave.samples[:8000].abs().max() < 0.2
    assert float(wave.samples.mean()) == pytest.approx(float(quiet.mean()) * wave.gain, abs=1e-6)


def test_normalisation_can_be_turned_off(write_audio: WriteAudio) -> None:
    path = write_audio("n.wav", data=tone_mix(0.2, 16000) * 0.25, subtype="FLOAT")
    wave = read_audio(path, AudioConfig(normalize=False))
    assert wave.gain == 1.0
    assert wave.samples.abs().max().item() == pytest.approx(0.2, rel=1e-4)


def test_bad_inputs_raise_audio_error(tmp_path: Path, write_audio: WriteAudio) -> None:
    config = AudioConfig()
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    empty.touch()
    header_only = write_audio("header.wav", data=np.zeros((0, 1), dtype=np.float32))
    silent = write_audio("silent.wav", data=np.zeros(1000, dtype=np.float32))
    nan_file = write_audio("nan.wav", data=np.array([0.1, np.nan, 0.2], dtype=np.float32),
                           subtype="FLOAT")  # fmt: skip
    cases = {
        tmp_path / "missing.wav": "no such file",
        tmp_path: "is a directory",
        text: "not an audio file",
        empty: "empty",
        header_only: "no audio samples",
        silent: "silent",
        nan_file: "non-finite",
    }
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    cases[fifo] = "not a regular file"
    for path, message in cases.items():
        with pytest.raises(AudioError, match=message):
            read_audio(path, config)


def test_refuses_impractical_resampling_ratio() -> None:
    with pytest.raises(AudioError, match="impractically large"):
        resample(torch.zeros(100), 44101, 16007)


def test_write_audio_is_atomic_and_respects_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    write_audio(path, torch.full((100,), 2.0), 8000)  # clipped to full scale
    data, rate = soundfile.read(path)
    assert rate == 8000 and data.max() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(OutputError, match="already exists; not overwriting"):
        write_audio(path, torch.zeros(10), 8000, overwrite=False)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    write_audio(tmp_path / "out.flac", torch.zeros(10, 2), 8000)
    assert soundfile.info(tmp_path / "out.flac").channels == 2
