"""What a queue node with `announce_wait: true` says about the estimated wait (pure).

The number is said inside a prompt of its own, one per language and *minute bucket*, rather than with
Asterisk's SAY NUMBER: every text is known in advance, so `centralita prompts build` renders each one in
the same voice as the rest of the flow (SAY NUMBER would switch to Asterisk's recorded voice in the middle
of the sentence, needs Asterisk's core sounds installed in every language, and is not a Play the
engine can hand any runner). A precise count means little to a caller anyway: the estimate is rounded
*up* to the next bucket, so nobody is promised less than the estimate.

    0 minutes (an agent is free)   nothing is said
    1, 2, 3, 4, 5, 10, 15, 20, 30  "about N minutes"
    more than 30                   "more than 30 minutes"
"""

from __future__ import annotations

BUCKETS = (1, 2, 3, 4, 5, 10, 15, 20, 30)

# Per primary language subtag: one minute, N minutes ({minutes}), more than the last bucket.
_TEXTS: dict[str, tuple[str, str, str]] = {
    "en": (
        "Your estimated wait is about one minute.",
        "Your estimated wait is about {minutes} minutes.",
        "Your estimated wait is more than {minutes} minutes.",
    ),
    "es": (
        "El tiempo de espera estimado es de un minuto aproximadamente.",
        "El tiempo de espera estimado es de unos {minutes} minutos.",
        "El tiempo de espera estimado es de más de {minutes} minutos.",
    ),
}


def announces(language: str) -> bool:
    """Whether there are wait texts for `language` ("en-GB" uses the "en" ones)."""
    return _primary(language) in _TEXTS


def bucket(minutes: int) -> int | None:
    """The bucket an estimate of `minutes` (rounded up already) is said as; None: more than the last."""
    for size in BUCKETS:
        if minutes <= size:
            return size
    return None


def wait_text(language: str, minutes: int) -> str | None:
    """What to say for an estimate of `minutes`; None when there is nothing to say (0 minutes) or no
    text in that language."""
    texts = _TEXTS.get(_primary(language))
    if texts is None or minutes <= 0:
        return None
    size = bucket(minutes)
    if size is None:
        return texts[2].format(minutes=BUCKETS[-1])
    if size == 1:
        return texts[0]
    return texts[1].format(minutes=size)


def all_wait_texts(language: str) -> list[str]:
    """Every text `wait_text` can return in `language`, for `prompts build`."""
    if not announces(language):
        return []
    said = [wait_text(language, size) for size in BUCKETS] + [wait_text(language, BUCKETS[-1] + 1)]
    return [text for text in said if text is not None]


def _primary(language: str) -> str:
    return language.split("-", 1)[0].lower()
