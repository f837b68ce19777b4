"""Publishing: events handed, in commit order, to a backend that gives them ids, an
order and a history (`publisher`, `backends/`)."""
