"""Voicemail transcripts: what a caller said in a voicemail, as text on the call's timeline, when a
recogniser that takes free-form speech is configured for the call's language.

The IVR runner (`voice.ivr.call_runner`) hands over the recording's name, as Asterisk named it, once the
caller has left the message, and goes on with the call: `VoicemailTranscriber.transcribe` runs in a task
of its own, and the transcript becomes a touchpoint of the call, even after it has ended.

Which engines can: vosk with a model for the language (`vosk_engine.free_form`: no grammar, the model's
whole vocabulary). pocketsphinx's shipped model is grammar-only, so English voicemail without a vosk
English model is not transcribed; the log says so once per language.

The file: Asterisk records voicemail as `wav` (8 kHz, 16-bit, mono) into the directory it shares with
Centralita (`CENTRALITA_ASTERISK_RECORDINGS_PATH` there, `…_DIR` here); a recording elsewhere (under
Asterisk's sounds directory, by default) cannot be read, and is not transcribed.

Pieces: the audio is cut into pieces of at most `max_piece_ms`, each at the quietest 100 ms near its
limit (`pieces`, pure), and each piece is decoded in a stream of its own, one after the other. A
recognition worker decodes one message at a time: a two-minute message fed at once would hold every
live call's speech turn behind it for as long as it takes to decode; between pieces their audio gets
through. The transcript joins the pieces' texts; its confidence is theirs, weighted by length.
"""

from __future__ import annotations

import io
import logging
import math
import sys
import time
import wave
from array import array
from dataclasses import dataclass, field

from voice.ivr.call_runner import VoicemailTranscript
from voice.speech.recognition import SAMPLE_RATE
from voice.speech.recognition_pool import SpeechRecognition
from voice.speech.recorded_turn import RecordingsMount, RecordingUnusable
from voice.speech.vosk_engine import free_form

logger = logging.getLogger(__name__)

FORMAT = "wav"  # what AgiVoicePort.record asks Asterisk for
_FRAME_MS = 100


def pieces(pcm: bytes, *, max_piece_ms: int = 15_000, search_ms: int = 5_000) -> list[tuple[int, int]]:
    """(start, end) byte offsets of 16-bit 8 kHz audio cut into pieces of at most `max_piece_ms`, each
    cut in the middle of the quietest 100 ms frame of the last `search_ms` before the limit (pure)."""
    if max_piece_ms < 2 * _FRAME_MS or not 0 < search_ms <= max_piece_ms:
        raise ValueError("max_piece_ms must be at least 200 ms, search_ms in (0, max_piece_ms]")
    frame_bytes = SAMPLE_RATE * _FRAME_MS // 1000 * 2
    total = len(pcm) - len(pcm) % 2
    limit = max_piece_ms // _FRAME_MS * frame_bytes
    cuts: list[tuple[int, int]] = []
    start = 0
    while total - start > limit:
        first = start + (max_piece_ms - search_ms) // _FRAME_MS * frame_bytes
        candidates = range(max(first, start + frame_bytes), start + limit - frame_bytes + 1, frame_bytes)
        quietest = min(candidates, key=lambda offset: _energy(pcm[offset : offset + frame_bytes]))
        cut = quietest + frame_bytes // 2
        cut -= cut % 2
        cuts.append((start, cut))
        start = cut
    if total > start:
        cuts.append((start, total))
    return cuts


def _energy(frame: bytes) -> float:
    samples = array("h")
    samples.frombytes(frame[: len(frame) - len(frame) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return math.fsum(sample * sample for sample in samples)


def wav_pcm(data: bytes, *, name: str) -> bytes:
    """The audio of a WAV file Asterisk wrote: 8 kHz 16-bit mono, else RecordingUnusable."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if shape != (1, 2, SAMPLE_RATE):
                raise RecordingUnusable(
                    f"{name}: {shape[0]} channel(s), {8 * shape[1]}-bit, {shape[2]} Hz; "
                    f"expected mono 16-bit {SAMPLE_RATE} Hz (Asterisk's wav)"
                )
            return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise RecordingUnusable(f"{name} is not a WAV file Asterisk wrote: {exc}") from exc


@dataclass
class VoicemailTranscriber:
    """`voice.ivr.call_runner.VoicemailTranscriber` on the recognition workers. `free_form_languages`:
    the primary subtags a free-form recogniser (vosk) is loaded for; `grammar_languages`: those only a
    grammar recogniser (pocketsphinx) hears, for the log."""

    recognition: SpeechRecognition
    mount: RecordingsMount
    free_form_languages: frozenset[str]
    grammar_languages: frozenset[str] = frozenset()
    max_piece_ms: int = 15_000
    file_wait_seconds: float = 2.0

    _told: set[str] = field(default_factory=set, init=False, repr=False)

    def transcribes(self, recording: str, language: str) -> bool:
        primary = language.split("-")[0].lower()
        if primary not in self.free_form_languages:
            self._once(
                primary,
                "voicemail in %r is not transcribed: %s",
                primary,
                "pocketsphinx recognises grammars only (configure a vosk model for it)"
                if primary in self.grammar_languages
                else "no free-form speech recogniser (vosk model) is configured for it",
            )
            return False
        if self.mount.local_path(recording, FORMAT) is None:
            self._once(
                f"outside:{recording.rsplit('/', 1)[0]}",
                "voicemail recorded at %s is not transcribed: it is outside %s, the directory Centralita "
                "reads (CENTRALITA_ASTERISK_RECORDINGS_PATH)",
                recording,
                self.mount.asterisk_path,
            )
            return False
        return True

    async def transcribe(self, recording: str, language: str, *, call_id: str) -> VoicemailTranscript:
        """The transcript of the voicemail Asterisk recorded as `recording` (its name, no extension).
        Raises RecordingUnusable when the file cannot be read, RecognitionError when no engine can."""
        started = time.perf_counter()
        path = self.mount.local_path(recording, FORMAT)
        if path is None:
            raise RecordingUnusable(f"{recording} is outside {self.mount.asterisk_path}")
        pcm = wav_pcm(await self.mount.read(path, wait_seconds=self.file_wait_seconds), name=str(path))
        texts: list[str] = []
        weighted = 0.0
        heard_bytes = 0
        engine = ""
        for start, end in pieces(pcm, max_piece_ms=self.max_piece_ms):
            async with self.recognition.stream(free_form(language)) as stream:
                await stream.feed(pcm[start:end])
                result = await stream.finish()
            engine = engine or result.engine
            if result.text:
                texts.append(result.text)
                weighted += result.confidence * (end - start)
                heard_bytes += end - start
        transcript = VoicemailTranscript(
            text=" ".join(texts),
            confidence=round(weighted / heard_bytes, 3) if heard_bytes else 0.0,
            engine=engine,
            audio_ms=len(pcm) * 1000 // (2 * SAMPLE_RATE),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
        logger.info(
            "call %s: voicemail %s transcribed by %s in %d ms (%d ms of audio)",
            call_id,
            recording,
            transcript.engine,
            transcript.latency_ms,
            transcript.audio_ms,
        )
        return transcript

    def _once(self, key: str, message: str, *arguments: object) -> None:
        if key not in self._told:
            self._told.add(key)
            logger.info(message, *arguments)
