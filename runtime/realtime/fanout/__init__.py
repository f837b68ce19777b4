"""Fan-out: one published event to the queues of the connections that get it: who wants
it (`registry`), who may see it and in what shape (`access`), the queueing itself
(`delivery`), and the missed events of a resumed subscription (`replay`)."""
