"""What clients may do: connect (`admission`), send commands (`commands`, rate-limited by
`message_limit`), and emit events to the app's handlers (`handlers`)."""
