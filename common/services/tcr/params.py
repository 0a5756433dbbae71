"""Reading an action's JSON parameters with the product's error codes.

A missing required parameter is ``MissingParameter``, one of the wrong type
``InvalidParameter`` and one out of range ``InvalidParameterValue``; each
message names the parameter by its path (``Rule.Filters.0.Type``). Unknown
parameters are ignored, as newer SDKs may send fields this Ferry does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from common.security.tc3 import ApiError

MAX_PAGE_SIZE = 200


class Params:
    """The parameters of one action, or of one nested object (``prefix`` names it)."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix

    def _path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        """True when the parameter is given (and not null)."""
        return self.values.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.values.get(name)
        if value is None and required:
            raise ApiError("MissingParameter", f"the parameter {self._path(name)} is required")
        return value

    def text(self, name: str, *, required: bool = False, default: str = "") -> str:
        """A string parameter (``default`` when absent)."""
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ApiError("InvalidParameter", f"{self._path(name)} must be a string")
        if required and not value.strip():
            raise ApiError("MissingParameter", f"the parameter {self._path(name)} is empty")
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int = 0,
        minimum: int = 0,
        maximum: int = 2**31 - 1,
    ) -> int:
        """An integer parameter (digits in a string are accepted, as the product does)."""
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit() and len(value) < 12:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("InvalidParameter", f"{self._path(name)} must be an integer")
        if not minimum <= value <= maximum:
            raise ApiError(
                "InvalidParameterValue",
                f"{self._path(name)} must be between {minimum} and {maximum}",
            )
        return value

    def boolean(self, name: str, *, default: bool | None = None) -> bool | None:
        """A boolean parameter (``default`` when absent)."""
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ApiError("InvalidParameter", f"{self._path(name)} must be true or false")
        return value

    def obj(self, name: str, *, required: bool = False) -> Params | None:
        """A nested object parameter, as Params of its own."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ApiError("InvalidParameter", f"{self._path(name)} must be an object")
        return Params(value, self._path(name))

    def array(self, name: str) -> list[Any]:
        """A list parameter (empty when absent)."""
        value = self._get(name, False)
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > 100:
            raise ApiError("InvalidParameter", f"{self._path(name)} must be a list (at most 100)")
        return value

    def instance_id(self, name: str) -> UUID:
        """A required instance id (a registry id in the product). An id that cannot be one of
        Ferry's is no instance: ResourceNotFound, as for an unknown one."""
        value = self.text(name, required=True)
        try:
            return UUID(value.strip())
        except ValueError:
            raise ApiError(
                "ResourceNotFound", f"{self._path(name)}: no instance {value!r} in your account"
            ) from None

    def page(self) -> tuple[int, int]:
        """(limit, offset) from ``Page`` (from 1) and ``PageSize`` (default 100)."""
        size = self.integer("PageSize", default=100, minimum=1, maximum=MAX_PAGE_SIZE)
        page = self.integer("Page", default=1, minimum=1, maximum=1_000_000)
        return size, (page - 1) * size
