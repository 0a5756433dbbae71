"""The sync log: trigger a rule, read its tasks and items, stop, retry, preview."""

from __future__ import annotations

import json
from dataclasses import asdict

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auditing import Audit
from api.auth import TenantBlueprint, app_settings, on_rule, on_task, require_tenant, requires
from api.errors import ErrorSchema
from api.views import page_of
from common.domain import models, vocab
from common.domain.permissions import Action
from common.domain.vocab import ItemStatus, TaskStatus
from common.services import tasks as service
from common.services.preview import explain_empty_preview, preview_rule
from worker.dispatch import enqueue_plan

blp = TenantBlueprint(
    "tasks",
    __name__,
    url_prefix="/api/v1",
    description="Sync tasks: trigger, log, items, stop, retry, preview.",
)

TRIGGERS = tuple(vocab.Trigger)
TASK_STATUSES = tuple(TaskStatus)
OUTCOMES = tuple(ItemStatus)


class TaskStartedSchema(Schema):
    task_id = fields.String(metadata={"example": "3f9a1c2b-000042"})
    status = fields.String(metadata={"example": "Pending"})


class TaskSchema(Schema):
    """One run of a rule with the figures of its log."""

    task_id = fields.String(metadata={"example": "3f9a1c2b-000042"})
    rule_id = fields.UUID(allow_none=True)
    trigger = fields.String(validate=validate.OneOf(TRIGGERS), metadata={"example": "manual"})
    status = fields.String(
        validate=validate.OneOf(TASK_STATUSES), metadata={"example": "Succeeded"}
    )
    message = fields.String(metadata={"example": ""})
    retry_of = fields.Method(
        "_retry_of", allow_none=True, metadata={"description": "task_id this task retries, if any"}
    )
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    time_spent_seconds = fields.Float(allow_none=True, metadata={"example": 12.5})
    success_rate = fields.Float(allow_none=True, metadata={"example": 0.9667})
    repositories_count = fields.Integer(metadata={"example": 12})
    total = fields.Integer(metadata={"example": 30})
    copied = fields.Integer(metadata={"example": 20})
    up_to_date = fields.Integer(metadata={"example": 8})
    kept = fields.Integer(metadata={"example": 1})
    failed = fields.Integer(metadata={"example": 1})
    stopped = fields.Integer(metadata={"example": 0})
    deleted = fields.Integer(
        metadata={
            "description": "Target tags deleted because the source deleted them (the rule's "
            "`deletion`); counted as successful.",
            "example": 0,
        }
    )
    bytes_transferred = fields.Integer(metadata={"example": 104857600})

    def _retry_of(self, task: models.Task) -> str | None:
        return task.retry_of_task_id


class ItemSchema(Schema):
    """One repository:tag of a task and its outcome."""

    source_repository = fields.String(metadata={"example": "project/sub1/app"})
    source_tag = fields.String(metadata={"example": "v1"})
    target_repository = fields.String(metadata={"example": "team/sub1/app"})
    target_tag = fields.String(metadata={"example": "v1"})
    kind = fields.String(allow_none=True, metadata={"example": "image"})
    digest = fields.String(allow_none=True)
    source_digest = fields.String(allow_none=True)
    outcome = fields.String(
        attribute="status", validate=validate.OneOf(OUTCOMES), metadata={"example": "copied"}
    )
    reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    bytes_transferred = fields.Integer()
    blobs_skipped = fields.Integer()
    blobs_mounted = fields.Integer()
    blobs_uploaded = fields.Integer()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    seconds = fields.Float(allow_none=True)
    worker = fields.String(
        allow_none=True,
        metadata={
            "description": "hostname of the worker whose copy last claimed the item",
            "example": "ferry-copy-1@node-a",
        },
    )


class ItemQuerySchema(Schema):
    status = fields.String(
        validate=validate.OneOf(OUTCOMES), metadata={"description": "only items with this outcome"}
    )


class PreviewSchema(Schema):
    """What a rule selects now."""

    source_repository = fields.String(metadata={"example": "project/app"})
    source_tag = fields.String(metadata={"example": "v1"})
    kind = fields.String(allow_none=True, metadata={"example": "image"})
    source_digest = fields.String(allow_none=True)
    target_repository = fields.String(metadata={"example": "team/app"})
    target_tag = fields.String(metadata={"example": "v1"})
    target_has_it = fields.Boolean()
    target_digest = fields.String(allow_none=True)


EXPLANATION_HEADER = "X-Ferry-Preview-Explanation"
PREVIEW_HEADERS = {
    EXPLANATION_HEADER: {
        "description": "Only when the rule selects nothing: JSON `{filter, pattern, excluded, "
        "example, message}` naming the filter (a field path such as `source.tag_filter`) that "
        "left nothing, how many names it excluded and one of them. Filters match the whole "
        "name (like re.fullmatch): `^v` selects no tag `v1.0`, `v.*` does.",
        "schema": {"type": "string"},
    }
}


