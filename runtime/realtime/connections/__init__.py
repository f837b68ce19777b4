"""Connections: each client's bounded send queue (`connection`), who is connected
(`index`), and the writing of queues to sockets once per turn of the loop (`flusher`)."""
