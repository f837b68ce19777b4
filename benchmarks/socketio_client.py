"""The load client's Socket.IO v4 subscriber: Engine.IO v4 over a plain WebSocket
(picows), as a Socket.IO client speaks it with `transports: ["websocket"]`.

`0{…}` opens the Engine.IO session; the client connects to the main namespace with
`40` and is registered once `40{…}` comes back; events come as `42["event",{…}]`;
the server's ping `2` is answered with the pong `3`.
"""

from __future__ import annotations

import time

from picows import WSFrame, WSMsgType, WSTransport

from .subscribers import EventSink, WsSubscriber

__all__ = ["SocketIoSubscriber"]

OPEN = b"0"
CONNECT = b"40"
EVENT_PACKET = b"42"
PING, PONG = b"2", b"3"


class SocketIoSubscriber(WsSubscriber):
    def __init__(self, sink: EventSink) -> None:
        super().__init__(sink, ())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is not WSMsgType.TEXT:
            super().on_ws_frame(transport, frame)  # a close, or a protocol ping
            return
        data = frame.get_payload_as_bytes()
        if data.startswith(EVENT_PACKET):
            self.sink.events(self, data, 1, time.perf_counter())
        elif data == PING:
            self.pings += 1
            transport.send(WSMsgType.TEXT, PONG)
        elif data.startswith(CONNECT):
            self.subscribed = 1
            if not self.ready.done():
                self.ready.set_result(None)
        elif data.startswith(OPEN):
            transport.send(WSMsgType.TEXT, CONNECT)
        elif data.startswith(b"44") or data.startswith(b"41"):  # refused, or sent away
            self.errors.append(data[:300])
