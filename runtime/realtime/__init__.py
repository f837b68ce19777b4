"""Realtime pub/sub, the runtime's wing for it: `Realtime(app)` and what apps use of it.

Record changes and broadcasts go down a pipeline whose stages are this package's
folders, in the data's order:

    capture.py      committed record changes become events
    events.py       the event: typed values, hidden fields left out, or custom data
    publishing/     one ordered hand-off to a backend: ids, order, history
    fanout/         who wants each event, who may see it and in what shape
    connections/    each client's bounded queue, written once per turn of the loop
    transports/     WebSocket and SSE, each writing its own wire format

`runtime/realtime_broker.py` ties the stages together, with its jobs in `broker/`
(a connection's lifecycle, subscribing with snapshots and replays, who may subscribe
to what, presence). Clients come in through `clients/` (one door for both transports,
one router for every command), served by `endpoints.py` in front of the app. A module
imports only its own layer and those below it (tests/test_architecture.py).
"""

from __future__ import annotations

from .channels import Channel
from .clients.handlers import Sender
from .endpoints import client_script_response
from .extension import Realtime
from .publishing.publisher import BrokerUnavailable

__all__ = ["BrokerUnavailable", "Channel", "Realtime", "Sender", "client_script_response"]
