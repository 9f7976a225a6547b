"""Makes the stand-in recordings for the prompts the flows say are recorded (`audio:`), until the real
ones are: the flow's own text for that prompt, spoken by espeak-ng with another voice than the one
`centralita prompts build` speaks text-only prompts with, so a listener can tell them apart.

    .venv/bin/python ivr_flows/recordings/make_standins.py [--flows-dir DIR] [--force]

Needs espeak-ng and ffmpeg (with ffprobe), and the project importable (the texts are read with its flow
loader, so a stand-in says what the flow says). Writes `<flows dir>/recordings/<audio name>.wav`, 8 kHz
16-bit mono, with a WAV comment marking it as a stand-in. Run again after a text changes: a stand-in
whose text or voice changed is made again, an unchanged one is left. A file without the mark is a real
recording and is never touched, nor is a name that has a real recording in another format (.mp3…).
Not run by the tests; `prompts build` installs whatever is here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voice.ivr.loader import FLOW_SUFFIXES, FlowError, load_flow
from voice.prompt_files import RECORDING_INPUTS, RECORDINGS_DIRECTORY
from voice.prompts import audio_name

# Other voices than prompts build's defaults (`es`, and `en`, a British one): female variants, and a US
# accent for English.
STANDIN_VOICES = {"es": "es+f3", "en": "en-us+f2"}
SPEED = 150  # words a minute, as prompts build
AMPLITUDE = 85  # below espeak-ng's full scale, so resampling to 8 kHz does not clip
SAMPLE_RATE = 8000
MARK = "centralita stand-in"


@dataclass(frozen=True)
class Standin:
    path: Path  # <flows dir>/recordings/<audio name>.wav
    language: str
    text: str
    where: str  # flow and node, for messages

    @property
    def voice(self) -> str:
        return STANDIN_VOICES.get(self.language, f"{self.language}+f3")

    @property
    def comment(self) -> str:
        digest = hashlib.sha256(self.text.encode()).hexdigest()[:16]
        return f"{MARK}; espeak-ng voice={self.voice} speed={SPEED}; text sha256={digest}"


def standins(flows_dir: Path) -> tuple[list[Standin], list[str]]:
    """Every recording the flows in `flows_dir` name, with the words to say; and what is wrong."""
    found: dict[Path, Standin] = {}
    problems: list[str] = []
    recordings = flows_dir / RECORDINGS_DIRECTORY
    for path in sorted(p for p in flows_dir.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file()):
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems.append(f"{path.name}: not read: {exc}")
            continue
        for node_id, node in flow.nodes.items():
            for field, prompt in node.prompts():
                for language, variant in prompt.items():
                    if variant.audio is None:
                        continue
                    where = f"{flow.name} node {node_id} {field} [{language}]"
                    if variant.text is None:
                        problems.append(f"{where}: {variant.audio} has no text to say; record it")
                        continue
                    standin = Standin(
                        recordings / f"{audio_name(variant.audio)}.wav", language, variant.text, where
                    )
                    other = found.setdefault(standin.path, standin)
                    if (other.language, other.text) != (standin.language, standin.text):
                        problems.append(f"{where}: says other words than {other.where} in {variant.audio}")
    return list(found.values()), problems


def comment_of(path: Path) -> str:
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format_tags=comment",
            "-of",
            "default=nw=1:nk=1",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def real_recording(standin: Standin) -> Path | None:
    """A recording of this name that is not a stand-in, if there is one."""
    base = standin.path.with_suffix("")
    for extension in RECORDING_INPUTS:
        path = base.with_name(base.name + extension)
        if path.is_file() and (path != standin.path or not comment_of(path).startswith(MARK)):
            return path
    return None


def make(standin: Standin) -> None:
    standin.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        spoken = Path(scratch) / "spoken.wav"
        speak = ["espeak-ng", "-v", standin.voice, "-s", str(SPEED), "-a", str(AMPLITUDE), "-w", str(spoken)]
        subprocess.run([*speak, "--", standin.text], check=True, capture_output=True)
        converted = Path(scratch) / "converted.wav"
        tag = ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-metadata", f"comment={standin.comment}"]
        convert = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(spoken)]
        convert += ["-ar", str(SAMPLE_RATE), "-ac", "1", "-acodec", "pcm_s16le", *tag, str(converted)]
        subprocess.run(convert, check=True, capture_output=True)
        data = converted.read_bytes()
    temporary = standin.path.with_name(f".{standin.path.name}.tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, standin.path)  # never half a file where prompts build looks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--flows-dir",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the flows to make stand-ins for (default: the directory above this script)",
    )
    parser.add_argument("--force", action="store_true", help="make every stand-in again, even unchanged")
    arguments = parser.parse_args()

    wanted, problems = standins(arguments.flows_dir)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    failed = 0
    for standin in wanted:
        real = real_recording(standin)
        if real is not None:
            print(f"kept   {real} (a real recording)")
        elif not arguments.force and standin.path.is_file() and comment_of(standin.path) == standin.comment:
            print(f"same   {standin.path}")
        else:
            try:
                make(standin)
            except subprocess.CalledProcessError as exc:
                message = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
                print(f"error: {standin.where}: {exc.cmd[0]} failed: {message}", file=sys.stderr)
                failed += 1
                continue
            print(f"made   {standin.path} ({standin.voice}, {standin.path.stat().st_size // 1024} KB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
