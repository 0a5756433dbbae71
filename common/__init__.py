"""Ferry's framework-free core: settings, database, registry client, rules.

Nothing in this package imports Flask or Celery.
"""
