"""The demo: what `python -m runtime serve` (and `make run`) serves while `app.demo` is
true. Its collections, `messages` and `notes`, exist only where the demo is used:
importing this package registers nothing; `create_demo_app()`, or reaching for
`runtime.demo.Message` or `Note`, does. An app of your own never gets them.

Its pages are server-rendered from the repository's top-level `templates/` and
`static/` folders, the demo app's own, as any app's pages are (docs/pages.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quart import Quart

from ..config import Config

if TYPE_CHECKING:
    from .models import Message, Note

__all__ = ["ROOT", "Message", "Note", "create_demo_app"]

# The demo app's folder: the checkout that holds the runtime package, with the demo's
# templates/ and static/.
ROOT = Path(__file__).resolve().parents[2]


def create_demo_app(config: Config | None = None) -> Quart:
    """The runtime's own app with the demo's collections and pages."""
    from ..app import create_app
    from ..realtime import Realtime
    from . import models
    from .views import demo_blueprint

    del models  # imported to register them: create_app serves every registered collection
    if not (ROOT / "templates" / "messages.html").is_file():
        raise RuntimeError(
            f"the demo's pages are not in {ROOT / 'templates'}: the demo runs from a "
            "checkout of the repository (serve your own app with --app)"
        )
    realtime = Realtime()
    realtime.fragment("messages", "fragments/message.html")  # the htmx page's
    app = create_app(config, root_path=ROOT, realtime=realtime)
    app.register_blueprint(demo_blueprint)
    return app


def __getattr__(name: str) -> Any:
    """`Message` and `Note`, registered on first use."""
    if name in ("Message", "Note"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
