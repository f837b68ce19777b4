"""What clients may do: connect (`admission`: one door for both transports), send
commands (`commands`: one router, one rate limit, one set of caps), and emit events to
the app's handlers (`handlers`)."""
