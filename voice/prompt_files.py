"""The prompt files Asterisk plays: every text-only prompt of the flows, spoken by a `Synthesizer` and
written under Asterisk's sounds directory in the formats it reads, e.g.

    sounds/centralita/es/3f1c0a9e5b2d4c71.wav     8 kHz 16-bit mono WAV
    sounds/centralita/es/3f1c0a9e5b2d4c71.sln16   16 kHz raw signed linear, for wideband calls
    sounds/centralita/es/3f1c0a9e5b2d4c71.ulaw    8 kHz G.711 µ-law, raw

Asterisk picks whichever costs least to send on the channel. A prompt Asterisk cannot find fails the
whole AGI session (`STREAM FILE` answers `result=-1`), so every prompt of a served flow must be here.

The file names come from `voice.prompts` (a hash of language and words), so a changed text is a new file.
`prompts.json` beside them records the words and the voice each file was made with: a file made with the
same voice is not rendered again, one made with another voice or engine version is. Files are written to
a temporary name and renamed, so Asterisk never plays half a file and a build cut short leaves none.

A flow's own recording (`audio: meridiano/es/bienvenida.wav`) is never rendered. Recordings travel with
the flows, in `recordings/` beside the flow files:

    ivr_flows/recordings/meridiano/es/bienvenida.wav  ->  sounds/meridiano/es/bienvenida.{wav,sln16,ulaw}

and are converted to the same formats. A flows directory loaded later overrides an earlier one's
recording, as it does its flows. The manifest keeps the sha256 of the file each was made from, so a
re-recorded file is installed again and an unchanged one is not. A file already in the sounds
directory that the build did not make (an operator's own recording) is never overwritten.
`check_recorded` reports recordings found neither beside the flows nor in the sounds directory.

Formats are converted by ffmpeg: through pydub to write them (`FfmpegEncoder`), directly to read a
recording (`FfmpegDecoder`); `FakeEncoder` and `FakeDecoder` stand in for them in tests.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voice.prompts import AUDIO_EXTENSIONS, PROMPT_DIRECTORY, FlowPrompt
from voice.text_to_speech import Speech, SynthesisError, Synthesizer, read_wav_stream

MANIFEST_NAME = "prompts.json"  # under <sounds>/centralita/
MANIFEST_VERSION = 1
RECORDINGS_DIRECTORY = "recordings"  # in a flows directory, beside the flow files
RECORDING_VOICE_PREFIX = "recording sha256:"  # a manifest entry's voice for an installed recording
DECODE_TIMEOUT_SECONDS = 120.0


class PromptFileError(Exception):
    """A prompt file could not be made: no converter, a conversion that failed, a path outside the
    sounds directory."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    name: str  # also the extension Asterisk looks for
    sample_rate: int
    ffmpeg_format: str
    ffmpeg_options: tuple[str, ...] = ()


FORMATS: Mapping[str, AudioFormat] = {
    # bitexact, no metadata: a plain 44-byte header, without the LIST chunk ffmpeg otherwise adds.
    "wav": AudioFormat(
        "wav", 8000, "wav", ("-acodec", "pcm_s16le", "-fflags", "+bitexact", "-flags:a", "+bitexact")
    ),
    "sln16": AudioFormat("sln16", 16000, "s16le"),
    "ulaw": AudioFormat("ulaw", 8000, "mulaw"),
}
DEFAULT_FORMATS = ("wav", "sln16", "ulaw")


