"""Reconciliations through the API and the admin: upload, compare, read, download, re-sync."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from orders.export import export_csv_blocks
from orders.selectors import order_export_rows
from reconciliation import tasks
from reconciliation.models import Difference, Reconciliation
from sync.models import PendingOrder, SyncReason
from tests.factories import UserFactory, create_orders
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db
API = "/api/v1/reconciliations/"


@pytest.fixture(autouse=True)
def worker(monkeypatch):
    """The comparison runs where a Celery worker would, right after the request commits."""
    monkeypatch.setattr(tasks.run_reconciliation, "delay", tasks.run_reconciliation)


def s360_export() -> str:
    return "".join(export_csv_blocks(order_export_rows()))


def crm_from(export: str, *, drop: int = 0, change: dict | None = None, extra: int = 0) -> bytes:
    """A CRM export made from ours: `drop` rows missing, some values changed, extra rows."""
    rows = list(csv.reader(io.StringIO(export), delimiter=";"))
    header, body = rows[0], rows[1 + drop :]
    for index, (column, value) in (change or {}).items():
        body[index][header.index(column)] = value
    for n in range(extra):
        extra_row = list(body[0])
        extra_row[0] = str(99_000_000_000 + n)
        body.append(extra_row)
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows([header, *body])
    return out.getvalue().encode()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_a_reconciliation_against_the_database_finds_every_difference(
    api, django_capture_on_commit_callbacks
):
    orders = create_orders(20)
    export = s360_export()
    crm = crm_from(export, drop=2, change={5: ("ORDER_STATE", "ABANDONED")}, extra=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(API, {"crmFile": upload("crm.csv", crm)}, format="multipart")
    assert response.status_code == 201, response.content
    record = api.get(f"{API}{response.json()['id']}/").json()
    assert record["status"] == "DONE", record
    assert record["s360Generated"] is True
    ids = sorted(o["order_id"] for o in orders)
    assert record["summary"] | {"mismatchesByColumn": None} == {
        "columnsOnlyInS360": [],
        "columnsOnlyInCrm": [],
        "rowsWithoutKeyS360": 0,
        "rowsWithoutKeyCrm": 0,
        "s360Rows": 20,
        "crmRows": 19,
        "matched": 17,
        "onlyInS360": 2,
        "onlyInCrm": 1,
        "mismatched": 1,
        "duplicateKeysS360": 0,
        "duplicateKeysCrm": 0,
        "unparseable": 0,
        "mismatchesByColumn": None,
    }
    page = api.get(f"{API}{record['id']}/differences/", {"kind": "ONLY_IN_S360"}).json()
    assert [d["key"] for d in page["results"]] == [str(i) for i in ids[:2]]
    mismatch = api.get(f"{API}{record['id']}/differences/", {"kind": "MISMATCH"}).json()["results"]
    assert [(d["key"], d["column"], d["crmValue"]) for d in mismatch] == [
        (str(ids[7]), "ORDER_STATE", "ABANDONED")
    ]
    report = b"".join(api.get(f"{API}{record['id']}/report.csv").streaming_content).decode()
    assert report.splitlines()[0] == "KIND;KEY;COLUMN;S360_VALUE;CRM_VALUE"
    assert len(report.splitlines()) == 1 + 4
    by_column = api.get(f"{API}{record['id']}/differences/", {"column": "ORDER_STATE"}).json()
    assert [d["key"] for d in by_column["results"]] == [str(ids[7])]
    # Bad filters are a 400 naming the parameter (a NUL used to be PostgreSQL's 500).
    for params in ({"kind": "BOGUS"}, {"column": "\x00"}, {"column": "X" * 201}):
        refused = api.get(f"{API}{record['id']}/differences/", params)
        assert refused.status_code == 400, (params, refused.content)
        assert list(refused.json()) == list(params)


def test_resync_flags_only_differing_orders_that_exist_in_s360(
    api, django_capture_on_commit_callbacks
):
    create_orders(10)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/h"})
    PendingOrder.objects.all().delete()  # everything was delivered
    export = s360_export()
    crm = crm_from(export, drop=1, change={3: ("SALE_AMOUNT", "0.01")}, extra=2)
    with django_capture_on_commit_callbacks(execute=True):
        record_id = api.post(API, {"crmFile": upload("c.csv", crm)}, format="multipart").json()[
            "id"
        ]
    response = api.post(f"{API}{record_id}/resync/", {"endpoint": endpoint.pk}, format="json")
    assert response.json() == {"flagged": 2}
    rows = PendingOrder.objects.filter(endpoint=endpoint)
    assert {r.reason for r in rows} == {SyncReason.RESYNC} and rows.count() == 2
    assert (
        api.post(f"{API}{record_id}/resync/", {"endpoint": 999}, format="json").status_code == 400
    )


def test_a_column_map_and_an_uploaded_s360_file(api, django_capture_on_commit_callbacks):
    s360 = b"ORDER_ID;ORDER_STATE;SALE_AMOUNT\n1;CLOSED;40.00\n2;CLOSED;10.00\n"
    crm = "Order;Status;SALE_AMOUNT\n1;CLOSED;40,00\n2;Cancelled;10\n".encode("cp1252")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            API,
            {
                "crmFile": upload("c.csv", crm),
                "s360File": upload("s.csv", s360),
                "columnMap": '{"Order": "ORDER_ID", "Status": "ORDER_STATE"}',
                "caseInsensitiveColumns": "ORDER_STATE",
            },
            format="multipart",
        )
    record = api.get(f"{API}{response.json()['id']}/").json()
    assert record["summary"]["matched"] == 1 and record["summary"]["mismatched"] == 1


@pytest.mark.parametrize(
    "crm, message",
    [
        (b" \n", "empty"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"just text without delimiters\n", "header row"),
        (b"Order;Status\n1;CLOSED\n", "no key column"),
    ],
)
def test_bad_files_end_failed_with_a_message_not_a_crash(
    api, django_capture_on_commit_callbacks, crm, message
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            API,
            {"crmFile": upload("c.csv", crm), "s360File": upload("s.csv", b"ORDER_ID;A\n1;2\n")},
            format="multipart",
        )
    assert response.status_code == 201
    record = api.get(f"{API}{response.json()['id']}/").json()
    assert record["status"] == "FAILED"
    assert message in record["error"]


def test_bad_requests_are_400_or_413(api, settings):
    assert api.post(API, {}, format="multipart").status_code == 400
    empty = api.post(API, {"crmFile": upload("c.csv", b"")}, format="multipart")
    assert empty.status_code == 400 and "empty" in str(empty.json()["crmFile"])
    bad_map = api.post(
        API, {"crmFile": upload("c.csv", b"A;B\n1;2\n"), "columnMap": "{nope"}, format="multipart"
    )
    assert bad_map.status_code == 400 and "columnMap" in bad_map.json()
    settings.RECONCILIATION_MAX_UPLOAD_BYTES = 10
    too_big = api.post(
        API, {"crmFile": upload("c.csv", b"ORDER_ID;B\n1;2\n" * 5)}, format="multipart"
    )
    assert too_big.status_code == 413
    assert not Reconciliation.objects.exists()


def test_permissions(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(UserFactory())
    response = client.post(API, {"crmFile": upload("c.csv", b"A;B\n")}, format="multipart")
    assert response.status_code == 403
    assert APIClient().get(API).status_code == 401


def test_admin_upload_preview_compare_results_report_and_resync(
    admin_client_logged, django_capture_on_commit_callbacks
):
    create_orders(8)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/h"})
    PendingOrder.objects.all().delete()
    crm = crm_from(s360_export(), change={0: ("ORDER_STATE", "=HYPERLINK(1)")})
    url = "/admin/reconciliation/reconciliation/add/"
    preview = admin_client_logged.post(
        url,
        {
            "crm_file": upload("c.csv", crm),
            "key_columns": "ORDER_ID",
            "numeric_tolerance": 0,
            "_preview": "1",
        },
    )
    assert preview.status_code == 200
    assert (
        "ORDER_STATE" in preview.content.decode() and 'id="preview-1"' in preview.content.decode()
    )
    assert not Reconciliation.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client_logged.post(
            url,
            {
                "crm_file": upload("c.csv", crm),
                "key_columns": "ORDER_ID",
                "numeric_tolerance": 0,
                "_compare": "1",
            },
        )
    record = Reconciliation.objects.get()
    assert done.status_code == 302
    page = admin_client_logged.get(done["Location"])
    html = page.content.decode()
    assert 'id="card-mismatched">1<' in html and 'id="card-matched">7<' in html
    assert "=HYPERLINK(1)" in html  # shown as text in the page, escaped by the template
    report = b"".join(
        admin_client_logged.get(
            f"/admin/reconciliation/reconciliation/{record.pk}/report.csv"
        ).streaming_content
    ).decode()
    assert "'=HYPERLINK(1)" in report
    resync = admin_client_logged.post(
        f"/admin/reconciliation/reconciliation/{record.pk}/resync/",
        {"endpoint": endpoint.pk},
        follow=True,
    )
    assert "1 differing orders will be sent" in resync.content.decode()
    assert PendingOrder.objects.filter(endpoint=endpoint, reason=SyncReason.RESYNC).count() == 1
    filtered = admin_client_logged.get(done["Location"], {"kind": "ONLY_IN_CRM"})
    assert "No difference with these filters" in filtered.content.decode()
    assert Difference.objects.filter(reconciliation=record).count() == 1
    assert record.created_at <= timezone.now()


def test_resync_skips_keys_that_look_like_digits_but_are_not_order_ids(
    api, django_capture_on_commit_callbacks
):
    create_orders(2)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/h"})
    s360 = "ORDER_ID;ORDER_STATE\n\u00b2;CLOSED\n5;CLOSED\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        record_id = api.post(
            API,
            {
                "crmFile": upload("c.csv", b"ORDER_ID;ORDER_STATE\n"),
                "s360File": upload("s.csv", s360),
            },
            format="multipart",
        ).json()["id"]
    response = api.post(f"{API}{record_id}/resync/", {"endpoint": endpoint.pk}, format="json")
    assert response.status_code == 200 and response.json() == {"flagged": 0}


def test_the_results_page_names_columns_that_were_not_compared(
    admin_client_logged, django_capture_on_commit_callbacks
):
    s360 = b"ORDER_ID;ORDER_STATE;EMAIL\n1;CLOSED;a@b\n"
    crm = b"ORDER_ID;ORDER_STATE;PHONE\n1;CLOSED;+41\n"
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client_logged.post(
            "/admin/reconciliation/reconciliation/add/",
            {
                "crm_file": upload("c.csv", crm),
                "s360_file": upload("s.csv", s360),
                "key_columns": "ORDER_ID",
                "numeric_tolerance": 0,
                "_compare": "1",
            },
        )
    html = admin_client_logged.get(done["Location"]).content.decode()
    assert 'id="unmatched-columns"' in html and "EMAIL" in html and "PHONE" in html


def test_a_run_left_running_by_a_dead_worker_is_taken_over_later(db, tmp_path):
    import datetime as dt

    from reconciliation.services import reconciliation_run

    record = Reconciliation.objects.create(
        crm_file=upload("c.csv", b"ORDER_ID;A\n1;x\n"),
        s360_file=upload("s.csv", b"ORDER_ID;A\n1;x\n"),
        key_columns=["ORDER_ID"],
        status=Reconciliation.Status.RUNNING,
        started_at=timezone.now() - dt.timedelta(minutes=5),
    )
    assert reconciliation_run(reconciliation_id=record.pk).status == "RUNNING"  # still alive?
    Reconciliation.objects.filter(pk=record.pk).update(
        started_at=timezone.now() - dt.timedelta(hours=3)
    )
    assert reconciliation_run(reconciliation_id=record.pk).status == "DONE"


@pytest.mark.parametrize(
    "field, value",
    [
        ("columnMap", '{"\\ud800": "ORDER_ID"}'),
        ("columnMap", '{"A": "\\udc00"}'),
        ("dateFormats", '{"CREATION_DATE": "\\ud800"}'),
        ("columnMap", '{"A": "\\u0000"}'),
    ],
)
def test_a_lone_surrogate_or_nul_in_a_json_form_field_is_a_400(api, field, value):
    """Found by fuzzing: JSON's "\\ud800" was stored and echoed, and the answer was a 500;
    "\\u0000" cannot be stored in PostgreSQL's JSON."""
    crm = upload("crm.csv", b"ORDER_ID;X\n1;2\n")
    response = api.post(API, {"crmFile": crm, field: value}, format="multipart")
    assert response.status_code == 400
    assert field in response.json()
    assert not Reconciliation.objects.exists()
