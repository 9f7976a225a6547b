"""What a caller hears before an agent answers when the queue may record the call (pure).

One fixed sentence per language, said as a prompt of its own (`voice.prompts.prompt_name`), so that
`centralita prompts build` renders it in the flow's voice like every other prompt: `flow_prompts` lists
it for every queue node, in every language of the flow, because whether a queue records is the queue's
setting (`queues.recording`), which may change after the prompts were built. A language without its own
sentence hears the English one, in a file named for the call's language (as every prompt of a flow in
that language is): a recorded caller is always told.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

# Per primary language subtag.
_TEXTS: dict[str, str] = {
    "en": "This call may be recorded for quality and training purposes.",
    "es": "Esta llamada puede ser grabada con fines de calidad y formación.",
}


def consent_text(language: str) -> str:
    """The notice in `language` ("es-ES" uses the "es" one), English when there is none."""
    return _TEXTS.get(language.split("-", 1)[0].lower(), _TEXTS[DEFAULT_LANGUAGE])


def has_own_text(language: str) -> bool:
    return language.split("-", 1)[0].lower() in _TEXTS
