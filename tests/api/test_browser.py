"""The page in a real browser (Debian's Chromium, driven by Playwright): sign in, the seeded
executions, the failed one's error, a retried step on the timeline, and a transition committed
through the store showing up live, without a reload. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from optiinfra_store.enums import WorkflowType
from optiinfra_store.records import WorkflowExecutionCreate
from tests.api.conftest import TECHSTART, live_server, token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAILED = "f1000000-0000-4000-8000-000000000003"
RETRIED = "f1000000-0000-4000-8000-000000000004"
SEED_AGENT = "a1000000-0000-4000-8000-000000000004"
LIVE_WITHIN_MS = 2000

# .ci/run installs chromium and sets OPTIINFRA_REQUIRE_TOOLS: there a missing browser fails the test
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("OPTIINFRA_REQUIRE_TOOLS"),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


async def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


async def test_browser__sign_in_history_failed_execution_retries_and_live_updates(api_store, seeded, store):
    from playwright.async_api import async_playwright, expect

    async with live_server(api_store) as (url, _), async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)
            await page.get_by_test_id("token-input").fill(token(TECHSTART, subject="ops@techstart.example"))
            await page.get_by_test_id("sign-in").click()
            await expect(page.get_by_test_id("signed-in-as")).to_contain_text("TechStart Inc")
            rows = page.get_by_test_id("history-row")
            await expect(rows).to_have_count(2)
            assert {await r.get_attribute("data-execution-id") for r in await rows.all()} == {FAILED, RETRIED}
            await expect(page.get_by_test_id("live-status")).to_have_text("live")

            await page.locator(f'[data-testid="history-row"][data-execution-id="{FAILED}"]').click()
            view = page.get_by_test_id("execution-view")
            await expect(view).to_be_visible()
            await expect(page.get_by_test_id("execution-status")).to_contain_text("failed")
            await expect(page.get_by_test_id("execution-error")).to_contain_text(
                "Quality score dropped below threshold"
            )
            await expect(page.locator('[data-testid="timeline-bar"][data-status="failed"]')).to_have_count(1)
            await expect(page.get_by_test_id("transition-row")).not_to_have_count(0)
            await screenshot(page, "failed-execution")

            await page.goto(f"{url}/")  # the token stays in the tab's session storage
            await page.locator(f'[data-testid="history-row"][data-execution-id="{RETRIED}"]').click()
            retried = page.locator('[data-testid="timeline-bar"][data-retries="2"]')
            await expect(retried).to_have_count(1)
            assert await retried.get_attribute("data-step-name") == "execute_scaling"
            await expect(retried).to_be_visible()

            # live: a new execution appears in the table, then its start shows on its open view
            await page.goto(f"{url}/")
            await expect(rows).to_have_count(2)
            created_at = time.monotonic()
            execution = await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=SEED_AGENT, customer_id=TECHSTART, workflow_type=WorkflowType.HEALTH_CHECK
                )
            )
            fresh = page.locator(f'[data-testid="history-row"][data-execution-id="{execution.id}"]')
            await expect(fresh).to_have_count(1, timeout=LIVE_WITHIN_MS)
            appeared_ms = (time.monotonic() - created_at) * 1000
            await fresh.click()
            await expect(page.get_by_test_id("execution-status")).to_contain_text("pending")
            started_at = time.monotonic()
            await store.workflow_executions.start(execution.id, actor="browser-test")
            await expect(page.get_by_test_id("execution-status")).to_contain_text("running", timeout=LIVE_WITHIN_MS)
            await expect(page.locator('[data-testid="transition-row"]')).to_have_count(2, timeout=LIVE_WITHIN_MS)
            print(
                f"live: new row after {appeared_ms:.0f} ms, status after {(time.monotonic() - started_at) * 1000:.0f} ms"
            )
            await screenshot(page, "live-update")

            phone = await browser.new_page(viewport={"width": 375, "height": 800})
            await phone.goto(url)
            await phone.get_by_test_id("token-input").fill(token(TECHSTART))
            await phone.get_by_test_id("sign-in").click()
            await expect(phone.get_by_test_id("history-row")).to_have_count(3)
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"the page is {width}px wide on a 375px screen"
            await screenshot(phone, "phone-history")
            assert errors == []
        finally:
            await browser.close()
