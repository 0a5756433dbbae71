"""Registry credentials: which ones a rule uses, and checking them against the registry.

Passwords are stored only as Fernet tokens (``common.security.crypto.SecretBox``) and
decrypted here, at the moment of use. :func:`check_registry` is the one place
the API talks to a registry: it proves that the registry answers ``/v2/``,
accepts the credentials, and (optionally) lets them push to a repository.
"""

from __future__ import annotations

import psycopg

from common.db.instances import get_instance
from common.domain.models import Instance, Rule
from common.errors import NotFound
from common.registry import RegistryClient, RetryPolicy
from common.registry.deadline import budget
from common.security.crypto import SecretBox
from common.settings import Settings

# The repository below the target namespace used to prove push permission; the
# upload session opened there is cancelled at once, so nothing is written.
PERMISSION_CHECK_REPOSITORY = "ferry-permission-check"
CHECK_TIMEOUT = (5.0, 20.0)  # connect, read (seconds)
# One retry after a short pause: enough for a blip, short enough for a person waiting.
CHECK_RETRY = RetryPolicy(attempts=2, backoff=0.2, max_backoff=1.0, max_retry_after=2.0)
# The whole check (every request, token, retry) is over within this, however the
# registry answers: a trickling registry cannot hold an API thread.
CHECK_BUDGET_SECONDS = 15.0


def instance_credentials(
    instance: Instance, box: SecretBox | None
) -> tuple[str | None, str | None]:
    """The instance's own (username, password), decrypted; (None, None) when it has none.

    ``box`` may be None only for an instance without a password.
    """
    enc = instance.password_enc
    if enc is not None and box is None:
        raise ValueError("a SecretBox is needed to decrypt the stored password")
    password = box.decrypt(enc) if enc is not None and box is not None else None
    return instance.username, password


def source_credentials(
    conn: psycopg.Connection, rule: Rule, box: SecretBox
) -> tuple[str | None, str | None]:
    """The (username, password) to read the rule's source with: its instance's own."""
    instance = get_instance(conn, rule.source_instance_id, rule.tenant_id)
    if instance is None:
        raise NotFound(f"source instance of rule {rule.id} no longer exists")
    return instance_credentials(instance, box)


def target_credentials(
    conn: psycopg.Connection, rule: Rule, box: SecretBox
) -> tuple[str | None, str | None]:
    """The (username, password) to write to the rule's target with.

    Cross-tenant rules carry their own credentials; same-tenant rules use the
    target instance's stored ones.
    """
    if rule.cross_tenant:
        enc = rule.target_password_enc
        return rule.target_username, box.decrypt(enc) if enc is not None else None
    instance = get_instance(conn, rule.target_instance_id, rule.tenant_id)
    if instance is None:
        raise NotFound(f"target instance of rule {rule.id} no longer exists")
    return instance_credentials(instance, box)


def check_registry(
    url: str,
    username: str | None,
    password: str | None,
    verify_tls: bool,
    settings: Settings,
    push_repository: str | None = None,
) -> None:
    """Return only when the registry answers /v2/, accepts the credentials and, if given,
    lets them push to ``push_repository``.

    Raises NetworkPolicyError (address refused), RegistryUnavailable (cannot
    connect, 5xx), AuthError (credentials refused), PermissionDenied (no push
    right) or RegistryError (any other answer); messages quote the registry's
    answer and never contain the credentials.
    """
    # A person waits for this answer: fail within seconds rather than retry for minutes.
    client = RegistryClient(
        url,
        username=username,
        password=password,
        verify_tls=verify_tls,
        settings=settings,
        timeout=CHECK_TIMEOUT,
        retry=CHECK_RETRY,
        deadline=CHECK_BUDGET_SECONDS,
    )
    try:
        with budget(CHECK_BUDGET_SECONDS):
            client.ping()
            if push_repository is not None:
                client.check_push(push_repository)
    finally:
        client.close()
