"""The console end to end in Debian's headless Chromium: a live API, a real worker and two
real registries. Each step checks the page, and the registries and the database behind it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from common.services import instances as instance_service
from common.settings import Settings
from tests.support.browser import chromium
from tests.support.console import make_account
from tests.support.liveserver import LiveServer
from tests.support.oci import get_manifest, push_image
from tests.support.registry import RegistryServer
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).resolve().parents[2] / "ops" / "screenshots"
WAIT = 30  # seconds any page condition may take on a loaded machine


def one(db: psycopg.Connection, query: str, *params) -> dict | None:
    return db.execute(query, params).fetchone()


class Page:
    """The few gestures the test makes, each waiting for its condition (no fixed sleeps)."""

    def __init__(self, driver, base: str) -> None:
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.base, self.by = driver, base, By
        # The page's polling replaces the status badges it updates: look again.
        self.wait = WebDriverWait(
            driver,
            WAIT,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        self.shots: dict[str, bytes] = {}

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def css(self, selector: str):
        return self.wait.until(lambda d: d.find_element(self.by.CSS_SELECTOR, selector))

    def fill(self, field_id: str, value: str) -> None:
        element = self.css(f"#{field_id}")
        element.clear()
        element.send_keys(value)

    def click(self, selector: str) -> None:
        self.css(selector).click()

    def text(self) -> str:
        return self.driver.find_element(self.by.TAG_NAME, "body").text

    def until(self, condition: Callable[[], object], what: str) -> None:
        self.wait.until(lambda _d: condition(), message=what)

    def shows(self, text: str) -> None:
        self.until(lambda: text in self.text(), f"page never showed {text!r}")

    def shot(self, name: str, width: int = 1280, height: int = 900) -> None:
        """Keep a screenshot for the README; written only once the whole test passed."""
        self.driver.set_window_size(width, height)
        self.shots[name] = self.driver.get_screenshot_as_png()
        self.driver.set_window_size(1280, 900)


def test_console_end_to_end(
    app, settings: Settings, db: psycopg.Connection, registry_factory
) -> None:
    src: RegistryServer = registry_factory({"alice": "alice-pw"})
    dst: RegistryServer = registry_factory({"bob": "bob-pw"})
    pushed = push_image(src.session(), src.url, "library/app", "1")
    acme = make_account(settings, "acme")
    partner = make_account(settings, "partner")
    partner_instance, _ = instance_service.create_instance(
        settings,
        partner.id,
        {"name": "partner-registry", "url": dst.url, "username": "bob", "password": "bob-pw"},
    )
    with LiveServer(app) as live, chromium() as driver:
        page = Page(driver, live.url)
        try:
            _walk(page, db, settings, acme, partner, partner_instance, src, dst, pushed)
        except BaseException:
            failure = Path(tempfile.gettempdir()) / f"ferry-console-e2e-{os.getpid()}.png"
            driver.save_screenshot(str(failure))
            print(f"screenshot of the failure: {failure}\n{driver.current_url}")
            raise
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, png in page.shots.items():
        (SCREENSHOTS / name).write_bytes(png)


def _walk(page: Page, db, settings, acme, partner, partner_instance, src, dst, pushed) -> None:
    # 1. Sign in.
    page.open("/")
    page.fill("tenant", acme.name)
    page.fill("user_name", "admin")
    page.fill("password", acme.admin_password)
    page.click("#sign-in")
    page.shows("No instance yet")
    assert "admin" in page.css(".who").text

    # 2. Two instances backed by real registries; each secret shown once with its snippet.
    for name, registry, user, password in (
        ("source", src, "alice", "alice-pw"),
        ("backup", dst, "bob", "bob-pw"),
    ):
        page.open("/instances/new")
        page.fill("name", name)
        page.fill("url", registry.url)
        page.fill("username", user)
        page.fill("password", password)
        page.click("#save-instance")
        secret = page.css("#webhook-secret").text
        assert f"Authorization: [Bearer {secret}]" in page.css("#snippet").text
        row = one(db, "SELECT * FROM instances WHERE tenant_id = %s AND name = %s", acme.id, name)
        assert row is not None and row["url"] == registry.url
        assert bytes(row["webhook_secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    page.open("/instances")
    page.shows("backup")
    source_id = one(db, "SELECT id FROM instances WHERE name = 'source'")["id"]

    # 3. A cross-tenant rule through the form: the name is checked as it is typed, and a
    # refused field is shown beside itself, then fixed.
    page.open(f"/instances/{source_id}/rules")
    page.click("#create-rule")
    page.fill("name", "To Partner")
    page.until(lambda: page.css(".error.live[data-field=name]").is_displayed(), "live check")
    page.fill("name", "to-partner")
    page.until(lambda: not page.css(".error.live[data-field=name]").is_displayed(), "name ok")
    page.fill("source_namespace", "library")
    page.fill("tag_filter", "v(")
    page.click("#cross_tenant")
    page.until(lambda: page.css("#cross_instance_id").is_displayed(), "cross-tenant fields")
    page.fill("cross_instance_id", str(partner_instance.id))
    page.fill("account_id", str(partner.id))
    page.fill("username", "bob")
    page.fill("password", "bob-pw")
    page.fill("target_namespace", "team")
    page.click("#save-rule")
    error = page.css(".error[data-field=tag_filter]").text
    assert "invalid regular expression" in error
    assert one(db, "SELECT count(*) AS n FROM rules")["n"] == 0
    page.shot("rule-form.png", height=1900)
    page.fill("tag_filter", "[0-9]+")
    page.fill("password", "bob-pw")  # a password is never sent back to the browser
    page.click("#save-rule")
    page.shows("Rule to-partner created.")
    rule = one(db, "SELECT * FROM rules WHERE name = 'to-partner'")
    assert rule["cross_tenant"] and rule["target_account_id"] == partner.id
    assert rule["target_instance_id"] == partner_instance.id and rule["tag_filter"] == "[0-9]+"
    assert b"bob-pw" not in bytes(rule["target_password_enc"])

    # 4. Preview: what the rule selects now, and that the target lacks it.
    page.click("#configure-to-partner")
    page.click("#preview")
    preview = page.css("#preview-table")
    page.until(lambda: "library/app:1" in preview.text, "preview rows")
    assert "team/app:1" in preview.text and "to copy" in preview.text
    assert get_manifest(dst.session(), dst.url, "team/app", "1") is None

    # 5. Trigger: the task waits (no worker yet) and the log shows its bar.
    page.open(f"/instances/{source_id}/rules")
    page.click("#trigger-to-partner")
    page.shows("started.")
    bar = page.css(".progress.running")
    assert bar.get_attribute("aria-valuenow") == "0"
    page.driver.execute_script("window.ferryNoReload = true;")
    task = one(db, "SELECT task_id, status FROM sync_tasks WHERE rule_id = %s", rule["id"])
    assert task["status"] == "Pending"

    # 6. With a worker, the bar reaches Succeeded without a reload.
    worker = WorkerProcess(settings).start()
    try:
        status = f"tr[data-task='{task['task_id']}'] [data-k=status] .badge"
        page.until(
            lambda: page.css(status).get_attribute("data-status") == "Succeeded", "Succeeded"
        )
    finally:
        worker.stop()
    assert page.driver.execute_script("return window.ferryNoReload === true;")
    assert (
        page.css(f"tr[data-task='{task['task_id']}'] .progress").get_attribute("aria-valuenow")
        == "100"
    )
    copied = get_manifest(dst.session(), dst.url, "team/app", "1")
    assert copied is not None and copied.digest == pushed.digest
    done = one(
        db, "SELECT status, copied, total FROM sync_tasks WHERE task_id = %s", task["task_id"]
    )
    assert (done["status"], done["copied"], done["total"]) == ("Succeeded", 1, 1)
    page.driver.refresh()
    page.css("#chart rect.bar")
    page.shot("sync-log.png")

    # 7. The task: counts, who started it, the item.
    page.click(f"tr[data-task='{task['task_id']}'] a")
    page.shows("copied 1")
    assert page.css("#starter").text == "user admin"
    assert "library/app:1" in page.css("#items").text

    # 8. Disable, then delete with a confirmation (the list fits a 390 px phone, too).
    page.open(f"/instances/{source_id}/rules")
    page.shot("rule-list.png")
    page.driver.set_window_size(390, 844)
    page.open(f"/instances/{source_id}/rules")
    inner = page.driver.execute_script("return document.documentElement.clientWidth;")
    wide = page.driver.execute_script("return document.documentElement.scrollWidth;")
    assert wide <= inner <= 390, (wide, inner)
    assert page.css("#switch-to-partner").is_displayed()
    page.shot("rule-list-390.png", width=390, height=844)
    page.click("#switch-to-partner")
    page.shows("Rule to-partner disabled.")
    assert page.css("#switch-to-partner").text == "Off"
    assert one(db, "SELECT enabled FROM rules WHERE id = %s", rule["id"])["enabled"] is False
    page.click("#delete-to-partner")
    page.click("#confirm-delete")
    page.shows("Rule to-partner deleted.")
    assert page.driver.find_elements(page.by.CSS_SELECTOR, "tr[data-rule='to-partner']") == []
    assert one(db, "SELECT count(*) AS n FROM rules")["n"] == 0
    kept = one(db, "SELECT rule_id FROM sync_tasks WHERE task_id = %s", task["task_id"])
    assert kept["rule_id"] is None  # the log stays, without its rule
