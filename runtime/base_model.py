"""`BaseModel`: a Peewee model that is a collection with access rules and change events.

    class Post(BaseModel):
        title = CharField()
        author = ForeignKeyField(User)
        read_rule = "public"
        create_rule = "authenticated"
        update_rule = delete_rule = "owner"  # or write_rule = ..., all three at once
        owner_field = "author"
        hidden = ("secret_token",)
        read_only = ("created_at",)

        class Meta:
            table_name = "posts"

A subclass is registered as the collection named by its table name. Its saves and
deletes are recorded with the database, which announces them once they commit (see
`runtime.db`); realtime turns those announcements into events.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, ClassVar

import peewee

from .adapters.peewee import write_values
from .constraint_errors import refuse_bad_messages
from .db import RecordChange, database
from .json_values import json_value
from .registry import collection, collections, register
from .rules import RULE_NAMES, Rule, UserLike, check_rule, rule_could_pass
from .tracked_writes import (
    TrackedDelete,
    TrackedInsert,
    TrackedUpdate,
    rows_returned_to_caller,
    tracking,
)
from .validation import acting_user

__all__ = ["BaseModel", "collection", "collections"]

_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_WRITE_RULES = ("create_rule", "update_rule", "delete_rule")  # what write_rule sets
_RULES = ("read_rule", "write_rule", *_WRITE_RULES)


class _CollectionMeta(peewee.ModelBase):
    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        cls = super().__new__(mcs, name, bases, attrs)
        if attrs.get("__abstract__"):
            return cls
        table = cls._meta.table_name
        if not _COLLECTION_NAME.fullmatch(table):
            raise TypeError(f"{name}: table name {table!r} is not a valid collection name")
        _settle_rules(cls, attrs)
        _refuse_bad_declarations(cls, name)
        _refuse_name_clash(cls, table)
        register(table, cls)
        return cls


def _settle_rules(cls: type[BaseModel], attrs: dict[str, Any]) -> None:
    """Each rule as the class body meant it: a function stays a rule (not a method), and
    `write_rule` sets the write actions the class gives no rule of their own."""
    for kind in _RULES:
        if inspect.isfunction(attrs.get(kind)):
            # A plain function in the class body would become a method; keep it a rule.
            setattr(cls, kind, staticmethod(attrs[kind]))
    if "write_rule" in attrs:  # the shorthand, for the actions not given their own
        for kind in _WRITE_RULES:
            if kind not in attrs:
                rule = cls.write_rule
                setattr(cls, kind, staticmethod(rule) if callable(rule) else rule)


def _refuse_bad_declarations(cls: type[BaseModel], name: str) -> None:
    """Rules that are functions or known names, an owner field for "owner", and hidden
    fields that exist; else a TypeError naming the class and the attribute."""
    for kind in _RULES:
        rule = getattr(cls, kind)
        if not callable(rule) and rule not in RULE_NAMES:
            raise TypeError(f"{name}.{kind}: {rule!r} is not one of {RULE_NAMES}")
        if rule == "owner" and cls.owner_field not in cls._meta.fields:
            raise TypeError(f"{name}.{kind} is 'owner' but owner_field names no field")
    unknown = set(cls.hidden) - set(cls._meta.fields)
    if unknown:
        raise TypeError(f"{name}.hidden names unknown fields: {sorted(unknown)}")
    not_hidden = set(cls.rule_reads_hidden) - set(cls.hidden)
    if not_hidden:
        raise TypeError(f"{name}.rule_reads_hidden names fields not hidden: {sorted(not_hidden)}")
    refuse_bad_messages(cls, name)


def _refuse_name_clash(cls: type, table: str) -> None:
    """One class per collection name: a second one would silently replace the first.

    The same class defined again (a module reloaded) replaces itself.
    """
    existing = collection(table)
    if existing is None:
        return
    if (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__):
        return
    first = f"{existing.__module__}.{existing.__qualname__}"
    second = f"{cls.__module__}.{cls.__qualname__}"
    raise TypeError(
        f"{second}: table name {table!r} is already the collection of {first}; "
        "give one of them another Meta.table_name"
    )


class BaseModel(peewee.Model, metaclass=_CollectionMeta):
    """A collection. Rules default to "admin" so that nothing is exposed by accident.

    One rule per action: `read_rule` (list and view), `create_rule`, `update_rule`,
    `delete_rule`. `write_rule` is a shorthand that sets the three write rules a class
    does not set itself.
    """

    __abstract__ = True

    read_rule: ClassVar[Rule] = "admin"
    write_rule: ClassVar[Rule] = "admin"
    create_rule: ClassVar[Rule] = "admin"
    update_rule: ClassVar[Rule] = "admin"
    delete_rule: ClassVar[Rule] = "admin"
    owner_field: ClassVar[str | None] = None
    hidden: ClassVar[tuple[str, ...]] = ()
    # Hidden fields the read rule reads: events carry them inside the server (the
    # history, the broker, the outbox) so that the rule judges an event on what it
    # judges a row on; they are never sent to a client. Others stay out of events.
    rule_reads_hidden: ClassVar[tuple[str, ...]] = ()
    read_only: ClassVar[tuple[str, ...]] = ()  # never set by clients through the API
    # The model's own wording of what the database refuses (docs/models.md):
    # {"unique": {"email": "That email is taken."}, "check": {...}, "not_null": {...}}
    messages: ClassVar[dict[str, dict[Any, str]]] = {}

    class Meta:
        database = database
        legacy_table_names = False

    # -- identity --------------------------------------------------------------------

    @classmethod
    def collection_name(cls) -> str:
        return str(cls._meta.table_name)

    @property
    def record_id(self) -> str:
        return str(self.get_id())

    # -- rules -----------------------------------------------------------------------

    @classmethod
    def collection_readable_by(cls, user: UserLike | None) -> bool:
        """Whether `user` may read some record of this collection (no record at hand)."""
        return rule_could_pass(cls.read_rule, user)

    @classmethod
    def collection_creatable_by(cls, user: UserLike | None) -> bool:
        """Whether `user` could create some record here (checked before reading a body)."""
        return rule_could_pass(cls.create_rule, user)

    def readable_by(self, user: UserLike | None) -> bool:
        return check_rule(type(self).read_rule, user, self, self.owner_field)

    def creatable_by(self, user: UserLike | None) -> bool:
        """Whether `user` may create this (unsaved) record, owner field already set."""
        return check_rule(type(self).create_rule, user, self, self.owner_field)

    def updatable_by(self, user: UserLike | None) -> bool:
        return check_rule(type(self).update_rule, user, self, self.owner_field)

    def deletable_by(self, user: UserLike | None) -> bool:
        return check_rule(type(self).delete_rule, user, self, self.owner_field)

    # Before rules per action there was one write rule; these keep older callers working.

    @classmethod
    def collection_writable_by(cls, user: UserLike | None) -> bool:
        """Kept for compatibility: `collection_creatable_by`."""
        return cls.collection_creatable_by(user)

    def writable_by(self, user: UserLike | None) -> bool:
        """Kept for compatibility: `updatable_by`."""
        return self.updatable_by(user)

    @classmethod
    def readable_query(cls, user: UserLike | None) -> peewee.ModelSelect:
        """A query narrowed as far as SQL can to the records `user` may read.

        Function rules still need `readable_by()` per row.
        """
        query = cls.select()
        if cls.read_rule == "owner":
            owner = cls._meta.fields[cls.owner_field]
            query = query.where(owner == (user.id if user is not None else None))
        return query

    # -- what leaves the server -------------------------------------------------------

    @classmethod
    def left_out_of_events(cls) -> tuple[str, ...]:
        """The hidden fields events do not carry: all but those the read rule reads
        (`rule_reads_hidden`, and the owner field of an "owner" rule)."""
        carried = set(cls.rule_reads_hidden)
        if cls.read_rule == "owner" and cls.owner_field is not None:
            carried.add(cls.owner_field)
        return tuple(name for name in cls.hidden if name not in carried)

    @classmethod
    def visible_fields(cls, user: UserLike | None) -> tuple[str, ...]:
        """The fields a reader sees; override to vary them by user."""
        hidden = set(cls.hidden)
        return tuple(name for name in cls._meta.sorted_field_names if name not in hidden)

    def visible_to(self, user: UserLike | None) -> dict[str, Any] | None:
        """The record as `user` may see it, or None if they may not read it."""
        if not self.readable_by(user):
            return None
        data = self.__data__
        return {name: json_value(data.get(name)) for name in self.visible_fields(user)}

    # -- validation --------------------------------------------------------------------

    def validate(self, user: UserLike | None) -> None:
        """Raise `ValidationError({field: message})` if this record may not be saved as it
        is. `save()` calls it before touching the database, with the user the write is
        made for (`runtime.validation.acting_user()`: None in a script). Does nothing
        unless a model overrides it."""

    # -- change events ----------------------------------------------------------------

    # Bulk queries are announced row by row (see runtime/tracked_writes.py).

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> peewee.ModelUpdate:
        return TrackedUpdate(cls, write_values(cls, __data, update))

    @classmethod
    def insert(cls, __data: Any = None, **insert: Any) -> peewee.ModelInsert:
        return TrackedInsert(cls, write_values(cls, __data, insert))

    @classmethod
    def insert_many(cls, rows: Any, fields: Any = None) -> peewee.ModelInsert:
        return TrackedInsert(cls, insert=rows, columns=fields)

    @classmethod
    def insert_from(cls, query: Any, fields: Any) -> peewee.ModelInsert:
        columns = [getattr(cls, f) if isinstance(f, str) else f for f in fields]
        return TrackedInsert(cls, insert=query, columns=columns)

    @classmethod
    def delete(cls) -> peewee.ModelDelete:
        return TrackedDelete(cls)

    def save(self, force_insert: bool = False, only: Any = None) -> int:
        validate = type(self).validate
        if validate is not BaseModel.validate:  # most models have none: no lookup of the user
            validate(self, acting_user())
        # Mirrors Peewee's own choice between INSERT and UPDATE.
        inserting = force_insert or self.get_id() is None
        if only is not None:
            changed = {f if isinstance(f, str) else f.name for f in only}
        else:
            changed = set(self.dirty_field_names)
        changed.discard(self._meta.primary_key.name)
        # One transaction even for a lone save: its commit is where its place in the
        # order of events is decided (see runtime.db).
        with tracking(type(self)).write_transaction():
            with rows_returned_to_caller(type(self)) as written:
                rows = super().save(force_insert=force_insert, only=only)
            if written.rows:
                # The instance now holds what the database stored, as reading it back
                # would give it: the API answers with what GET and the event show.
                self.__data__.update(written.rows[-1])
            if rows and written.rows and (inserting or changed):
                fields = self._meta.sorted_field_names
                row = written.rows[-1]
                self._record(
                    "create" if inserting else "update",
                    row,
                    tuple(f for f in fields if f in changed) if not inserting else (),
                    None if inserting else written.previous(row),
                )
        return int(rows or 0)

    def delete_instance(self, recursive: bool = False, delete_nullable: bool = False) -> int:
        with tracking(type(self)).write_transaction():
            if recursive:  # as Peewee does; the dependants' changes are announced as bulk ones
                for query, fk in self.dependencies(exclude_null_children=not delete_nullable):
                    if fk.null and not delete_nullable:
                        fk.model.update(**{fk.name: None}).where(query).execute()
                    else:
                        fk.model.delete().where(query).execute()
            with rows_returned_to_caller(type(self)) as written:
                # this record, picked as Peewee's own delete_instance() picks it
                this = self._meta.primary_key == self.get_id()
                rows = type(self).delete().where(this).execute()
            if rows and written.rows:
                self._record("delete", written.rows[-1], ())
        return int(rows)

    def _record(
        self,
        action: str,
        row: dict[str, Any],
        changed: tuple[str, ...],
        previous: dict[str, Any] | None = None,
    ) -> None:
        change = RecordChange(type(self), action, self.record_id, row, changed, previous)
        tracking(type(self)).record_change(change)
