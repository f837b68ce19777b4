"""The access log as tests read it (tests/conftest.py's `access_log` fixture): the
runtime.access logger's records, with a wait for the one a test expects."""

from __future__ import annotations

import logging
import threading

from tests.support import TIMEOUT

__all__ = ["Capture"]


class Capture(logging.Handler):
    """The records of one logger, with a wait for the one a test expects."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def wait_for(self, text: str) -> list[logging.LogRecord]:
        def matching() -> list[logging.LogRecord]:
            return [r for r in self.records if text in r.getMessage()]

        with self._changed:
            assert self._changed.wait_for(matching, TIMEOUT), [r.getMessage() for r in self.records]
            return matching()
