"""What a direct sink writes to, without a server: a list of the writes."""

from __future__ import annotations

__all__ = ["RecordingSocket", "unused_send"]


class RecordingSocket:
    """A DirectSocket that keeps what is written to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.full = False  # its buffer past the high-water mark: nothing more is written

    def write_if_room(self, data: bytes) -> bool:
        if self.full:
            return False
        self.written.append(data)
        return True

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def unused_send(message: object) -> None:
    raise AssertionError("a direct sink writes its frames to the socket")
