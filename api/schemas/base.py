"""Field types shared by every schema: text PostgreSQL can store, strict JSON booleans."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load


class Text(fields.String):
    """A string PostgreSQL can store: valid Unicode without NUL characters."""

    default_error_messages = {
        "nul": "Must not contain NUL characters.",
        "unicode": "Must be valid Unicode (no lone surrogates).",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("unicode") from None
        return text


class Bool(fields.Boolean):
    """A JSON boolean, and nothing that merely looks like one ("yes", 1)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        # A membership test would take 1 and 0 for True and False.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class ReadOnlyTolerant(Schema):
    """Ignores read-only fields in a request body, so a GET body can be sent back as a PUT."""

    READ_ONLY: frozenset[str] = frozenset()

    @pre_load
    def _drop_read_only(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and self.READ_ONLY:
            return {k: v for k, v in data.items() if k not in self.READ_ONLY}
        return data


def default_unless_partial(partial: bool, default: Any) -> dict[str, Any]:
    """``load_default`` for full schemas; nothing for PATCH schemas."""
    return {} if partial else {"load_default": default}
