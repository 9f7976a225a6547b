"""`prompts build`'s core with the fake synthesizer, encoder and decoder: which files it writes and where,
what it renders again and what it leaves alone, recordings installed from beside the flows, and failures
that name the flow, node and language."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import wave
from pathlib import Path

import pytest

from voice.ivr.loader import parse_flow
from voice.prompt_files import (
    FORMATS,
    BuildReport,
    FakeDecoder,
    FakeEncoder,
    FfmpegDecoder,
    FfmpegEncoder,
    PromptFileError,
    RenderedPrompt,
    build_prompts,
    find_recording,
    formats_to_render,
    load_manifest,
    parse_formats,
)
from voice.prompts import FlowPrompt, flow_prompts, prompt_name
from voice.text_to_speech import EspeakSynthesizer, FakeSynthesizer, Speech, SynthesisError, read_wav_stream

FLOW = """\
name: tiny
languages: [es, en]
default_language: es
start: hola
nodes:
  hola:
    kind: play
    prompt:
      es: {text: Bienvenido., audio: tiny/es/bienvenida.wav}
      en: {text: Welcome., audio: tiny/en/welcome.wav}
    next: adios
  adios:
    kind: hangup
    prompt:
      es: Adiós.
      en: Goodbye.
"""


def tiny_prompts(text: str = FLOW) -> list[FlowPrompt]:
    flow, problems = parse_flow(text.encode(), file="tiny.yaml")
    assert flow is not None, problems
    return flow_prompts(flow)


def spoken(language: str, text: str, *, flow: str = "tiny", node: str = "adios") -> FlowPrompt:
    return FlowPrompt(flow, node, "prompt", language, text, prompt_name(language, text), recorded=False)


def build(
    prompts: list[FlowPrompt],
    out: Path,
    synthesizer: FakeSynthesizer | None = None,
    encoder: FakeEncoder | None = None,
    decoder: FakeDecoder | None = None,
    **options: object,
) -> BuildReport:
    return build_prompts(
        prompts,
        out=out,
        synthesizer=synthesizer or FakeSynthesizer(),
        encoder=encoder or FakeEncoder(),
        decoder=decoder or FakeDecoder(),
        jobs=2,
        **options,  # type: ignore[arg-type]
    )


def recording(samples: int, *, rate: int = 8000, loudness: int = 1000) -> bytes:
    """A 16-bit mono WAV of `samples` samples of a tone."""
    output = io.BytesIO()
    with wave.open(output, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{samples}h", *(((i % 16) - 8) * loudness for i in range(samples))))
    return output.getvalue()


def record(flows: Path, name: str, data: bytes) -> Path:
    """Puts a recording beside the flows in `flows`, as an operator would."""
    path = flows / "recordings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def manifest(out: Path) -> dict[str, dict[str, object]]:
    document = json.loads((out / "centralita" / "prompts.json").read_text())
    prompts: dict[str, dict[str, object]] = document["prompts"]
    return prompts


def test_each_text_prompt_is_written_in_every_format_under_its_hashed_name(tmp_path: Path) -> None:
    synthesizer = FakeSynthesizer()
    report = build(tiny_prompts(), tmp_path, synthesizer)

    goodbye = prompt_name("en", "Goodbye.")
    assert sorted(report.rendered) == sorted([prompt_name("es", "Adiós."), goodbye])
    assert report.ok and not report.cached and not report.failures
    assert (tmp_path / f"{goodbye}.wav").read_text() == "wav 16000->8000 1280\n"
    assert (tmp_path / f"{goodbye}.sln16").read_text() == "sln16 16000->16000 1280\n"
    assert (tmp_path / f"{goodbye}.ulaw").read_text() == "ulaw 16000->8000 1280\n"
    assert sorted(synthesizer.spoken) == [("en", "Goodbye."), ("es", "Adiós.")]
    assert manifest(tmp_path)[goodbye] == {
        "language": "en",
        "text": "Goodbye.",
        "voice": "fake 1 voice=en",
        "formats": ["sln16", "ulaw", "wav"],
    }


def test_files_are_readable_by_asterisk_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) == 2 * 3 + 1  # two prompts, three formats, the manifest
    assert not [path for path in written if path.name.startswith(".") or path.suffix == ".tmp"]
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in written)


def test_an_unchanged_prompt_is_not_rendered_again(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.wav")}
    synthesizer = FakeSynthesizer()

    report = build(tiny_prompts(), tmp_path, synthesizer)

    assert sorted(report.cached) == sorted([prompt_name("es", "Adiós."), prompt_name("en", "Goodbye.")])
    assert report.rendered == [] and synthesizer.spoken == []
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.wav")} == before


def test_a_changed_text_is_a_new_file_and_only_it_is_rendered(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    synthesizer = FakeSynthesizer()

    report = build(tiny_prompts(FLOW.replace("Goodbye.", "Bye now.")), tmp_path, synthesizer)

    assert report.rendered == [prompt_name("en", "Bye now.")]
    assert report.cached == [prompt_name("es", "Adiós.")]
    assert synthesizer.spoken == [("en", "Bye now.")]
    assert (tmp_path / f"{prompt_name('en', 'Bye now.')}.wav").is_file()
    entries = manifest(tmp_path)
    assert prompt_name("en", "Goodbye.") in entries  # the old file is still there, and still described
    assert entries[prompt_name("en", "Bye now.")]["text"] == "Bye now."


def test_another_voice_or_engine_version_renders_every_prompt_again(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    report = build(tiny_prompts(), tmp_path, FakeSynthesizer(voice="fake 2"))
    assert len(report.rendered) == 2 and report.cached == []
    assert {entry["voice"] for entry in manifest(tmp_path).values()} == {"fake 2 voice=es", "fake 2 voice=en"}


def test_force_renders_every_prompt_again(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    encoder = FakeEncoder()
    report = build(tiny_prompts(), tmp_path, encoder=encoder, force=True)
    assert len(report.rendered) == 2 and sorted(encoder.encoded) == sorted(["wav", "sln16", "ulaw"] * 2)


def test_a_deleted_file_is_rendered_again_in_that_format_only(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    adios = prompt_name("es", "Adiós.")
    (tmp_path / f"{adios}.ulaw").unlink()
    encoder = FakeEncoder()

    report = build(tiny_prompts(), tmp_path, encoder=encoder)

    assert report.rendered == [adios] and encoder.encoded == ["ulaw"]
    assert (tmp_path / f"{adios}.ulaw").is_file()
    assert manifest(tmp_path)[adios]["formats"] == ["sln16", "ulaw", "wav"]


def test_a_format_asked_for_later_is_added_to_the_ones_made_before(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path, formats=["wav"])
    adios = prompt_name("es", "Adiós.")
    assert not (tmp_path / f"{adios}.ulaw").exists()
    encoder = FakeEncoder()

    build(tiny_prompts(), tmp_path, encoder=encoder, formats=["wav", "ulaw"])

    assert encoder.encoded == ["ulaw", "ulaw"]
    assert manifest(tmp_path)[adios]["formats"] == ["ulaw", "wav"]


def test_a_flows_own_recording_is_never_rendered(tmp_path: Path) -> None:
    synthesizer = FakeSynthesizer()
    report = build(tiny_prompts(), tmp_path, synthesizer)
    assert sorted(report.recorded) == ["tiny/en/welcome", "tiny/es/bienvenida"]
    assert ("es", "Bienvenido.") not in synthesizer.spoken
    assert not (tmp_path / "tiny").exists()
    assert report.ok  # without check_recorded, a missing recording is not looked for


def test_the_check_names_each_missing_recording_with_its_flow_node_and_language(tmp_path: Path) -> None:
    (tmp_path / "tiny" / "es").mkdir(parents=True)
    (tmp_path / "tiny" / "es" / "bienvenida.sln16").write_bytes(b"\0\0")  # any format Asterisk reads

    report = build(tiny_prompts(), tmp_path, check_recorded=True)

    assert not report.ok and report.failures == []
    assert [missing.file for missing in report.missing_recordings] == ["tiny/en/welcome"]
    message = str(report.missing_recordings[0])
    assert "tiny node hola prompt [en]" in message and "tiny/en/welcome" in message
    assert str(tmp_path) in message


def test_the_check_looks_beside_the_flows_too_and_names_where_it_looked(tmp_path: Path) -> None:
    shipped, extra, out = tmp_path / "shipped", tmp_path / "extra", tmp_path / "sounds"
    record(extra, "tiny/es/bienvenida.wav", recording(800))

    report = build(tiny_prompts(), out, flow_directories=[shipped, extra], check_recorded=True)

    assert report.installed == ["tiny/es/bienvenida"] and report.recorded == []
    [missing] = report.missing_recordings
    assert str(missing) == (
        f"tiny node hola prompt [en]: recording tiny/en/welcome is not in {out} "
        f"(looked for tiny/en/welcome{{.wav, .wav16, .gsm, …}}) "
        f"nor in {shipped}/recordings, {extra}/recordings"
    )


def test_a_recording_beside_the_flows_is_installed_in_every_format_under_its_own_name(tmp_path: Path) -> None:
    flows, out = tmp_path / "flows", tmp_path / "sounds"
    spanish = record(flows, "tiny/es/bienvenida.wav", recording(800))
    record(flows, "tiny/en/welcome.wav", recording(1600, rate=16000))
    synthesizer, decoder = FakeSynthesizer(), FakeDecoder()

    report = build(
        tiny_prompts(), out, synthesizer, decoder=decoder, flow_directories=[flows], check_recorded=True
    )

    assert report.ok and sorted(report.installed) == ["tiny/en/welcome", "tiny/es/bienvenida"]
    assert report.recorded == [] and report.kept == [] and len(report.rendered) == 2
    assert (out / "tiny/es/bienvenida.wav").read_text() == "wav 8000->8000 800\n"
    assert (out / "tiny/es/bienvenida.sln16").read_text() == "sln16 8000->16000 800\n"
    assert (out / "tiny/en/welcome.ulaw").read_text() == "ulaw 16000->8000 1600\n"
    assert all(text not in ("Bienvenido.", "Welcome.") for _, text in synthesizer.spoken)
    assert len(decoder.decoded) == 2
    digest = hashlib.sha256(spanish.read_bytes()).hexdigest()
    assert manifest(out)["tiny/es/bienvenida"] == {
        "language": "es",
        "text": "",  # what a recording says is up to whoever recorded it
        "voice": f"recording sha256:{digest}",
        "formats": ["sln16", "ulaw", "wav"],
    }


def test_an_unchanged_recording_is_not_installed_again_and_a_rerecorded_one_is(tmp_path: Path) -> None:
    flows, out = tmp_path / "flows", tmp_path / "sounds"
    spanish = record(flows, "tiny/es/bienvenida.wav", recording(800))
    record(flows, "tiny/en/welcome.wav", recording(800))
    build(tiny_prompts(), out, flow_directories=[flows])
    os.utime(spanish, ns=(0, 0))  # touched, not changed: the content decides

    decoder = FakeDecoder()
    again = build(tiny_prompts(), out, decoder=decoder, flow_directories=[flows])
    assert again.installed == [] and len(again.cached) == 4 and decoder.decoded == []

    spanish.write_bytes(recording(800, loudness=2000))  # re-recorded: same name, same length
    encoder = FakeEncoder()
    third = build(tiny_prompts(), out, encoder=encoder, flow_directories=[flows])
    assert third.installed == ["tiny/es/bienvenida"] and sorted(encoder.encoded) == ["sln16", "ulaw", "wav"]
    digest = hashlib.sha256(spanish.read_bytes()).hexdigest()
    assert manifest(out)["tiny/es/bienvenida"]["voice"] == f"recording sha256:{digest}"

    assert len(build(tiny_prompts(), out, flow_directories=[flows], force=True).installed) == 2


def test_a_later_flows_directory_overrides_an_earlier_ones_recording(tmp_path: Path) -> None:
    shipped, extra, out = tmp_path / "shipped", tmp_path / "extra", tmp_path / "sounds"
    record(shipped, "tiny/es/bienvenida.wav", recording(800))
    record(shipped, "tiny/en/welcome.wav", recording(800))
    ours = record(extra, "tiny/es/bienvenida.wav", recording(2400))

    report = build(tiny_prompts(), out, flow_directories=[shipped, extra])

    assert sorted(report.installed) == ["tiny/en/welcome", "tiny/es/bienvenida"]
    assert (out / "tiny/es/bienvenida.wav").read_text() == "wav 8000->8000 2400\n"  # the extra one
    assert (out / "tiny/en/welcome.wav").read_text() == "wav 8000->8000 800\n"  # only shipped has it
    assert find_recording("tiny/es/bienvenida", [shipped, extra]) == ours
    assert (
        find_recording("tiny/es/bienvenida", [extra, shipped])
        == shipped / "recordings/tiny/es/bienvenida.wav"
    )
    assert find_recording("tiny/es/adios", [shipped, extra]) is None


def test_a_recording_is_found_under_any_extension_but_two_for_one_name_is_an_error(tmp_path: Path) -> None:
    mp3 = record(tmp_path, "tiny/es/bienvenida.mp3", b"ID3")
    assert find_recording("tiny/es/bienvenida", [tmp_path]) == mp3
    flac = record(tmp_path, "tiny/es/gracias.flac", b"fLaC")  # `audio: tiny/es/gracias.flac`, kept as named
    assert find_recording("tiny/es/gracias.flac", [tmp_path]) == flac
    (tmp_path / "recordings/tiny/es/notas.wav").mkdir()  # a directory is not a recording
    assert find_recording("tiny/es/notas", [tmp_path]) is None

    record(tmp_path, "tiny/es/bienvenida.wav", recording(800))
    with pytest.raises(PromptFileError, match=r"2 recordings for it in .*: tiny/es/bienvenida.wav, "):
        find_recording("tiny/es/bienvenida", [tmp_path])
    report = build(tiny_prompts(), tmp_path / "sounds", flow_directories=[tmp_path])
    [failure] = report.failures
    assert str(failure).startswith("tiny node hola prompt [es] (tiny/es/bienvenida): 2 recordings for it")
    assert "keep one" in str(failure) and report.installed == []


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("tiny/es/bienvenida.wav", b"this is not audio", "not a WAV this fake reads"),
        ("tiny/es/bienvenida.wav", recording(0), "it has no sound"),
        ("tiny/es/bienvenida.mp3", b"ID3\x04", "cannot read .mp3 files"),
    ],
)
def test_a_recording_that_cannot_be_read_fails_that_prompt_only_naming_its_flow_node_and_language(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    flows, out = tmp_path / "flows", tmp_path / "sounds"
    broken = record(flows, name, data)
    record(flows, "tiny/en/welcome.wav", recording(800))

    report = build(tiny_prompts(), out, flow_directories=[flows], check_recorded=True)

    [failure] = report.failures
    assert str(failure).startswith(f"tiny node hola prompt [es] (tiny/es/bienvenida): recording {broken}: ")
    assert message in str(failure) and not report.ok
    assert report.installed == ["tiny/en/welcome"] and len(report.rendered) == 2  # the others are made
    assert not (out / "tiny" / "es").exists() and "tiny/es/bienvenida" not in manifest(out)
    assert report.missing_recordings == []  # it is there: broken, not missing


def test_a_file_in_the_sounds_directory_that_the_build_did_not_make_is_never_replaced(tmp_path: Path) -> None:
    flows, out = tmp_path / "flows", tmp_path / "sounds"
    record(flows, "tiny/es/bienvenida.wav", recording(800))
    record(flows, "tiny/en/welcome.wav", recording(800))
    (out / "tiny/es").mkdir(parents=True)
    (out / "tiny/es/bienvenida.gsm").write_bytes(b"the operator's own recording")

    report = build(tiny_prompts(), out, flow_directories=[flows], check_recorded=True)

    assert report.ok and report.installed == ["tiny/en/welcome"] and report.recorded == ["tiny/es/bienvenida"]
    assert (out / "tiny/es/bienvenida.gsm").read_bytes() == b"the operator's own recording"
    assert sorted(path.name for path in (out / "tiny/es").iterdir()) == ["bienvenida.gsm"]
    [kept] = report.kept
    assert str(kept) == (
        f"kept tiny/es/bienvenida in {out}: prompts build did not make it, so it is not replaced; "
        f"delete {out}/tiny/es/bienvenida.* to install {flows}/recordings/tiny/es/bienvenida.wav instead"
    )
    # What the build installed itself, it does replace.
    record(flows, "tiny/en/welcome.wav", recording(2400))
    assert build(tiny_prompts(), out, flow_directories=[flows]).installed == ["tiny/en/welcome"]
    # Unless the manifest that says so is lost: then it cannot tell, and says that.
    (out / "centralita" / "prompts.json").write_text("{not json")
    lost = build(tiny_prompts(), out, flow_directories=[flows])
    assert lost.installed == [] and sorted(lost.recorded) == ["tiny/en/welcome", "tiny/es/bienvenida"]
    assert "the manifest is unreadable, so prompts build cannot tell whether it made it" in str(lost.kept[1])


def test_a_language_without_a_voice_fails_its_prompts_only_and_says_where_they_are(tmp_path: Path) -> None:
    report = build(tiny_prompts(), tmp_path, FakeSynthesizer(languages=["es"]))

    assert report.rendered == [prompt_name("es", "Adiós.")] and not report.ok
    [failure] = report.failures
    assert failure.file == prompt_name("en", "Goodbye.")
    assert str(failure).startswith("tiny node adios prompt [en] (centralita/en/")
    assert "no voice for language 'en'" in str(failure)
    assert not (tmp_path / f"{failure.file}.wav").exists()
    assert failure.file not in manifest(tmp_path)


def test_a_format_that_fails_writes_none_of_that_prompts_files(tmp_path: Path) -> None:
    report = build(tiny_prompts(), tmp_path, encoder=FakeEncoder(failing=["ulaw"]))
    assert len(report.failures) == 2 and report.rendered == []
    assert "cannot write ulaw" in str(report.failures[0])
    assert not list(tmp_path.rglob("*.wav"))
    assert not (tmp_path / "centralita" / "prompts.json").exists()  # nothing made, nothing to record


def test_a_bug_in_the_engine_fails_that_prompt_not_the_build(tmp_path: Path) -> None:
    class Broken(FakeSynthesizer):
        def synthesize(self, text: str, language: str) -> Speech:
            if text == "Goodbye.":
                raise ZeroDivisionError("oops")
            return super().synthesize(text, language)

    report = build(tiny_prompts(), tmp_path, Broken())
    assert report.rendered == [prompt_name("es", "Adiós.")]
    assert [str(failure).split(": ", 1)[1] for failure in report.failures] == ["ZeroDivisionError: oops"]


def test_a_prompt_used_in_two_places_is_rendered_once_and_a_failure_names_both(tmp_path: Path) -> None:
    prompts = [spoken("en", "Goodbye."), spoken("en", "Goodbye.", flow="other", node="bye")]
    synthesizer = FakeSynthesizer()
    assert build(prompts, tmp_path, synthesizer).rendered == [prompt_name("en", "Goodbye.")]
    assert synthesizer.spoken == [("en", "Goodbye.")]

    [failure] = build(prompts, tmp_path / "again", FakeSynthesizer(languages=[])).failures
    assert "tiny node adios prompt [en]" in str(failure) and "also other node bye prompt [en]" in str(failure)


def test_a_broken_manifest_only_costs_a_render(tmp_path: Path) -> None:
    build(tiny_prompts(), tmp_path)
    (tmp_path / "centralita" / "prompts.json").write_text("{not json")

    report = build(tiny_prompts(), tmp_path)

    assert report.manifest_problem is not None and "unreadable" in report.manifest_problem
    assert len(report.rendered) == 2 and report.ok
    assert len(manifest(tmp_path)) == 2


def test_the_manifest_skips_entries_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    good = {"language": "es", "text": "Hola.", "voice": "v", "formats": ["wav"]}
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "prompts": {
                    "a": good,
                    "b": {**good, "formats": "wav"},
                    "c": {**good, "text": None},
                    "d": "x",
                    "e": {"language": "es"},
                },
            }
        )
    )
    assert load_manifest(path) == ({"a": RenderedPrompt("es", "Hola.", "v", ("wav",))}, None)
    path.write_text(json.dumps({"version": 99, "prompts": {}}))
    assert load_manifest(path)[1] is not None
    assert load_manifest(tmp_path / "none.json") == ({}, None)


def test_many_prompts_on_many_threads_each_land_once(tmp_path: Path) -> None:
    prompts = [spoken("es", f"Frase número {i}.") for i in range(40)]
    report = build_prompts(
        prompts,
        out=tmp_path,
        synthesizer=FakeSynthesizer(),
        encoder=FakeEncoder(),
        decoder=FakeDecoder(),
        jobs=8,
    )
    assert sorted(report.rendered) == sorted(prompt.file for prompt in prompts)
    assert len(manifest(tmp_path)) == 40 and len(list(tmp_path.rglob("*.wav"))) == 40


ENTRY = RenderedPrompt("es", "Hola.", "v1", ("sln16", "wav"))


@pytest.mark.parametrize(
    ("entry", "text", "voice", "present", "force", "expected"),
    [
        (None, "Hola.", "v1", {"wav", "sln16"}, False, ("wav", "sln16", "ulaw")),
        (ENTRY, "Hola.", "v1", {"wav", "sln16"}, False, ("ulaw",)),
        (ENTRY, "Hola.", "v1", {"wav"}, False, ("sln16", "ulaw")),
        (ENTRY, "Hola.", "v2", {"wav", "sln16"}, False, ("wav", "sln16", "ulaw")),
        (ENTRY, "Hola!", "v1", {"wav", "sln16"}, False, ("wav", "sln16", "ulaw")),
        (ENTRY, "Hola.", "v1", {"wav", "sln16", "ulaw"}, True, ("wav", "sln16", "ulaw")),
    ],
)
def test_which_formats_are_made(
    entry: RenderedPrompt | None,
    text: str,
    voice: str,
    present: set[str],
    force: bool,
    expected: tuple[str, ...],
) -> None:
    made = formats_to_render(
        entry,
        language="es",
        text=text,
        voice=voice,
        wanted=["wav", "sln16", "ulaw"],
        present=present.__contains__,
        force=force,
    )
    assert made == expected


def test_formats_are_named_by_their_asterisk_extension() -> None:
    assert parse_formats("wav, ULAW,wav") == ("wav", "ulaw")
    assert (FORMATS["wav"].sample_rate, FORMATS["sln16"].sample_rate, FORMATS["ulaw"].sample_rate) == (
        8000,
        16000,
        8000,
    )
    with pytest.raises(ValueError, match="unknown format mp3; choose from wav, sln16, ulaw"):
        parse_formats("wav,mp3")
    with pytest.raises(ValueError, match="none given"):
        parse_formats(" , ")


def wav_header(*, rate: int = 22050, channels: int = 1, bits: int = 16, size: int = 0x7FFFF000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    return b"RIFF" + struct.pack("<I", size + 36) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt


def test_a_wav_written_to_a_pipe_is_read_to_its_end_whatever_its_sizes_say() -> None:
    samples = struct.pack("<4h", 0, 1000, -1000, 32767)
    stream = wav_header() + b"data" + struct.pack("<I", 0x7FFFF000) + samples
    assert read_wav_stream(stream) == Speech(samples, 22050)
    padded = wav_header(rate=16000) + b"LIST" + struct.pack("<I", 3) + b"abc\0" + b"data\x04\0\0\0" + samples
    assert read_wav_stream(padded) == Speech(samples[:4], 16000)


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"", "not a WAV"),
        (b"ID3\x04" + bytes(40), "not a WAV"),
        (wav_header(channels=2) + b"data\0\0\0\0", "2 channels"),
        (wav_header(bits=8) + b"data\0\0\0\0", "8 bits"),
        (wav_header(), "no data"),
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "data before its format"),
    ],
)
def test_a_stream_that_is_not_16_bit_mono_wav_is_refused(stream: bytes, message: str) -> None:
    with pytest.raises(SynthesisError, match=message):
        read_wav_stream(stream)


def test_missing_tools_are_named_with_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthesisError, match=r"espeak-ng is not installed.*apt-get install espeak-ng"):
        EspeakSynthesizer()
    with pytest.raises(PromptFileError, match=r"ffmpeg is not installed.*apt-get install ffmpeg"):
        FfmpegEncoder()
    with pytest.raises(PromptFileError, match=r"ffmpeg is not installed.*converts recordings"):
        FfmpegDecoder()
    with pytest.raises(SynthesisError, match="speed must be 80 to 450"):
        EspeakSynthesizer(speed=20)


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format mp3"):
        build(tiny_prompts(), tmp_path, formats=["mp3"])
    assert not os.listdir(tmp_path)


def test_a_directory_that_cannot_be_written_fails_each_prompt_and_raises_nothing(tmp_path: Path) -> None:
    (tmp_path / "centralita").write_text("a file where the prompt directory should be")

    report = build(tiny_prompts(), tmp_path)

    assert len(report.failures) == 2 and not report.ok
    assert all("cannot write the file" in failure.message for failure in report.failures)
    assert report.manifest_problem is not None
