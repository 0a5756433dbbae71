"""Ferry: api."""
