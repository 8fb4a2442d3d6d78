"""The web console driven as a user drives it, in headless Chromium, against a running
local cloud: the live map, an upload, an order, a DLQ redrive, and no script error."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from localcloud.cloud import LocalCloud
from tests.console.conftest import PageErrors, screenshot
from tests.localcloud.http_api import call
from tests.localcloud.runtime_harness import wait_for

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def open_view(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def figures(page: Page, node: str) -> str:
    return page.locator(f"[data-node='{node}'] > .figures").text_content() or ""


def test_the_map_is_live_and_an_uploaded_csv_reaches_completed(
    cloud: LocalCloud, console_url: str, page: tuple[Page, PageErrors]
):
    browser, errors = page
    browser.goto(console_url)
    expect(browser.locator("#connection")).to_contain_text("live")
    # Every declared function and queue is on the map, with its figures filled in.
    for node in (
        "function:write_readings",
        "function:update_inventory",
        "queue:ingest",
        "stream:orders",
    ):
        expect(browser.locator(f"[data-node='{node}'] > .figures")).not_to_have_text("")
    before = figures(browser, "function:write_readings")
    screenshot(browser, "pipeline")

    open_view(browser, "Ingest")
    browser.set_input_files("#upload-file", str(SAMPLES / "readings_bad.csv"))
    browser.get_by_role("button", name="Upload").click()
    expect(browser.locator("#upload-result")).to_contain_text("uploaded readings_bad.csv")
    job = browser.locator("#jobs tr[data-job]").first
    expect(job.locator(".job-state")).to_have_text(re.compile("^COMPLETED"))
    expect(job.locator("progress")).to_have_attribute("value", "1")
    job.get_by_role("button", name="open").click()
    expect(browser.locator("#rejects-table tbody tr").first).to_be_visible()
    screenshot(browser, "ingest")

    open_view(browser, "Pipeline")
    # The map's counts moved with the upload, without a reload.
    expect(browser.locator("[data-node='function:write_readings'] > .figures")).not_to_have_text(
        before
    )
    assert errors == []


def test_an_order_placed_from_the_page_is_confirmed_and_mailed(
    cloud: LocalCloud, console_url: str, page: tuple[Page, PageErrors]
):
    browser, errors = page
    body = {"name": "Lamp", "price": "19.99", "stock": 3}
    assert call(cloud.api_port, "PUT", "/products/lamp", body)[0] == 201
    browser.goto(console_url)
    open_view(browser, "Orders")
    expect(browser.locator("#products tbody")).to_contain_text("lamp")
    browser.select_option("#order-product", "lamp")
    browser.fill("#order-quantity", "2")
    browser.get_by_role("button", name="Place order").click()
    expect(browser.locator("#order-result")).to_contain_text("placed order")
    order_id = re.search(r"[0-9a-f]{32}", browser.locator("#order-result").text_content()).group()
    expect(browser.locator("#order-detail-status")).to_contain_text("CONFIRMED")
    expect(browser.locator("#order-events")).to_contain_text("ORDER_CREATED")
    expect(browser.locator("#order-mails")).to_contain_text(f"Your order {order_id} is confirmed")
    expect(browser.locator("#products tbody")).to_contain_text("lamp12")  # stock 1, reserved 2
    browser.get_by_role("button", name="Ship").click()
    expect(browser.locator("#order-detail-status")).to_contain_text("SHIPPED")
    screenshot(browser, "orders")

    open_view(browser, "Mail")
    expect(browser.locator("#mail tbody")).to_contain_text(f"We received your order {order_id}")
    expect(browser.locator("#mail tbody")).to_contain_text(f"Your order {order_id} has shipped")
    screenshot(browser, "mail")
    assert errors == []


def test_a_dead_letter_turns_its_queue_red_and_the_redrive_button_brings_it_back(
    cloud: LocalCloud, console_url: str, page: tuple[Page, PageErrors]
):
    browser, errors = page
    # An order for a product that does not exist yet: the intake sends it to its DLQ at once.
    message = {
        "type": "order_created",
        "idempotency_key": f"partner-{uuid.uuid4().hex[:8]}",
        "data": {
            "customer_id": "partner",
            "customer_email": "partner@example.com",
            "items": [{"product_id": "late-product", "quantity": 1}],
        },
    }
    cloud.clients.sqs.send_message(
        QueueUrl=cloud.outputs.queues["order-intake"]["url"],
        MessageBody=json.dumps(message),
        MessageGroupId="partner",
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    browser.goto(console_url)
    badge = browser.locator("[data-dlq='order-intake-dlq']")
    expect(badge).to_have_class(re.compile(r"\bred\b"))
    expect(badge).to_contain_text("1 dead letter")
    open_view(browser, "Queues & DLQs")
    row = browser.locator("#queues tr[data-queue='order-intake']")
    expect(row.locator(".dlq-count")).to_have_class(re.compile(r"\bred\b"))
    row.get_by_role("button", name="Peek").click()
    expect(browser.locator("#peek-table")).to_contain_text("late-product")
    screenshot(browser, "queues")

    # The fix: the product exists now. Then the redrive, confirmed in the page.
    body = {"name": "Late", "price": "1.00", "stock": 5}
    assert call(cloud.api_port, "PUT", "/products/late-product", body)[0] == 201
    row.get_by_role("button", name="Redrive").click()
    expect(browser.locator("#confirm-dialog")).to_be_visible()
    browser.get_by_role("button", name="Confirm").click()
    expect(browser.locator("#queue-result")).to_contain_text("moved 1 message(s)")
    expect(row.locator(".dlq-count")).to_have_text("0")
    expect(badge).not_to_have_class(re.compile(r"\bred\b"))
    # The redriven message is the intake's again: the order appears once it is consumed.
    assert wait_for(lambda: partner_orders(cloud) == 1, 60), partner_orders(cloud)
    assert errors == []


def partner_orders(cloud: LocalCloud) -> int:
    status, page_of_orders = call(cloud.api_port, "GET", "/customers/partner/orders")
    assert status == 200, page_of_orders
    return len(page_of_orders["items"])


def test_metrics_and_alarms_are_drawn_and_the_views_work_from_the_keyboard(
    cloud: LocalCloud, console_url: str, page: tuple[Page, PageErrors]
):
    browser, errors = page
    browser.goto(console_url)
    expect(browser.locator("#connection")).to_contain_text("live")
    # Tab to the Metrics view and open it with Enter.
    for _ in range(10):
        browser.keyboard.press("Tab")
        if browser.evaluate("document.activeElement.dataset.view") == "metrics":
            break
    browser.keyboard.press("Enter")
    expect(browser.locator("#view-metrics")).to_be_visible()
    expect(browser.locator("#charts figure")).to_have_count(4)
    alarms = browser.locator("#alarms tbody tr")
    expect(alarms.first).to_be_visible()
    assert alarms.count() == len(cloud.stack.alarms)
    expect(browser.locator("[data-alarm='order-intake-dlq-not-empty']")).to_contain_text("OK")
    screenshot(browser, "metrics")
    assert errors == []


def test_the_page_says_what_it_waits_for_when_the_local_cloud_is_gone(
    cloud: LocalCloud, console_url: str, page: tuple[Page, PageErrors]
):
    browser, errors = page
    browser.goto(console_url)
    expect(browser.locator("#connection")).to_contain_text("live")
    cloud.stop()
    expect(browser.locator("#connection")).to_contain_text("waiting for")
    expect(browser.locator("#connection")).to_contain_text("moto")
    assert errors == []