def parse_formats(text: str) -> tuple[str, ...]:
    """`wav,ulaw` -> ("wav", "ulaw"); an unknown or missing name is a ValueError naming the known ones."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ValueError(
            f"unknown format {', '.join(unknown) or '(none given)'}; choose from {', '.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(names))


class AudioEncoder(Protocol):
    def encode(self, speech: Speech, audio_format: AudioFormat) -> bytes: ...


class FfmpegEncoder:
    """Resamples and encodes with ffmpeg, driven by pydub. pydub's own resampling and µ-law go through
    the stdlib `audioop` (deprecated in 3.11, gone in 3.13), so nothing here uses them: pydub only
    hands the PCM to ffmpeg and reads back what ffmpeg wrote. One ffmpeg process a format."""

    def __init__(self) -> None:
        if shutil.which("ffmpeg") is None:
            raise PromptFileError(
                "ffmpeg is not installed (Debian/Ubuntu: apt-get install ffmpeg); "
                "it converts speech to the formats Asterisk plays"
            )
        with warnings.catch_warnings():
            # Importing pydub imports `audioop`, which warns that it is deprecated; pydub falls back to
            # its own copy where audioop is gone (3.13). We never call it. And pydub 0.25.1's regexes
            # have invalid escapes, which warn when it is compiled without a cached .pyc. Imported here,
            # not at the top of the module, because pydub looks for ffmpeg when it is imported.
            warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
            from pydub import AudioSegment
            from pydub.exceptions import CouldntEncodeError

        self._segment = AudioSegment
        self._encode_error = CouldntEncodeError

    def encode(self, speech: Speech, audio_format: AudioFormat) -> bytes:
        segment = self._segment(speech.pcm, sample_width=2, frame_rate=speech.sample_rate, channels=1)
        output = io.BytesIO()
        parameters = ["-ar", str(audio_format.sample_rate), "-ac", "1", *audio_format.ffmpeg_options]
        try:
            segment.export(output, format=audio_format.ffmpeg_format, parameters=parameters)
        except self._encode_error as exc:
            # pydub's message is the whole command and ffmpeg's banner; ffmpeg's complaint is last.
            last = next((line for line in reversed(str(exc).splitlines()) if line.strip()), "")
            raise PromptFileError(f"ffmpeg could not write {audio_format.name}: {last}") from None
        data = output.getvalue()
        if not data:
            raise PromptFileError(f"ffmpeg wrote an empty {audio_format.name}")
        return data


# How ffmpeg reads each kind of recording, by extension; tried in this order. Raw formats have no header,
# so their layout is given. Reads from a pipe: none of these needs to seek.
RECORDING_INPUTS: Mapping[str, tuple[str, ...]] = {
    ".wav": ("-f", "wav"),
    ".wav16": ("-f", "wav"),  # Asterisk's name for a 16 kHz WAV
    ".flac": ("-f", "flac"),
    ".mp3": ("-f", "mp3"),
    ".ogg": ("-f", "ogg"),
    ".gsm": ("-f", "gsm"),
    ".g722": ("-f", "g722"),
    ".ulaw": ("-f", "mulaw", "-ar", "8000", "-ac", "1"),
    ".alaw": ("-f", "alaw", "-ar", "8000", "-ac", "1"),
    ".sln": ("-f", "s16le", "-ar", "8000", "-ac", "1"),
    ".sln16": ("-f", "s16le", "-ar", "16000", "-ac", "1"),
}


class AudioDecoder(Protocol):
    def decode(self, data: bytes, extension: str) -> Speech:
        """The sound of a recording file's bytes; `extension` (".wav") says what kind of file it is."""
        ...


