"""What ARI's router and AMI's dispatcher hand back for every registration."""

from __future__ import annotations

from collections.abc import Callable


class Subscription:
    """`cancel()` (idempotent) stops the deliveries."""

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove: Callable[[], None] | None = remove

    @property
    def active(self) -> bool:
        return self._remove is not None

    def cancel(self) -> None:
        remove, self._remove = self._remove, None
        if remove is not None:
            remove()
