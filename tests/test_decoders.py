"""Audio libsndfile cannot read: through ffmpeg when it is on PATH (real M4A/AAC, WebM/Opus
and MP4 files made by a real ffmpeg), a clear error when it is not; and non-seekable
libsndfile files (GSM 6.10 WAV)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from samplernn_cli.audio import read_audio
from samplernn_cli.config import AudioConfig
from samplernn_cli.data import cache
from samplernn_cli.errors import AudioError
from samplernn_cli.quantize import Quantizer

from .conftest import TINY_FLAGS, run_cli, tone_mix

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

RATE = 44100
FORMATS = {"m4a": "M4A/AAC", "webm": "WebM", "mp4": "MP4"}


@pytest.fixture(scope="module")
def ffmpeg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only an executable named ffmpeg (a real one), to put on PATH."""
    folder = tmp_path_factory.mktemp("bin")
    (folder / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    return folder


@pytest.fixture(scope="module")
def media(ffmpeg_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 2-second stereo signal as WAV, and encoded by ffmpeg as M4A (AAC), WebM
    (Opus) and MP4 (AAC next to a video track)."""
    import subprocess

    folder = tmp_path_factory.mktemp("media")
    mono = tone_mix(2.0, RATE)
    source = folder / "source.wav"
    soundfile.write(source, np.stack([mono, 0.5 * mono], axis=1), RATE)
    ffmpeg = str(ffmpeg_dir / "ffmpeg")
    quiet = [ffmpeg, "-nostdin", "-loglevel", "error", "-y"]
    jobs = {
        "m4a": ["-i", source, "-c:a", "aac", "-b:a", "128k"],
        "webm": ["-i", source, "-c:a", "libopus", "-b:a", "96k"],
        "mp4": ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=2", "-i", source,
                "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac"],
    }  # fmt: skip
    files = {"wav": source}
    for suffix, args in jobs.items():
        target = folder / f"clip.{suffix}"
        subprocess.run([*quiet, *map(str, args), str(target)], check=True, timeout=60)
        files[suffix] = target
    return files


@pytest.fixture
def with_ffmpeg(ffmpeg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(ffmpeg_dir))


@pytest.fixture
def without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Signal to difference ratio after aligning by the best lag (codecs add delay)."""
    n = min(len(reference), len(decoded)) - 2000
    a = reference[1000 : 1000 + n - 400]

    def shifted(lag: int) -> np.ndarray:
        return decoded[1000 + lag : 1000 + lag + n - 400]

    best = max(range(-200, 201), key=lambda lag: float(np.dot(a, shifted(lag))))
    b = shifted(best)
    return float(10 * np.log10(np.sum(a**2) / np.sum((a - b) ** 2)))


@pytest.mark.usefixtures("with_ffmpeg")
def test_ffmpeg_decodes_what_soundfile_cannot(media: dict[str, Path]) -> None:
    config = AudioConfig(sample_rate=16000, normalize=False)
    reference = read_audio(media["wav"], config).samples.numpy()
    for suffix, name in FORMATS.items():
        wave = read_audio(media[suffix], config)
        assert wave.source.format == name and wave.source.subtype == "decoded by ffmpeg"
        assert wave.source.channels == 2 and abs(wave.source.duration - 2.0) < 0.05
        assert abs(wave.samples.numel() - reference.size) < 0.02 * reference.size
        assert snr_db(reference, wave.samples.numpy()) > 15, suffix


@pytest.mark.usefixtures("with_ffmpeg")
def test_ffmpeg_output_is_read_block_by_block(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file ffmpeg decodes goes into the code cache in blocks (here of 3000 frames),
    giving the codes the whole decoded file gives."""
    quantizer = Quantizer("linear", 256)
    whole = read_audio(media["m4a"], AudioConfig(sample_rate=16000, normalize=True))
    expected = quantizer.encode(whole.samples).numpy()
    monkeypatch.setattr(cache, "BLOCK_FRAMES", 3000)
    encoded = cache.encode_file(media["m4a"], 16000, True, quantizer, tmp_path / "codes")
    assert encoded.source.frames == whole.source.frames
    assert np.mean(np.asarray(encoded.codes) == expected) > 0.99  # resampling rounding


def test_without_ffmpeg_the_error_names_the_format_and_the_fix(
    media: dict[str, Path], without_ffmpeg: Path
) -> None:
    for suffix, name in FORMATS.items():
        with pytest.raises(AudioError) as caught:
            read_audio(media[suffix], AudioConfig())
        message = str(caught.value)
        assert f"is {name} audio" in message and "install ffmpeg" in message, message
        assert f"ffmpeg -i clip.{suffix} clip.flac" in message
    text = without_ffmpeg / "notes.txt"
    text.write_text("not audio at all\n")
    with pytest.raises(AudioError, match="not an audio file soundfile can read"):
        read_audio(text, AudioConfig())


@pytest.mark.usefixtures("with_ffmpeg")
def test_with_ffmpeg_a_file_neither_reads_is_still_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.m4a"
    text.write_text("not audio at all\n")
    with pytest.raises(AudioError, match="not an audio file soundfile can read, nor one ffmpeg"):
        read_audio(text, AudioConfig())


def test_train_and_evaluate_m4a_and_mp4_through_the_command(
    media: dict[str, Path], ffmpeg_dir: Path, tmp_path: Path
) -> None:
    path = {"PATH": f"{ffmpeg_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = run_cli("train", media["m4a"], media["mp4"], "-o", "phone", "--output-root",
                     tmp_path, *TINY_FLAGS, "--max-iterations", "2", cwd=tmp_path,
                     env=path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    checkpoint = result.stdout.strip()
    scored = run_cli("evaluate", checkpoint, media["webm"], cwd=tmp_path, env=path)
    assert scored.returncode == 0, scored.stderr
    primed = run_cli("generate", checkpoint, "--prime", media["webm"], "--length", "0.05",
                     "-d", tmp_path / "clips", cwd=tmp_path, env=path)  # fmt: skip
    assert primed.returncode == 0, primed.stderr

    refused = run_cli("train", media["m4a"], "-o", "nope", "--output-root", tmp_path,
                      cwd=tmp_path, env={"PATH": str(tmp_path / "nothing")})  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1
    assert "M4A/AAC" in refused.stderr and "install ffmpeg" in refused.stderr


def test_gsm_wav_is_read_although_libsndfile_cannot_seek_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "phone.wav"
    # 2 s: a whole number of GSM 6.10 blocks (libsndfile pads the last one).
    soundfile.write(path, tone_mix(2.0, 8000), 8000, subtype="GSM610")
    assert not soundfile.SoundFile(path).seekable()
    wave = read_audio(path, AudioConfig(sample_rate=8000))
    assert wave.samples.numel() == 16000 and wave.source.subtype == "GSM610"
    # Block by block, two passes (the peak, then the codes): the file is reopened.
    quantizer = Quantizer("mu-law", 256)
    monkeypatch.setattr(cache, "BLOCK_FRAMES", 5000)
    encoded = cache.encode_file(path, 8000, True, quantizer, tmp_path / "codes")
    np.testing.assert_array_equal(encoded.codes, quantizer.encode(wave.samples).numpy())
    result = run_cli("train", path, "-o", "gsm", "--output-root", tmp_path, *TINY_FLAGS,
                     "--max-iterations", "2", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
