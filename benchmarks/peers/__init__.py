"""The peers: the same bare fan-out written plainly on other Python stacks.

Each is a small script run as its own process on 127.0.0.1 and a free port, printing
`port=<port>` (and `publish_port=<port>` when publishing has a port of its own) once it
serves. Each offers what the runtime offers the load client: a WebSocket on `/ws` that
sends `{"type":"subscribed"}` once it is registered and then every published frame,
and `POST /publish`, whose body (one JSON frame) goes to every subscriber as it is. No
auth, rules, ids or history: the floor each stack puts under a fan-out.

Two are not of that kind: `socketio/` is Node.js Socket.IO v4 (`npm ci --prefix
benchmarks/peers/socketio`), reached over Engine.IO v4 (benchmarks/socketio_client.py);
`bare_quart_writes` is the `writes` section's create written by hand, no fan-out.
"""
