"""Channels: named topics that need no model, declared in Python (Socket.IO's rooms).

    realtime.channel("lobby", read_rule="authenticated", write_rule="authenticated",
                     presence=True)

A channel is subscribed to by its name, like a collection (`lobby`; wildcards cover it
too, for those who may read it), and carries custom events: the server's broadcasts
(`app.realtime_broadcast(name, data, collection="lobby")`) and, where the write rule
lets them, the browsers' own (`{"type": "publish", "channel": "lobby", ...}`). A rule
is `public | authenticated | admin | nobody` or a function `(user) -> bool`; visitors
only ever pass `public`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..rules import check_rule
from .patterns import is_valid_collection_name

__all__ = ["CHANNEL_RULE_NAMES", "Channel", "ChannelRule", "check_channel_rule"]

CHANNEL_RULE_NAMES = ("public", "authenticated", "admin", "nobody")

ChannelRule = str | Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    read_rule: ChannelRule = "authenticated"  # who may subscribe (and hear it)
    write_rule: ChannelRule = "nobody"  # who may publish to it from a browser
    presence: bool = False  # who is here: a list on subscribe, join and leave events

    def __post_init__(self) -> None:
        if not is_valid_collection_name(self.name):
            raise ValueError(f"channel {self.name!r}: a name is [A-Za-z0-9_]{{1,64}}")
        for kind in ("read_rule", "write_rule"):
            rule = getattr(self, kind)
            if callable(rule):
                if len(inspect.signature(rule).parameters) != 1:
                    raise TypeError(f"channel {self.name!r}: {kind} takes one argument, user")
            elif rule not in CHANNEL_RULE_NAMES:
                raise ValueError(
                    f"channel {self.name!r}: {kind} {rule!r} is not one of {CHANNEL_RULE_NAMES}"
                )

    def readable_by(self, user: Any) -> bool:
        return check_channel_rule(self.read_rule, user)

    def writable_by(self, user: Any) -> bool:
        return check_channel_rule(self.write_rule, user)


def check_channel_rule(rule: ChannelRule, user: Any) -> bool:
    if callable(rule):
        return user is not None and bool(rule(user))  # visitors only ever pass "public"
    return check_rule(rule, user, None, None)  # a channel has no records, so no "owner"
