"""The one error of the filter language: what is wrong, and where."""

from __future__ import annotations

__all__ = ["FilterError"]


class FilterError(ValueError):
    """A filter that cannot be used: `position` is the 0-based index of the character
    (a code point of the expression) where the trouble starts."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position
