"""The official Python SDK (tencentcloud-sdk-python-tcr) manages Ferry's rules unchanged:
only its endpoint points at Ferry."""

from __future__ import annotations

import json
import time
import types
from typing import Any

import pytest
from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.tcr.v20190924 import models

from tests.support.oci import get_manifest, push_chart, push_image
from tests.tcr.conftest import SecretPair, admin_id, sdk_client, secret_pair

pytestmark = pytest.mark.slow


def request(model: type, **params: Any) -> Any:
    """A request model filled from JSON, as a script would build it."""
    req = model()
    req.from_json_string(json.dumps(params))
    return req


def manage(src: str, dst: str, name: str = "sdk-rule", **rule: Any) -> Any:
    """A ManageReplicationRequest copying project/** tags v* (images) into ``mirror``."""
    body = {
        "Name": name,
        "DestNamespace": "mirror",
        "Override": False,
        "Deletion": False,
        "Filters": [
            {"Type": "name", "Value": "project/**"},
            {"Type": "tag", "Value": "v*"},
            {"Type": "resource", "Value": "image"},
        ],
        **rule,
    }
    return request(
        models.ManageReplicationRequest,
        SourceRegistryId=src,
        DestinationRegistryId=dst,
        Description="made by the SDK",
        DestinationRegionId=1,
        Rule=body,
    )


def policies(client: Any, registry_id: str) -> list:
    req = request(models.DescribeReplicationPoliciesRequest, RegistryId=registry_id)
    return client.DescribeReplicationPolicies(req).ReplicationPolicyInfoList


def refused(call: Any, *args: Any) -> TencentCloudSDKException:
    """The SDK's exception for a call Ferry refuses (it must carry a RequestId)."""
    with pytest.raises(TencentCloudSDKException) as caught:
        call(*args)
    assert caught.value.get_request_id(), caught.value
    return caught.value


def test_sdk_rule_syncs_and_reads_back_executions_and_tasks(acme, sdk, worker, src, dst):
    s = src.session()
    image = push_image(s, src.url, "project/app", "v1")
    push_image(s, src.url, "project/app", "latest")  # the tag filter leaves it out
    push_chart(s, src.url, "project/charts/web", "v2")  # the resource filter leaves it out
    src_id, dst_id = acme.instance("src", src), acme.instance("dst", dst)
    client = sdk()
    client.ManageReplication(manage(src_id, dst_id))

    [policy] = policies(client, src_id)
    assert (policy.Name, policy.Description, policy.Override, policy.Enabled) == (
        "sdk-rule", "made by the SDK", False, True,
    )  # fmt: skip
    assert [(f.Type, f.Value) for f in policy.Filters] == [
        ("name", "project/**"), ("tag", "v*"), ("resource", "image"),
    ]  # fmt: skip
    assert (policy.SrcResource, policy.DestResource) == (f"{src_id}/project", f"{dst_id}/mirror")
    assert policy.CreationTime.endswith("+00:00")
    rule = acme.get(f"/rules?source_instance_id={src_id}")[0]
    assert rule["number"] == policy.ID and isinstance(policy.ID, int)

    task = acme.wait(acme.trigger(rule["id"]))
    assert task["status"] == "Succeeded", task
    assert get_manifest(dst.session(), dst.url, "mirror/app", "v1").digest == image.digest

    req = request(
        models.DescribeReplicationExecutionsRequest, RegistryId=src_id, PolicyId=policy.ID
    )
    executions = client.DescribeReplicationExecutions(req)
    assert executions.TotalCount == 1
    [execution] = executions.ReplicationExecutionList
    assert (execution.PolicyID, execution.Status, execution.Total, execution.Succeed) == (
        policy.ID, "Succeed", 1, 1,
    )  # fmt: skip
    assert execution.StartTime.endswith("+00:00") and execution.EndTime >= execution.StartTime
    assert task["task_id"].endswith(f"-{execution.ExecutionID:06d}")

    req = request(
        models.DescribeReplicationTasksRequest, RegistryId=src_id, ExecutionId=execution.ExecutionID
    )
    tasks = client.DescribeReplicationTasks(req)
    assert tasks.TotalCount == 1
    [item] = tasks.ReplicationTaskList
    assert (item.ResourceType, item.SrcResource, item.DstResource, item.Status) == (
        "image", "project/app:v1", "mirror/app:v1", "Succeed",
    )  # fmt: skip
    assert item.JobID and item.EndTime


