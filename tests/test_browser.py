"""The admin's key flows in a real browser: Debian's Chromium, headless, driven by Playwright,
against a live server on loopback. Skipped where no Chromium is installed (CI installs it)."""

from __future__ import annotations

import shutil

import pytest
from django.utils import timezone

from sync.models import InitialImport, PendingOrder
from tests.factories import UserFactory, create_orders
from webhooks.models import Endpoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls are the test's.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    UserFactory(username="staff", password="pw-for-tests", is_staff=True, is_superuser=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "pw-for-tests")
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        page.base = live_server.url  # type: ignore[attr-defined]
        yield page
        browser.close()


def test_log_in_and_see_the_dashboard(page):
    assert page.locator("#dashboard").is_visible()
    assert "CRM endpoints" in page.inner_text("#dashboard")


def test_create_an_endpoint_and_see_its_secret_once(page):
    page.goto(f"{page.base}/admin/webhooks/endpoint/add/")
    page.fill("#id_name", "Salesforce")
    page.fill("#id_url", "http://127.0.0.1:9/hook")
    page.click("input[name=_save]")
    assert "shown on this page only" in page.inner_text(".messagelist")
    secret = page.inner_text("#signing-secret")
    assert secret.startswith("whsec_")
    endpoint = Endpoint.objects.get(name="Salesforce")
    assert endpoint.signing_secret == secret
    assert not [c for c in page.context.cookies() if secret in c["value"]]
    page.click("text=I have copied it")
    page.wait_for_url(f"**/admin/webhooks/endpoint/{endpoint.pk}/change/")
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()


def test_flag_an_initial_import_with_preview_and_confirm(page):
    orders = create_orders(6)
    endpoint = Endpoint.objects.create(name="CRM", url="http://127.0.0.1:9/h")
    endpoint.signing_secret = "whsec_" + "A" * 44
    endpoint.save()
    start = min(o["creation_date_time"] for o in orders)
    page.goto(f"{page.base}/admin/sync/initialimport/add/")
    page.select_option("#id_endpoint", str(endpoint.pk))
    page.fill("#id_created_from_0", f"{start:%Y-%m-%d}")
    page.fill("#id_created_from_1", "00:00:00")
    page.fill("#id_created_to_0", f"{timezone.now():%Y-%m-%d}")
    page.fill("#id_created_to_1", "23:59:59")
    page.click("input[name=_preview]")
    assert "6 orders will be flagged" in page.inner_text("#import-preview")
    assert not PendingOrder.objects.exists()
    page.click("input[name=_confirm]")
    page.wait_for_selector("#import-progress")
    assert page.inner_text("#import-pending") == "6"
    assert InitialImport.objects.get().flagged == 6


def test_upload_two_exports_and_read_the_differences(page, tmp_path, monkeypatch):
    from reconciliation import tasks

    monkeypatch.setattr(tasks.run_reconciliation, "delay", tasks.run_reconciliation)
    s360 = tmp_path / "s360.csv"
    s360.write_text(
        "ORDER_ID;ORDER_STATE;SALE_AMOUNT\n1;CLOSED;40.00\n2;CLOSED;10.00\n3;CLOSED;5\n"
    )
    crm = tmp_path / "crm.csv"
    crm.write_text("ORDER_ID;ORDER_STATE;SALE_AMOUNT\n1;CLOSED;40,00\n2;CANCELLED;10\n4;CLOSED;1\n")
    page.goto(f"{page.base}/admin/reconciliation/reconciliation/add/")
    page.set_input_files("#id_crm_file", str(crm))
    page.set_input_files("#id_s360_file", str(s360))
    page.click("input[name=_compare]")
    page.wait_for_selector("#card-mismatched")
    assert page.inner_text("#card-matched") == "1"
    assert page.inner_text("#card-mismatched") == "1"
    assert page.inner_text("#card-only-s360") == "1"
    assert page.inner_text("#card-only-crm") == "1"
    table = page.inner_text("#differences")
    assert "CANCELLED" in table and "ORDER_STATE" in table


def test_replay_a_parked_order(page):
    create_orders(2)
    endpoint = Endpoint.objects.create(name="CRM", url="http://127.0.0.1:9/h")
    endpoint.signing_secret = "whsec_" + "A" * 44
    endpoint.save()
    orders = create_orders(1)
    PendingOrder.objects.filter(endpoint=endpoint).update(
        parked_at=timezone.now(), attempts=12, last_error="HTTP 500"
    )
    page.goto(f"{page.base}/admin/sync/pendingorder/?state=parked")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "replay")
    page.click("button[name=index]")
    assert "1 parked orders will be sent" in page.inner_text(".messagelist")
    row = PendingOrder.objects.get(endpoint=endpoint, order_id=orders[0]["order_id"])
    assert (row.parked_at, row.attempts) == (None, 0)
