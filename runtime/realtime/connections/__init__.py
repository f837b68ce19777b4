"""Connections: each client's bounded send queue and message budget (`connection`,
`message_limit`), who is connected (`index`), and the writing of queues to their sinks
once per turn of the loop (`flusher`)."""