def _started(task: models.Task) -> dict[str, str]:
    """The 202 body for a task just committed, once the worker has been asked to plan it."""
    # Only after the commit: the worker must find the row.
    enqueue_plan(task.id, task.trigger)
    return {"task_id": task.task_id, "status": task.status}


@blp.route("/rules/<uuid:rule_id>/trigger")
class Trigger(MethodView):
    @requires(Action.RULE_TRIGGER, Audit("rule", "trigger", "rule_id", ("task_id",)))
    @blp.response(202, TaskStartedSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such rule.")
    @blp.alt_response(409, schema=ErrorSchema, description="The rule is disabled.")
    def post(self, rule_id):
        """Start a manual sync task of the rule now."""
        on_rule(Action.RULE_TRIGGER, rule_id)
        return _started(service.trigger_rule(app_settings(), require_tenant(), rule_id))


@blp.route("/rules/<uuid:rule_id>/tasks")
class RuleTasks(MethodView):
    @requires(Action.TASK_READ)
    @blp.response(200, TaskSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, schema=ErrorSchema, description="No such rule.")
    def get(self, rule_id, pagination_parameters):
        """The rule's task log, newest first."""
        on_rule(Action.TASK_READ, rule_id)
        return page_of(service.list_tasks, pagination_parameters, rule_id)


@blp.route("/tasks/<string:task_id>")
class Task(MethodView):
    @requires(Action.TASK_READ)
    @blp.response(200, TaskSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such task.")
    def get(self, task_id):
        """One task with its figures (live while it runs)."""
        on_task(Action.TASK_READ, task_id)
        return service.get_task(app_settings(), require_tenant(), task_id)


@blp.route("/tasks/<string:task_id>/items")
class TaskItems(MethodView):
    @requires(Action.TASK_READ)
    @blp.arguments(ItemQuerySchema, location="query")
    @blp.response(200, ItemSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, schema=ErrorSchema, description="No such task.")
    def get(self, args, task_id, pagination_parameters):
        """The task's items, optionally only those with one outcome."""
        on_task(Action.TASK_READ, task_id)
        status = args.get("status")
        return page_of(
            service.list_items,
            pagination_parameters,
            task_id,
            status=ItemStatus(status) if status else None,
        )


@blp.route("/tasks/<string:task_id>/stop")
class Stop(MethodView):
    @requires(Action.TASK_STOP, Audit("task", "stop", "task_id"))
    @blp.response(202, TaskSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such task.")
    @blp.alt_response(409, schema=ErrorSchema, description="The task already finished.")
    def post(self, task_id):
        """Stop a task: pending items never start, running copies stop between chunks."""
        on_task(Action.TASK_STOP, task_id)
        return service.stop_task(app_settings(), require_tenant(), task_id)


@blp.route("/tasks/<string:task_id>/retry")
class Retry(MethodView):
    @requires(Action.TASK_RETRY, Audit("task", "retry", "task_id", ("task_id",)))
    @blp.response(202, TaskStartedSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such task.")
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="The task runs, has no failed item, or its rule is gone.",
    )
    def post(self, task_id):
        """Start a new task with only the failed items of this one."""
        on_task(Action.TASK_RETRY, task_id)
        return _started(service.retry_task(app_settings(), require_tenant(), task_id))


@blp.route("/rules/<uuid:rule_id>/preview")
class Preview(MethodView):
    @requires(Action.RULE_READ)
    @blp.response(200, PreviewSchema(many=True), headers=PREVIEW_HEADERS)
    @blp.paginate()
    @blp.alt_response(404, schema=ErrorSchema, description="No such rule.")
    @blp.alt_response(502, schema=ErrorSchema, description="A registry failed to answer.")
    def get(self, rule_id, pagination_parameters):
        """What the rule selects now and whether the target has it; copies nothing."""
        on_rule(Action.RULE_READ, rule_id)
        page = preview_rule(
            app_settings(),
            require_tenant(),
            rule_id,
            offset=pagination_parameters.first_item,
            size=pagination_parameters.page_size,
        )
        if page.item_count is not None:
            pagination_parameters.item_count = page.item_count
        body = [
            {**asdict(c.item), "target_has_it": c.target_has_it, "target_digest": c.target_digest}
            for c in page.candidates
        ]
        if page.item_count == 0:
            why = explain_empty_preview(app_settings(), require_tenant(), rule_id)
            if why is not None:
                return body, {EXPLANATION_HEADER: json.dumps(why.as_dict())}
        return body
