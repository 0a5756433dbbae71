"""What tenant views share: calling a use case for the caller, a page of a list, and
the documented answers of a view that returns one object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_smorest import Blueprint

from api.auth import app_settings, require_principal, require_tenant

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def for_tenant(use_case: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``use_case(settings, tenant, *args, **kwargs)`` for this app and the caller's tenant."""
    return use_case(app_settings(), require_tenant(), *args, **kwargs)


def page_of(
    use_case: Callable[..., tuple[list[T], int]],
    pagination_parameters: Any,
    *args: Any,
    **kwargs: Any,
) -> list[T]:
    """The page ``pagination_parameters`` asks for from a listing use case; its total goes
    to the X-Pagination header."""
    rows, total = for_tenant(
        use_case,
        *args,
        limit=pagination_parameters.page_size,
        offset=pagination_parameters.first_item,
        **kwargs,
    )
    pagination_parameters.item_count = total
    return rows


def granted_page_of(
    use_case: Callable[..., tuple[list[T], int]],
    pagination_parameters: Any,
    *args: Any,
    **kwargs: Any,
) -> list[T]:
    """Like :func:`page_of`, limited to the instances the caller's grants reach."""
    only = require_principal().granted_instances()
    return page_of(use_case, pagination_parameters, *args, only=only, **kwargs)


def answers_one(blp: Blueprint, schema: Any, example: Any) -> Callable[[F], F]:
    """Documents a view that answers one object (200, ``schema``) or 404 (none for the caller)."""

    def decorate(func: F) -> F:
        func = blp.alt_response(404, response="NOT_FOUND")(func)
        return blp.response(200, schema, example=example)(func)

    return decorate