class FfmpegDecoder:
    """Reads a recording with ffmpeg into 16-bit mono PCM at the recording's own rate (the encoder
    resamples once, to each format's rate). Channels are mixed down to one. One ffmpeg process a file."""

    def __init__(self, executable: str = "ffmpeg") -> None:
        found = shutil.which(executable)
        if found is None:
            raise PromptFileError(
                f"{executable} is not installed (Debian/Ubuntu: apt-get install ffmpeg); "
                "it converts recordings to the formats Asterisk plays"
            )
        self._executable = found

    def decode(self, data: bytes, extension: str) -> Speech:
        options = RECORDING_INPUTS.get(extension.lower())
        if options is None:
            raise PromptFileError(f"cannot read {extension} files; use one of {', '.join(RECORDING_INPUTS)}")
        command = [self._executable, "-hide_banner", "-loglevel", "error", *options, "-i", "pipe:0"]
        # A WAV on stdout, rather than raw PCM, because it says the sample rate.
        command += ["-vn", "-ac", "1", "-acodec", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav", "pipe:1"]
        try:
            done = subprocess.run(command, input=data, capture_output=True, timeout=DECODE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise PromptFileError(f"ffmpeg took over {DECODE_TIMEOUT_SECONDS:.0f} s to read it") from None
        except OSError as exc:
            raise PromptFileError(f"cannot run {self._executable}: {exc}") from None
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").splitlines()
            last = next((line.strip() for line in reversed(lines) if line.strip()), "no message")
            raise PromptFileError(f"ffmpeg cannot read it as {extension}: {last}")
        try:
            speech = read_wav_stream(done.stdout)
        except SynthesisError as exc:
            raise PromptFileError(f"ffmpeg's reading of it: {exc}") from None
        if not speech.pcm:
            raise PromptFileError("it has no sound")
        return speech


class FakeDecoder:
    """Reads 16-bit mono WAV recordings only (what the standard library can check without ffmpeg) and
    refuses anything else as ffmpeg refuses a file it cannot read. Records the sizes it read."""

    def __init__(self) -> None:
        self.decoded: list[int] = []

    def decode(self, data: bytes, extension: str) -> Speech:
        if extension.lower() != ".wav":
            raise PromptFileError(f"cannot read {extension} files (the fake reads .wav only)")
        try:
            speech = read_wav_stream(data)
        except SynthesisError as exc:
            raise PromptFileError(f"not a WAV this fake reads: {exc}") from None
        if not speech.pcm:
            raise PromptFileError("it has no sound")
        self.decoded.append(len(data))
        return speech


class FakeEncoder:
    """Writes a line that says what a real encoder would have made; fails for the formats it is told to."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.failing = set(failing)
        self.encoded: list[str] = []

    def encode(self, speech: Speech, audio_format: AudioFormat) -> bytes:
        if audio_format.name in self.failing:
            raise PromptFileError(f"cannot write {audio_format.name}")
        self.encoded.append(audio_format.name)
        samples = len(speech.pcm) // 2
        return f"{audio_format.name} {speech.sample_rate}->{audio_format.sample_rate} {samples}\n".encode()


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """What one prompt file says and was made with: a manifest entry."""

    language: str
    text: str
    voice: str
    formats: tuple[str, ...]


def formats_to_render(
    entry: RenderedPrompt | None,
    *,
    language: str,
    text: str,
    voice: str,
    wanted: Sequence[str],
    present: Callable[[str], bool],
    force: bool = False,
) -> tuple[str, ...]:
    """The formats of one prompt that must be (re)made: all of them when forced or when the file was made
    from other words or with another voice; else those never made or since deleted."""
    if force or entry is None or (entry.language, entry.text, entry.voice) != (language, text, voice):
        return tuple(wanted)
    return tuple(name for name in wanted if name not in entry.formats or not present(name))


def place(prompt: FlowPrompt) -> str:
    """Where a prompt is in the flows, for messages: `banco_es node festivo prompt [en]`."""
    return f"{prompt.flow} node {prompt.node} {prompt.field} [{prompt.language}]"


@dataclass(frozen=True, slots=True)
class PromptFailure:
    file: str
    places: tuple[FlowPrompt, ...]
    message: str

    def __str__(self) -> str:
        others = f"; also {', '.join(map(place, self.places[1:]))}" if len(self.places) > 1 else ""
        return f"{place(self.places[0])} ({self.file}): {self.message}{others}"


@dataclass(frozen=True, slots=True)
class MissingRecording:
    file: str
    places: tuple[FlowPrompt, ...]
    directory: Path
    searched: tuple[Path, ...] = ()  # the flows' recordings/ directories looked in

    def __str__(self) -> str:
        others = f"; also {', '.join(map(place, self.places[1:]))}" if len(self.places) > 1 else ""
        looked = ", ".join(AUDIO_EXTENSIONS[:3])
        beside = f" nor in {', '.join(map(str, self.searched))}" if self.searched else ""
        return (
            f"{place(self.places[0])}: recording {self.file} is not in {self.directory} "
            f"(looked for {self.file}{{{looked}, …}}){beside}{others}"
        )


@dataclass(frozen=True, slots=True)
class KeptRecording:
    """A recording in the sounds directory that the build did not make, left in place of the flows' one."""

    file: str
    source: Path
    directory: Path
    unsure: bool = False  # the manifest was unreadable: the build may have made it, and cannot tell

    def __str__(self) -> str:
        why = (
            "the manifest is unreadable, so prompts build cannot tell whether it made it"
            if self.unsure
            else "prompts build did not make it, so it is not replaced"
        )
        delete = f"delete {self.directory / self.file}.* to install {self.source} instead"
        return f"kept {self.file} in {self.directory}: {why}; {delete}"


@dataclass
class BuildReport:
    """What a build did, one entry a file (a prompt used by several nodes or flows is one file), each
    file in one of: rendered, installed, cached, recorded, failures, missing_recordings."""

    rendered: list[str] = field(default_factory=list)  # text spoken by the synthesizer, now
    installed: list[str] = field(default_factory=list)  # recordings from the flows, converted now
    cached: list[str] = field(default_factory=list)  # either kind, already there and up to date
    # Recordings used as they are in the sounds directory: not beside the flows, or kept (below). Without
    # check_recorded, also those that are nowhere: they are not looked for.
    recorded: list[str] = field(default_factory=list)
    kept: list[KeptRecording] = field(default_factory=list)
    failures: list[PromptFailure] = field(default_factory=list)
    missing_recordings: list[MissingRecording] = field(default_factory=list)
    manifest_problem: str | None = None  # a manifest that could not be read or written: a warning

    @property
    def ok(self) -> bool:
        return not self.failures and not self.missing_recordings


@dataclass(frozen=True, slots=True)
class Recording:
    """A flow's recording as found beside the flows: where, and its bytes (read once, so the file that
    is hashed is the file that is installed)."""

    path: Path
    data: bytes

    @property
    def voice(self) -> str:
        """What the installed files are made from, for the manifest: the recording's content."""
        return RECORDING_VOICE_PREFIX + hashlib.sha256(self.data).hexdigest()


def find_recording(file: str, flow_directories: Sequence[Path]) -> Path | None:
    """The file to install for the recording the flows call `file` (`meridiano/es/bienvenida`, the name
    without its extension): `<flows dir>/recordings/meridiano/es/bienvenida.wav` (or .mp3, .sln16…, see
    RECORDING_INPUTS) in the last of `flow_directories` that has one, as a later directory's flows
    replace an earlier one's. Two files for one name in one directory is an error: which is meant?"""
    names = [f"{file}{extension}" for extension in RECORDING_INPUTS]
    if Path(file).suffix.lower() in RECORDING_INPUTS:  # `audio: x/y.flac`: Asterisk plays x/y.flac.<fmt>
        names.insert(0, file)
    for directory in reversed(flow_directories):
        base = directory / RECORDINGS_DIRECTORY
        found = [base / name for name in names if (base / name).is_file()]
        if len(found) > 1:
            listed = ", ".join(str(path.relative_to(base)) for path in found)
            raise PromptFileError(f"{len(found)} recordings for it in {base}: {listed}; keep one")
        if found:
            # Names come from the flow schema (relative, no ".."); a symlink may point anywhere, which is
            # the operator's choice, so only the name is checked.
            if not found[0].absolute().is_relative_to(base.absolute()):
                raise PromptFileError(f"{file} is outside {base}")
            return found[0]
    return None


def recording_directories(flow_directories: Sequence[Path]) -> tuple[Path, ...]:
    """Where recordings are looked for, in the order flows are loaded (for messages)."""
    return tuple(directory / RECORDINGS_DIRECTORY for directory in flow_directories)


@dataclass(frozen=True, slots=True)
class _Job:
    file: str
    language: str
    text: str
    voice: str
    formats: tuple[str, ...]
    places: tuple[FlowPrompt, ...]
    recording: Recording | None = None  # install this instead of speaking the text


def build_prompts(
    prompts: Iterable[FlowPrompt],
    *,
    out: Path,
    synthesizer: Synthesizer,
    encoder: AudioEncoder,
    decoder: AudioDecoder,
    flow_directories: Sequence[Path] = (),
    formats: Sequence[str] = DEFAULT_FORMATS,
    force: bool = False,
    check_recorded: bool = False,
    jobs: int | None = None,
) -> BuildReport:
    """Renders every text-only prompt of `prompts` into `out`, and installs every recording found in the
    `recordings/` directory of `flow_directories` (in the order flows are loaded: a later one overrides),
    unless it is there already, `jobs` at a time (threads: the work is in the engine and ffmpeg
    processes). A prompt that fails is reported with where it is used and does not stop the others."""
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    report = BuildReport()
    by_file: dict[str, list[FlowPrompt]] = {}
    for prompt in prompts:
        by_file.setdefault(prompt.file, []).append(prompt)

    manifest_path = out / PROMPT_DIRECTORY / MANIFEST_NAME
    manifest, report.manifest_problem = load_manifest(manifest_path)
    pending: list[_Job] = []
    for file, places in by_file.items():
        first = places[0]
        try:
            if any(prompt.recorded for prompt in places):
                recording = _recording_to_install(file, out, manifest, flow_directories, report)
                if recording is None:
                    if check_recorded and not _recording_exists(out, file):
                        searched = recording_directories(flow_directories)
                        report.missing_recordings.append(MissingRecording(file, tuple(places), out, searched))
                    else:
                        report.recorded.append(file)
                    continue
                # A recording's words are whatever was said: only its content decides if it is new.
                text, voice = "", recording.voice
            elif first.text is None:  # the schema refuses a prompt with neither; say so rather than crash
                raise PromptFileError("the prompt has neither text nor an audio file")
            else:
                recording, text, voice = None, first.text, synthesizer.voice_of(first.language)
            to_make = formats_to_render(
                manifest.get(file),
                language=first.language,
                text=text,
                voice=voice,
                wanted=formats,
                present=functools.partial(_has_format, out, file),
                force=force,
            )
        except (PromptFileError, SynthesisError) as exc:
            report.failures.append(PromptFailure(file, tuple(places), str(exc)))
            continue
        if to_make:
            pending.append(_Job(file, first.language, text, voice, to_make, tuple(places), recording))
        else:
            report.cached.append(file)

    changed = report.manifest_problem is not None
    try:
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            running: dict[Future[None], _Job] = {
                pool.submit(_render, job, out, synthesizer, encoder, decoder): job for job in pending
            }
            try:
                for done in as_completed(running):
                    job = running[done]
                    error = done.exception()
                    if error is None:
                        (report.rendered if job.recording is None else report.installed).append(job.file)
                        manifest[job.file] = _made(manifest.get(job.file), job)
                        changed = True
                    else:
                        report.failures.append(PromptFailure(job.file, job.places, _message(error)))
            finally:
                for future in running:  # Ctrl-C: do not start the rest
                    future.cancel()
    finally:
        if changed:  # even when cut short: what was rendered need not be rendered again
            try:
                save_manifest(manifest_path, manifest)
            except OSError as exc:  # the files are there; the next build renders them again
                report.manifest_problem = f"cannot write {manifest_path} ({exc}); they will be rendered again"
    return report


def _recording_to_install(
    file: str,
    out: Path,
    manifest: Mapping[str, RenderedPrompt],
    flow_directories: Sequence[Path],
    report: BuildReport,
) -> Recording | None:
    """The recording beside the flows to install as `file`, or None: there is none, or the sounds
    directory has a file of that name that this build did not make (it is the operator's: kept)."""
    source = find_recording(file, flow_directories)
    if source is None:
        return None
    if file not in manifest and _recording_exists(out, file):
        report.kept.append(KeptRecording(file, source, out, unsure=report.manifest_problem is not None))
        return None
    try:
        return Recording(source, source.read_bytes())
    except OSError as exc:
        raise PromptFileError(f"cannot read {source}: {exc.strerror or exc}") from None


def _render(
    job: _Job, out: Path, synthesizer: Synthesizer, encoder: AudioEncoder, decoder: AudioDecoder
) -> None:
    if job.recording is None:
        speech = synthesizer.synthesize(job.text, job.language)
    else:
        try:
            speech = decoder.decode(job.recording.data, job.recording.path.suffix)
        except PromptFileError as exc:
            raise PromptFileError(f"recording {job.recording.path}: {exc}") from None
    # Every format is made before any is written: a failure leaves the old files, all of a voice.
    made = {name: encoder.encode(speech, FORMATS[name]) for name in job.formats}
    for name, data in made.items():
        write_atomically(_file_path(out, job.file, name), data)


def _made(previous: RenderedPrompt | None, job: _Job) -> RenderedPrompt:
    formats = set(job.formats)
    if previous is not None and (previous.language, previous.text, previous.voice) == (
        job.language,
        job.text,
        job.voice,
    ):
        formats |= set(previous.formats)
    return RenderedPrompt(job.language, job.text, job.voice, tuple(sorted(formats)))


def _message(error: BaseException) -> str:
    if isinstance(error, PromptFileError | SynthesisError):
        return str(error)
    if isinstance(error, OSError):
        return f"cannot write the file: {error}"
    return f"{type(error).__name__}: {error}"  # a bug: still one prompt's failure, not the build's


def _file_path(out: Path, file: str, extension: str) -> Path:
    path = out / f"{file}.{extension}"
    # Names come from the flow schema (relative, no "..") and from hashes; this guards the guard.
    if not path.resolve().is_relative_to(out.resolve()):
        raise PromptFileError(f"{file} is outside {out}")
    return path


def _has_format(out: Path, file: str, extension: str) -> bool:
    return _file_path(out, file, extension).is_file()


def _recording_exists(out: Path, file: str) -> bool:
    return any(_has_format(out, file, extension.lstrip(".")) for extension in AUDIO_EXTENSIONS)


def write_atomically(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same directory and a rename, readable by
    Asterisk, which usually runs as another user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load_manifest(path: Path) -> tuple[dict[str, RenderedPrompt], str | None]:
    """The manifest's entries, and what was wrong with it if it could not be read (a missing one is
    not wrong). A bad manifest costs a re-render, never a failure: it is only a cache."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{path}: unreadable ({exc}); rendering every prompt again"
    entries: dict[str, RenderedPrompt] = {}
    prompts: Any = raw.get("prompts") if isinstance(raw, dict) else None
    if not isinstance(prompts, dict) or raw.get("version") != MANIFEST_VERSION:
        return {}, f"{path}: not a version {MANIFEST_VERSION} prompt manifest; rendering every prompt again"
    for file, entry in prompts.items():
        with contextlib.suppress(KeyError, TypeError, AttributeError):
            language, text, voice = entry["language"], entry["text"], entry["voice"]
            formats = entry["formats"]
            if isinstance(formats, list) and all(
                isinstance(value, str) for value in (language, text, voice, *formats)
            ):
                entries[file] = RenderedPrompt(language, text, voice, tuple(formats))
    return entries, None


def save_manifest(path: Path, entries: Mapping[str, RenderedPrompt]) -> None:
    document = {
        "version": MANIFEST_VERSION,
        "prompts": {
            file: {
                "language": entry.language,
                "text": entry.text,
                "voice": entry.voice,
                "formats": list(entry.formats),
            }
            for file, entry in sorted(entries.items())
        },
    }
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    write_atomically(path, text.encode())
