"""The public API is pinned: changing it is a decision, not an accident."""

import runtime


def test_public_api() -> None:
    assert sorted(runtime.__all__) == ["BaseModel", "Realtime", "create_app"]
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None
