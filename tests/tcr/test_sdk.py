"""The official Python SDK (tencentcloud-sdk-python-tcr) manages Ferry's rules unchanged:
only its endpoint points at Ferry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tencentcloud.tcr.v20190924 import models

from tests.support.oci import get_manifest, push_chart, push_image

pytestmark = pytest.mark.slow


def manage_request(
    src: str, dst: str, name: str = "sdk-rule", **rule
) -> models.ManageReplicationRequest:
    req = models.ManageReplicationRequest()
    req.from_json_string(
        __import__("json").dumps(
            {
                "SourceRegistryId": src,
                "DestinationRegistryId": dst,
                "Description": "made by the SDK",
                "DestinationRegionId": 1,
                "Rule": {
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
                },
            }
        )
    )
    return req


def policies(client, registry_id: str) -> list:
    req = models.DescribeReplicationPoliciesRequest()
    req.RegistryId = registry_id
    return client.DescribeReplicationPolicies(req).ReplicationPolicyInfoList


def test_sdk_rule_syncs_and_reads_back_executions_and_tasks(acme, sdk, worker, src, dst):
    s = src.session()
    image = push_image(s, src.url, "project/app", "v1")
    push_image(s, src.url, "project/app", "latest")  # tag filter leaves it out
    push_chart(s, src.url, "project/charts/web", "v2")  # resource filter leaves it out
    src_id, dst_id = acme.instance("src", src), acme.instance("dst", dst)
    client = sdk()
    client.ManageReplication(manage_request(src_id, dst_id))

    [policy] = policies(client, src_id)
    assert (policy.Name, policy.Description, policy.Override, policy.Enabled) == (
        "sdk-rule",
        "made by the SDK",
        False,
        True,
    )
    assert [(f.Type, f.Value) for f in policy.Filters] == [
        ("name", "project/**"),
        ("tag", "v*"),
        ("resource", "image"),
    ]
    assert policy.SrcResource == f"{src_id}/project"
    assert policy.DestResource == f"{dst_id}/mirror"
    rule = acme.get(f"/rules?source_instance_id={src_id}")[0]
    assert rule["number"] == policy.ID and isinstance(policy.ID, int)

    task = acme.wait(acme.trigger(rule["id"]))
    assert task["status"] == "Succeeded", task
    assert get_manifest(dst.session(), dst.url, "mirror/app", "v1").digest == image.digest

    req = models.DescribeReplicationExecutionsRequest()
    req.RegistryId, req.PolicyId = src_id, policy.ID
    executions = client.DescribeReplicationExecutions(req)
    assert executions.TotalCount == 1
    [execution] = executions.ReplicationExecutionList
    assert (execution.PolicyID, execution.Status, execution.Total, execution.Succeed) == (
        policy.ID,
        "Succeed",
        1,
        1,
    )
    assert execution.StartTime.endswith("+00:00") and execution.EndTime >= execution.StartTime

    req = models.DescribeReplicationTasksRequest()
    req.RegistryId, req.ExecutionId = src_id, execution.ExecutionID
    tasks = client.DescribeReplicationTasks(req)
    assert tasks.TotalCount == 1
    [item] = tasks.ReplicationTaskList
    assert (item.ResourceType, item.SrcResource, item.DstResource, item.Status) == (
        "image",
        "project/app:v1",
        "mirror/app:v1",
        "Succeed",
    )
    assert item.JobID and item.EndTime
