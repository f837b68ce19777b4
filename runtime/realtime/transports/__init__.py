"""Transports: WebSocket and Server-Sent Events, each writing frames in its own wire
format (`websocket`, `sse`, `html` for htmx's fragments), and what they share
(`serving`)."""
