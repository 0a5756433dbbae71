"""Ferry: worker."""
