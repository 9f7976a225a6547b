"""Prompt file names: what a runner asks Asterisk to play for a prompt of a flow.

Asterisk plays files, not text. A prompt variant with an `audio` file plays that file; one with text
only plays a file whose name is a pure function of (language, text):

    centralita/<language>/<first 16 hex digits of sha256(language + "\\n" + text)>

so that `centralita prompts build` (text-to-speech into Asterisk's sounds directory) and every runner
agree on the name without a table in between, and a changed text gets a new file instead of playing the
old recording. The name has no extension: Asterisk picks the best format it finds (.wav, .sln16, .ulaw…);
for the same reason the extension of a flow's own audio file is dropped.

`flow_prompts` lists every (language, text, file) the engine can ask one flow to play — the work list of
`prompts build`, and how the console caller turns a file name back into the words the caller hears.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from voice.ivr.actions import Play
from voice.ivr.recording_consent import consent_text
from voice.ivr.schema import Flow, MenuNode, PromptVariant, QueueNode
from voice.ivr.wait_announcement import all_wait_texts

PROMPT_DIRECTORY = "centralita"
# What Asterisk can play; a flow may name its recording with one of these and it is dropped.
AUDIO_EXTENSIONS = (".wav", ".wav16", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".g729", ".mp3")


def prompt_name(language: str, text: str) -> str:
    """The file a text-only prompt is rendered to, e.g. `centralita/es/3f1c0a9e5b2d4c71`."""
    digest = hashlib.sha256(f"{language}\n{text}".encode()).hexdigest()[:16]
    return f"{PROMPT_DIRECTORY}/{language}/{digest}"


def audio_name(audio: str) -> str:
    """A flow's audio file as Asterisk names it: without its extension."""
    lowered = audio.lower()
    for extension in AUDIO_EXTENSIONS:
        if lowered.endswith(extension):
            return audio[: -len(extension)]
    return audio


@dataclass(frozen=True, slots=True)
class PromptAudio:
    """One prompt as a runner plays it: the file, and the words (for logs, TTS, the console caller)."""

    file: str
    text: str | None
    language: str


def prompt_audio(play: Play) -> PromptAudio:
    """The file to play for a Play action: the flow's own recording if it has one, else the TTS file."""
    if play.audio:
        return PromptAudio(audio_name(play.audio), play.text, play.language)
    if play.text is None:  # the schema refuses a prompt without both; keep the type checker honest
        raise ValueError("a Play needs a text or an audio file")
    return PromptAudio(prompt_name(play.language, play.text), play.text, play.language)


@dataclass(frozen=True, slots=True)
class FlowPrompt:
    flow: str
    node: str
    field: str
    language: str
    text: str | None
    file: str
    recorded: bool  # the flow names its own audio file; TTS renders only the others


def flow_prompts(flow: Flow) -> list[FlowPrompt]:
    """Every prompt the engine can play in `flow`, in every language of the flow.

    Mirrors the engine: a language missing from a prompt falls back to the default language (and then
    to the first one), keeping the call's language in the file name; a menu's confirm prompt is
    listed once per option, with `{option}` filled in as the engine fills it; a queue node that
    announces the wait lists each of its texts (`voice.ivr.wait_announcement`) in every language, and
    every queue node the recording notice (`voice.ivr.recording_consent`) in every language.
    """
    found: list[FlowPrompt] = []
    for node_id, node in flow.nodes.items():
        prompts: list[tuple[str, Mapping[str, PromptVariant]]] = list(node.prompts())
        for field, prompt in prompts:
            for language in flow.languages:
                variant = (
                    prompt.get(language) or prompt.get(flow.default_language) or next(iter(prompt.values()))
                )
                for text in _texts(node, field, variant, language):
                    play = Play(text=text, audio=variant.audio, language=language, barge_in=False)
                    audio = prompt_audio(play)
                    found.append(
                        FlowPrompt(
                            flow.name, node_id, field, language, text, audio.file, variant.audio is not None
                        )
                    )
        if isinstance(node, QueueNode) and node.announce_wait:
            for language in flow.languages:
                for text in all_wait_texts(language):
                    file = prompt_name(language, text)
                    found.append(FlowPrompt(flow.name, node_id, "announce_wait", language, text, file, False))
        if isinstance(node, QueueNode):  # whether the queue records is its own setting: always listed
            for language in flow.languages:
                text = consent_text(language)
                file = prompt_name(language, text)
                found.append(FlowPrompt(flow.name, node_id, "recording_consent", language, text, file, False))
    return found


def _texts(node: object, field: str, variant: PromptVariant, language: str) -> list[str | None]:
    if not (isinstance(node, MenuNode) and field == "confirm_prompt" and variant.text):
        return [variant.text]
    texts: list[str | None] = []
    for key, option in node.options.items():
        said = option.phrases.get(language) or [key]
        texts.append(variant.text.replace("{option}", said[0]))
    return texts


def prompt_texts(flows: Iterable[Flow]) -> dict[str, str]:
    """File name -> the words it says, for every prompt of `flows` that has words."""
    return {prompt.file: prompt.text for flow in flows for prompt in flow_prompts(flow) if prompt.text}
