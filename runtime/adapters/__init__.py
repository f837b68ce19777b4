"""Every reach into a library's private parts, one module per library, each pinned in
pyproject.toml and checked by a test under tests/adapters/ that fails loudly when those
parts change; nothing else in the runtime imports those parts."""
