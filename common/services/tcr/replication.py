"""ManageReplication, ModifyReplication, DeleteReplicationRule, DescribeReplicationPolicies.

Each turns the product's parameters into Ferry's rule shape and calls
``common.services.rules``: the validation, the cross-tenant credential check
and the storage are the JSON API's, never repeated here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common import db as database
from common.db import rules as qr
from common.domain import tcr
from common.domain.models import Rule
from common.domain.permissions import Action
from common.domain.vocab import FilterSyntax
from common.security.tc3 import ApiError
from common.services import access
from common.services import rules as rule_service
from common.services.tcr.context import Context
from common.services.tcr.params import Params


def _cross_tenant(params: Params) -> dict[str, Any]:
    """The target fields of ``PeerReplicationOption`` (none when peer replication is off)."""
    peer = params.obj("PeerReplicationOption")
    if peer is None or not peer.boolean("EnablePeerReplication"):
        return {}
    uin = peer.text("PeerRegistryUin", required=True).strip()
    token = peer.text("PeerRegistryToken", required=True)
    try:
        account = UUID(uin)
    except ValueError:
        raise ApiError(
            "InvalidParameterValue",
            "PeerReplicationOption.PeerRegistryUin must be the target account's id",
        ) from None
    # As in the product, the account's login name on its registry is the account id.
    return {"cross_tenant": True, "account_id": account, "username": uin, "password": token}


def _spec(params: Params) -> dict[str, Any]:
    """A ManageReplication body as a rule in Ferry's nested shape."""
    source = params.instance_id("SourceRegistryId")
    target = params.instance_id("DestinationRegistryId")
    rule = params.obj("Rule", required=True)
    assert rule is not None
    filters = tcr.parse_filters(rule.array("Filters"))
    if filters.namespace is None:
        raise ApiError(
            "MissingParameter",
            "Rule.Filters needs a 'name' filter whose first segment is the source namespace "
            "(e.g. 'project/**'); Ferry never copies all namespaces",
        )
    # The target instance's region is its own; DestinationRegionId is accepted and not used.
    params.integer("DestinationRegionId")
    return {
        "name": rule.text("Name", required=True),
        "description": params.text("Description"),
        "source": {
            "instance_id": source,
            "namespace": filters.namespace,
            "repository_filter": filters.repository_filter,
            "tag_filter": filters.tag_filter,
            "filter_syntax": FilterSyntax.GLOB,
        },
        "resource_types": filters.resource_types,
        "target": {
            "instance_id": target,
            "namespace": rule.text("DestNamespace"),
            **_cross_tenant(params),
        },
        "override": bool(rule.boolean("Override", default=False)),
        # Rule.Deletion is Ferry's `deletion`: only what the rule copied is deleted.
        "deletion": bool(rule.boolean("Deletion", default=False)),
        "enabled": True,
    }


def manage(ctx: Context, params: Params) -> dict[str, Any]:
    """Create a rule (ManageReplication)."""
    spec = _spec(params)
    ctx.authorize(Action.RULE_CREATE, "the new rule", access.spec_scope(spec))
    row = rule_service.create_rule(ctx.settings, ctx.tenant_id, spec)
    ctx.record(row.id, "create", {"name": row.name})
    return {}


def _rule_named(ctx: Context, params: Params, action: Action) -> Rule:
    """The caller's rule named by SourceRegistryId and RuleName, authorized for ``action``."""
    source = params.instance_id("SourceRegistryId")
    name = params.text("RuleName", required=True)
    row = database.in_transaction(ctx.settings, qr.rule_by_name, ctx.tenant_id, source, name)
    if row is None:
        raise ApiError("ResourceNotFound", f"no rule {name!r} on instance {source}")
    ctx.authorize(action, f"rule {name}", access.rule_scope(row))
    return row


def _filters_patch(rule: Rule, entries: list[Any]) -> dict[str, Any]:
    """A new filter set replaces every filter; without a name filter the namespace stays."""
    filters = tcr.parse_filters(entries)
    return {
        "source": {
            "namespace": filters.namespace or rule.source_namespace,
            "repository_filter": filters.repository_filter,
            "tag_filter": filters.tag_filter,
            "repository_exclude": "",
            "tag_exclude": "",
            "filter_syntax": FilterSyntax.GLOB,
        },
        "resource_types": filters.resource_types,
    }


def modify(ctx: Context, params: Params) -> dict[str, Any]:
    """Change a rule (ModifyReplication): only the fields given."""
    rule = _rule_named(ctx, params, Action.RULE_UPDATE)
    changes = params.obj("Rule") or Params({}, "Rule")
    patch: dict[str, Any] = {}
    if changes.has("Filters"):
        patch.update(_filters_patch(rule, changes.array("Filters")))
    if changes.has("DestNamespace"):
        patch["target"] = {"namespace": changes.text("DestNamespace")}
    for key, field in (("Override", "override"), ("Enabled", "enabled"), ("Deletion", "deletion")):
        if changes.has(key):
            patch[field] = changes.boolean(key)
    if params.has("Description"):
        patch["description"] = params.text("Description")
    row = rule_service.patch_rule(ctx.settings, ctx.tenant_id, rule.id, patch)
    ctx.record(row.id, "update", {"name": row.name, "fields": sorted(patch)})
    return {}


def delete(ctx: Context, params: Params) -> dict[str, Any]:
    """Delete a rule (DeleteReplicationRule); its tasks stay in the log."""
    rule = _rule_named(ctx, params, Action.RULE_DELETE)
    rule_service.delete_rule(ctx.settings, ctx.tenant_id, rule.id)
    ctx.record(rule.id, "delete", {"name": rule.name})
    return {}


def describe_policies(ctx: Context, params: Params) -> dict[str, Any]:
    """The rules whose source is RegistryId (DescribeReplicationPolicies), paged."""
    registry = params.instance_id("RegistryId")
    access.instance_scope(ctx.settings, ctx.tenant_id, registry)
    ctx.authorize(Action.RULE_READ, f"instance {registry}", [registry])
    limit, offset = params.page()
    rows, total = rule_service.list_rules(
        ctx.settings,
        ctx.tenant_id,
        source_instance_id=registry,
        limit=limit,
        offset=offset,
        only=ctx.granted(),
    )
    return {"ReplicationPolicyInfoList": [tcr.policy_info(r) for r in rows], "TotalCount": total}
