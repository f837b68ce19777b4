"""Capture, the pipeline's first stage: committed record changes become events, handed
on in commit order (changes.py) or, where the database has a transactional outbox,
written as rows in the committing transaction itself for the relay to publish
(outbox.py)."""

from .changes import ChangeCapture
from .outbox import OutboxWriter, install_outboxes

__all__ = ["ChangeCapture", "OutboxWriter", "install_outboxes"]