def test_modify_then_delete(acme, sdk, registry):
    src_id, dst_id = acme.instance("src", registry), acme.instance("dst", registry)
    client = sdk()
    client.ManageReplication(manage(src_id, dst_id))
    error = refused(client.ManageReplication, manage(src_id, dst_id))
    assert error.get_code() == "ResourceInUse"

    client.ModifyReplication(
        request(
            models.ModifyReplicationRequest,
            SourceRegistryId=src_id,
            RuleName="sdk-rule",
            Description="changed",
            Rule={
                "DestNamespace": "copies",
                "Override": True,
                "Enabled": False,
                "Deletion": False,
                "Filters": [{"Type": "tag", "Value": "v2*"}],
            },
        )
    )
    rule = acme.get(f"/rules?source_instance_id={src_id}")[0]
    assert rule["description"] == "changed"
    assert (rule["override"], rule["enabled"]) == (True, False)
    assert rule["target"]["namespace"] == "copies"
    # A filter set without a name filter keeps the namespace and selects all its repositories.
    assert rule["source"] | {"instance_id": None} == {
        "instance_id": None,
        "namespace": "project",
        "repository_filter": "",
        "tag_filter": "v2*",
        "repository_exclude": "",
        "tag_exclude": "",
        "filter_syntax": "glob",
        "semver": "",
        "latest": None,
    }
    assert rule["resource_types"] == ["image", "chart"]
    [policy] = policies(client, src_id)
    assert (policy.Enabled, policy.Override, policy.ID) == (False, True, rule["number"])

    deletion = request(
        models.ModifyReplicationRequest,
        SourceRegistryId=src_id,
        RuleName="sdk-rule",
        Rule={"Deletion": True},
    )
    client.ModifyReplication(deletion)
    assert acme.get(f"/rules/{rule['id']}")["deletion"] is True

    delete = request(
        models.DeleteReplicationRuleRequest, SourceRegistryId=src_id, RuleName="sdk-rule"
    )
    client.DeleteReplicationRule(delete)
    assert policies(client, src_id) == []
    assert acme.get("/rules") == []
    assert refused(client.DeleteReplicationRule, delete).get_code() == "ResourceNotFound"
    entries = acme.get("/audit", query_string={"object_type": "rule"})
    assert [e["action"] for e in entries] == ["delete", "update", "update", "create"]


def test_invalid_rules_are_refused_with_the_products_codes(acme, sdk, registry):
    src_id, dst_id = acme.instance("src", registry), acme.instance("dst", registry)
    client = sdk()
    cases = [
        (manage(src_id, dst_id, Filters=[]), "MissingParameter", "name"),
        (
            manage(src_id, dst_id, Filters=[{"Type": "name", "Value": "*/app"}]),
            "InvalidParameterValue",
            "literal",
        ),
        (
            manage(src_id, dst_id, Filters=[{"Type": "label", "Value": "x"}]),
            "InvalidParameterValue",
            "Type",
        ),
        (manage(src_id, dst_id, name="Bad Name"), "InvalidParameterValue", "Rule.Name"),
        (manage(src_id, "tcr-nothere"), "ResourceNotFound", "DestinationRegistryId"),
        (
            manage(src_id, "6f1c1c1e-9f0a-4a57-9d0e-2f5b8d1f4a10"),
            "ResourceNotFound",
            "DestinationRegistryId",
        ),
    ]
    for req, code, word in cases:
        error = refused(client.ManageReplication, req)
        assert (error.get_code(), word in error.get_message()) == (code, True), error
    assert acme.get("/rules") == []


def test_wrong_secret_key_expired_timestamp_and_unknown_action(
    acme, sdk, live, registry, monkeypatch
):
    src_id = acme.instance("src", registry)
    pair = secret_pair(acme, admin_id(acme))
    good = sdk(pair=pair)
    assert policies(good, src_id) == []

    forged = sdk_client(live, SecretPair(pair.secret_id, pair.secret_key[::-1]))
    error = refused(policies, forged, src_id)
    assert error.get_code() == "AuthFailure.SignatureFailure"
    unknown = sdk_client(live, SecretPair("AKIDnothere", pair.secret_key))
    assert refused(policies, unknown, src_id).get_code() == "AuthFailure.SecretIdNotFound"

    assert refused(good.call, "DescribeNamespaces", {}).get_code() == "InvalidAction"

    # The SDK signs with its own clock: ten minutes slow, its signature is too old.
    slow = types.SimpleNamespace(time=lambda: time.time() - 600)
    monkeypatch.setattr(abstract_client, "time", slow)
    error = refused(policies, good, src_id)
    assert error.get_code() == "AuthFailure.SignatureExpire"
    assert pair.secret_key not in error.get_message()


