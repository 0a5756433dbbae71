"""Ferry: common/db."""
