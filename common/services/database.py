"""The database schema as the CLI and ``ferry up`` see it: bring it up to date."""

from __future__ import annotations

from common.db.migrate import Migration, upgrade
from common.settings import Settings


def upgrade_database(settings: Settings) -> list[Migration]:
    """Apply every pending migration (serialised across processes); the ones applied now."""
    return upgrade(settings.require_database_url())