def test_a_viewers_key_reads_but_may_not_create(acme, sdk, registry):
    src_id, dst_id = acme.instance("src", registry), acme.instance("dst", registry)
    admin = sdk()
    admin.ManageReplication(manage(src_id, dst_id))
    viewer = sdk(user_id=acme.add_user("watcher", "viewer").user_id)
    error = refused(viewer.ManageReplication, manage(src_id, dst_id, name="other"))
    assert error.get_code() == "UnauthorizedOperation"
    assert "rule:create" in error.get_message()
    assert [p.Name for p in policies(viewer, src_id)] == ["sdk-rule"]
    delete = request(
        models.DeleteReplicationRuleRequest, SourceRegistryId=src_id, RuleName="sdk-rule"
    )
    assert refused(viewer.DeleteReplicationRule, delete).get_code() == "UnauthorizedOperation"


def test_describe_instances_lists_the_callers_granted_instances(acme, sdk, registry):
    src_id, dst_id = acme.instance("src", registry), acme.instance("dst", registry)
    everything = sdk().DescribeInstances(request(models.DescribeInstancesRequest))
    assert everything.TotalCount == 2
    by_id = {r.RegistryId: r for r in everything.Registries}
    assert set(by_id) == {src_id, dst_id}
    src = by_id[src_id]
    assert (src.RegistryName, src.RegistryType, src.Status, src.PublicDomain) == (
        "src", "distribution", "Running", registry.host,
    )  # fmt: skip
    only = request(models.DescribeInstancesRequest, Registryids=[dst_id, "tcr-x"])
    assert [r.RegistryId for r in sdk().DescribeInstances(only).Registries] == [dst_id]

    limited = acme.add_user("one", "operator", grants=[src_id])
    listed = sdk(user_id=limited.user_id).DescribeInstances(
        request(models.DescribeInstancesRequest)
    )
    assert [r.RegistryId for r in listed.Registries] == [src_id]
    # Its grants do not reach dst: a rule into it is refused, naming the instance.
    error = refused(sdk(user_id=limited.user_id).ManageReplication, manage(src_id, dst_id))
    assert (error.get_code(), dst_id in error.get_message()) == ("UnauthorizedOperation", True)


def test_peer_replication_is_a_cross_tenant_rule_checked_at_creation(
    acme, sdk, live, settings, registry, registry_factory
):
    from tests.support.api import tenant_api

    bob = tenant_api(live.client(), settings, "bob-co")
    # As in the product, the target account's id is also its login name on the registry.
    bob_registry = registry_factory({str(bob.tenant.id): "bob-token"})
    bob_dst = bob.instance("bob-target", bob_registry, user=str(bob.tenant.id))
    src_id = acme.instance("src", registry)
    client = sdk()

    def peer(token: str) -> Any:
        req = manage(src_id, bob_dst, name="to-bob", DestNamespace="team")
        req.PeerReplicationOption = models.PeerReplicationOption()
        req.PeerReplicationOption._deserialize(
            {
                "PeerRegistryUin": str(bob.tenant.id),
                "PeerRegistryToken": token,
                "EnablePeerReplication": True,
            }
        )
        return req

    error = refused(client.ManageReplication, peer("wrong-token"))
    assert error.get_code() == "InvalidParameterValue"
    assert "PeerRegistryToken" in error.get_message() and "wrong-token" not in error.get_message()
    client.ManageReplication(peer("bob-token"))
    rule = acme.get("/rules")[0]
    assert rule["target"] | {"instance_id": None} == {
        "instance_id": None,
        "namespace": "team",
        "cross_tenant": True,
        "account_id": str(bob.tenant.id),
        "username": str(bob.tenant.id),
        "has_credentials": True,
    }
    assert [r["name"] for r in bob.get("/incoming-rules")] == ["to-bob"]
