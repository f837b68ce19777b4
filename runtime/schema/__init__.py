"""The tables follow the models: checked and extended at start-up (`startup`), brought
to the models by `python -m runtime migrate` (`command`), both on `playhouse.migrate`."""

from .command import migrate_models
from .startup import SchemaMismatch, check_schema, schema_check_deferred

__all__ = ["SchemaMismatch", "check_schema", "migrate_models", "schema_check_deferred"]
