"""Prompt files made by the real espeak-ng and ffmpeg, read back the way Asterisk reads them, recordings
read by ffmpeg in the formats an operator may drop beside the flows, and `centralita prompts build` run
as a command on a shipped flow and its recordings. These need espeak-ng and ffmpeg installed (CI
installs them); they fail, not skip, without them."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import pytest
from served import run_cli

from voice.prompt_files import RECORDING_INPUTS, FfmpegDecoder, FfmpegEncoder, PromptFileError, build_prompts
from voice.prompts import FlowPrompt, prompt_name
from voice.text_to_speech import EspeakSynthesizer, SynthesisError


@pytest.fixture(autouse=True, scope="module")
def _tools() -> None:
    missing = [tool for tool in ("espeak-ng", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not installed: these tests need them "
            "(Debian/Ubuntu: apt-get install -y espeak-ng ffmpeg)",
            pytrace=False,
        )


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2]))


def rms(values: list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def ulaw_to_linear(byte: int) -> int:
    """G.711 µ-law, decoded from the standard's formula (not by the code under test)."""
    u = ~byte & 0xFF
    magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
    return -magnitude if u & 0x80 else magnitude


def correlation(a: list[int], b: list[int]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    return cov / math.sqrt(sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b))


@pytest.mark.parametrize(("language", "text"), [("es", "Bienvenido a Banco Meridiano."), ("en", "Goodbye.")])
def test_espeak_speaks_spanish_and_english(language: str, text: str) -> None:
    synthesizer = EspeakSynthesizer()
    speech = synthesizer.synthesize(text, language)
    assert speech.sample_rate == 22050
    assert 0.3 < speech.seconds < 10
    assert rms(samples(speech.pcm)) > 500  # words, not silence
    assert synthesizer.voice_of(language).startswith(f"espeak-ng {synthesizer.version} voice={language} ")


def test_a_text_starting_with_a_dash_is_spoken_not_read_as_an_option() -> None:
    speech = EspeakSynthesizer().synthesize("-5 euros", "es")
    assert speech.seconds > 0.3


def test_a_language_without_an_espeak_voice_is_a_clear_error() -> None:
    synthesizer = EspeakSynthesizer(voices={"es": "nonexistent"})
    with pytest.raises(SynthesisError, match=r"no voice 'nonexistent' for language 'es'.*--voice es="):
        synthesizer.synthesize("Hola.", "es")
    with pytest.raises(SynthesisError, match="no voice 'xx' for language 'xx'"):
        synthesizer.synthesize("Hola.", "xx")


