"""Realtime pub/sub: patterns, the client protocol and the subscription registry."""