def test_rendered_files_are_in_the_formats_asterisk_reads(tmp_path: Path) -> None:
    text = "Para hablar con un agente, pulse cero."
    file = prompt_name("es", text)
    prompt = FlowPrompt("banco_es", "menu", "prompt", "es", text, file, recorded=False)

    report = build_prompts(
        [prompt],
        out=tmp_path,
        synthesizer=EspeakSynthesizer(),
        encoder=FfmpegEncoder(),
        decoder=FfmpegDecoder(),
        jobs=1,
    )

    assert report.ok and report.rendered == [file], report.failures
    wav_path = tmp_path / f"{file}.wav"
    with wave.open(str(wav_path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
    assert wav_path.read_bytes()[36:40] == b"data"  # the plain 44-byte header, no LIST chunk
    linear = samples(pcm)
    seconds = len(linear) / 8000
    assert seconds > 1 and rms(linear) > 500

    # 16 kHz raw signed linear: twice the samples for the same length, about as loud.
    wide = samples((tmp_path / f"{file}.sln16").read_bytes())
    assert abs(len(wide) / 16000 - seconds) < 0.01
    assert 0.8 < rms(wide) / rms(linear) < 1.25

    # Raw µ-law at 8 kHz: one byte a sample, and decoding it gives back the WAV's signal.
    ulaw = (tmp_path / f"{file}.ulaw").read_bytes()
    assert len(ulaw) == len(linear)
    decoded = [ulaw_to_linear(byte) for byte in ulaw]
    assert correlation(decoded, linear) > 0.99
    assert 0.95 < rms(decoded) / rms(linear) < 1.05


# How ffmpeg writes the kinds of file that have no header (or a fixed rate): options and sample rate.
RAW_OUTPUTS: dict[str, tuple[tuple[str, ...], int]] = {
    ".wav16": (("-f", "wav"), 16000),
    ".gsm": (("-f", "gsm"), 8000),
    ".g722": (("-f", "g722"), 16000),
    ".ulaw": (("-f", "mulaw"), 8000),
    ".alaw": (("-f", "alaw"), 8000),
    ".sln": (("-f", "s16le"), 8000),
    ".sln16": (("-f", "s16le"), 16000),
}


def tone_file(path: Path, *, seconds: float, rate: int, channels: int = 1) -> Path:
    """A 440 Hz tone written by ffmpeg itself, in the kind of file `path`'s extension says."""
    options, rate = RAW_OUTPUTS.get(path.suffix, ((), rate))
    source = f"sine=frequency=440:sample_rate={rate}:duration={seconds}"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source]
    subprocess.run(
        [*command, "-ac", str(channels), *options, "-y", str(path)], check=True, capture_output=True
    )
    return path


@pytest.mark.parametrize("extension", list(RECORDING_INPUTS))
def test_a_recording_in_any_format_an_operator_may_drop_is_read(tmp_path: Path, extension: str) -> None:
    path = tone_file(tmp_path / f"prompt{extension}", seconds=1.0, rate=44100, channels=1)
    speech = FfmpegDecoder().decode(path.read_bytes(), extension)
    assert speech.sample_rate == RAW_OUTPUTS.get(extension, ((), 44100))[1]  # its own rate, no resampling
    assert abs(speech.seconds - 1.0) < 0.1  # codecs with frames pad a little
    assert rms(samples(speech.pcm)) > 1000


def test_a_stereo_studio_recording_is_read_at_its_own_rate_as_one_channel(tmp_path: Path) -> None:
    path = tone_file(tmp_path / "welcome.wav", seconds=0.5, rate=48000, channels=2)
    speech = FfmpegDecoder().decode(path.read_bytes(), ".wav")
    assert speech.sample_rate == 48000 and len(speech.pcm) == 2 * 24000


@pytest.mark.parametrize(
    ("data", "extension", "message"),
    [
        (b"this is not a recording at all" * 10, ".wav", "ffmpeg cannot read it as .wav: "),
        (b"", ".mp3", "ffmpeg cannot read it as .mp3: "),
        (
            b"RIFF$\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0@\x1f\0\0\x80>\0\0\x02\0\x10\0data\0\0\0\0",
            ".wav",
            "no sound",
        ),
        (b"fLaC", ".aiff", "cannot read .aiff files"),
    ],
)
def test_a_recording_ffmpeg_cannot_read_is_a_clear_error(data: bytes, extension: str, message: str) -> None:
    with pytest.raises(PromptFileError, match=message):
        FfmpegDecoder().decode(data, extension)


def test_prompts_build_renders_a_shipped_flow_installs_its_recordings_and_then_only_what_changed(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("prompts", "build", "--flow", "support_en", "--check", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(
        "49 rendered, 2 installed, 0 cached, 0 recorded, 0 failed, 0 recordings missing"
    )
    sounds = tmp_path / "sounds"  # the default --out
    goodbye = sounds / f"{prompt_name('en', 'Thanks for calling Northwind Broadband. Goodbye.')}.wav"
    with wave.open(str(goodbye), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() > 8000
    assert len(list((sounds / "centralita" / "en").glob("*.ulaw"))) == 49  # 10 wait texts, the notice

    # The shipped stand-in recordings, in the same formats as the generated prompts.
    shipped = Path(__file__).resolve().parents[3] / "ivr_flows" / "recordings" / "northwind" / "en"
    for name in ("welcome", "main_menu"):
        with wave.open(str(shipped / f"{name}.wav"), "rb") as source:
            length = source.getnframes() / source.getframerate()
        with wave.open(str(sounds / "northwind" / "en" / f"{name}.wav"), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert abs(wav.getnframes() / 8000 - length) < 0.01
        wide = (sounds / "northwind" / "en" / f"{name}.sln16").read_bytes()
        assert abs(len(wide) / 2 / 16000 - length) < 0.01
        assert len((sounds / "northwind" / "en" / f"{name}.ulaw").read_bytes()) == round(length * 8000)

    again = run_cli("prompts", "build", "--flow", "support_en", "--check", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().startswith(
        "0 rendered, 0 installed, 51 cached, 0 recorded, 0 failed, 0 recordings missing"
    )

    # A deployment's own flows directory overrides one shipped recording; only that one is installed.
    extra = tmp_path / "our_flows"
    tone_file(extra / "recordings" / "northwind" / "en" / "welcome.mp3", seconds=1.5, rate=44100)
    overridden = run_cli(
        "prompts", "build", "--flow", "support_en", "--check",
        env=env | {"CENTRALITA_EXTRA_FLOWS_DIRS": str(extra)}, cwd=tmp_path,
    )  # fmt: skip
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.strip().startswith("0 rendered, 1 installed, 50 cached, 0 recorded, 0 failed")
    with wave.open(str(sounds / "northwind" / "en" / "welcome.wav"), "rb") as wav:
        assert abs(wav.getnframes() / 8000 - 1.5) < 0.1


FLOW_WITHOUT_RECORDINGS = """\
name: acme
languages: [en]
default_language: en
start: hello
nodes:
  hello:
    kind: play
    prompt:
      en: {text: Hello from Acme., audio: acme/en/hello.wav}
    next: bye
  bye:
    kind: hangup
    prompt:
      en: Goodbye.
"""


def test_prompts_build_check_names_the_recordings_a_flow_has_not_got(
    env: dict[str, str], tmp_path: Path
) -> None:
    extra = tmp_path / "our_flows"
    extra.mkdir()
    (extra / "acme.yaml").write_text(FLOW_WITHOUT_RECORDINGS)
    env = env | {"CENTRALITA_EXTRA_FLOWS_DIRS": str(extra)}
    args = ["prompts", "build", "--flow", "acme", "--check", "--format", "wav"]

    result = run_cli(*args, env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert (
        "error: missing recording: acme node hello prompt [en]: recording acme/en/hello is not in sounds "
        in (result.stderr)
    )
    assert (
        f"nor in {Path(__file__).resolve().parents[3] / 'ivr_flows' / 'recordings'}, {extra}/recordings"
        in (result.stderr)
    )
    assert result.stdout.strip().startswith(
        "1 rendered, 0 installed, 0 cached, 0 recorded, 0 failed, 1 recordings"
    )

    # Without --check a missing recording is not looked for; Asterisk would fail the call at that prompt.
    unchecked = run_cli("prompts", "build", "--flow", "acme", "--format", "wav", env=env, cwd=tmp_path)
    assert unchecked.returncode == 0, unchecked.stderr
    assert unchecked.stdout.strip().startswith("0 rendered, 0 installed, 1 cached, 1 recorded, 0 failed:")

    tone_file(extra / "recordings" / "acme" / "en" / "hello.wav", seconds=1.0, rate=22050)
    fixed = run_cli(*args, env=env, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip().startswith(
        "0 rendered, 1 installed, 1 cached, 0 recorded, 0 failed, 0 recordings"
    )
    assert (tmp_path / "sounds" / "acme" / "en" / "hello.wav").is_file()


def test_prompts_build_refuses_an_unknown_flow_and_reports_a_voice_that_does_not_exist(
    env: dict[str, str], tmp_path: Path
) -> None:
    unknown = run_cli("prompts", "build", "--flow", "nope", env=env, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no flow named nope (served: banco_es, support_en)" in unknown.stderr

    args = ["prompts", "build", "--flow", "support_en", "--format", "wav", "--voice", "en=nonexistent"]
    failed = run_cli(*args, "--out", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert failed.returncode == 1
    assert "error: support_en node welcome" not in failed.stderr  # a recording: never rendered
    assert "error: support_en node holiday_message prompt [en] (centralita/en/" in failed.stderr
    assert "no voice 'nonexistent' for language 'en'" in failed.stderr
    # The recordings need no voice: they are installed.
    assert "0 rendered, 2 installed, 0 cached, 0 recorded, 49 failed" in failed.stdout


def test_prompts_build_says_which_tool_is_missing(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("prompts", "build", env=env | {"PATH": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 1
    assert "espeak-ng is not installed" in result.stderr and "apt-get install espeak-ng" in result.stderr
