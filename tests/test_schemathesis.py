"""Schemathesis against our own OpenAPI schema: every operation, generated and mutated input.

Two promises are checked on every answer: no 5xx (bad input is a JSON 400 with field
messages), and the answer matches what /api/schema/ documents (status, content type, body).

Database: one pytest test per operation, so each operation starts from the same seeded rows
(an endpoint with pending, parked and delivered orders, an initial import, a finished
reconciliation with differences). Hypothesis runs many examples inside that one test; each
example runs in a savepoint rolled back afterwards, so what one case writes or deletes never
reaches the next. That is why the function-scoped-fixture health check is suppressed.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import time

import pytest
import schemathesis
from django.core import signals
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from orders.export import export_csv_blocks
from orders.selectors import order_export_rows
from reconciliation import services as reconciliation_services
from sync import imports
from sync.models import Delivery, PendingOrder, RunStatus, RunTrigger, SyncRun
from tests.factories import UserFactory, create_orders
from webhooks.services import endpoint_create

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
# Random examples per operation in the fuzzing phase. An API call costs far more than a call
# of the reader or the serializer, and the coverage phase already sends each operation its
# boundary cases, so fewer than the profile's max_examples (tests/conftest.py).
API_EXAMPLES = {"ci": 10, "soak": 200}[PROFILE]
# Phases: schemathesis' defaults (explicit examples, coverage of each schema's boundaries,
# then random fuzzing). In CI the four order writes skip the coverage phase, to stay in the
# time budget: their ~2,200 cases were 60% of it, and tests/test_fuzz_orders.py fuzzes the
# same input in depth.
ORDER_WRITES = {
    "include-name": [
        "POST /api/v1/orders/",
        "PUT /api/v1/orders/{orderId}/",
        "PATCH /api/v1/orders/{orderId}/",
        "POST /api/v1/orders/bulk/",
    ],
    "phases": {"coverage": {"enabled": False}},
}
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    get_wsgi_application(),
    config=schemathesis.Config.from_dict({"operations": [ORDER_WRITES] if PROFILE == "ci" else []}),
)

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

# Cases run per operation, reported at the end of the module (the fuzzing budget's numbers).
CASES: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    started = time.monotonic()
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if CASES:
        with capture.global_and_fixture_disabled():
            print(
                f"\nschemathesis: {sum(CASES.values())} cases over {len(CASES)} operations "
                f"in {time.monotonic() - started:.1f} s; most: {CASES.most_common(4)}"
            )


# Ids of the rows seeded for the running test, by path parameter name; read while generating.
_seeded: dict[str, list[int]] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the time, point the path at a seeded row: random ids alone would only meet 404."""
    path = context.operation.path
    name = "orderId" if "{orderId}" in path else "id"
    if not path_parameters or name not in path_parameters:
        return st.just(path_parameters)
    resource = path.split("/")[3]  # /api/v1/<resource>/{...}
    known = _seeded.get(resource, [])
    return st.sampled_from([path_parameters, *({**path_parameters, name: k} for k in known)])


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django closes the database connection after each request; its test client stops that,
    the WSGI client of schemathesis does not, and on PostgreSQL the test's transaction would
    close with it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db):
    """A little of everything, so detail routes and actions meet real rows."""
    orders = create_orders(4)
    endpoint, _ = endpoint_create(data={"name": "CRM", "url": "http://127.0.0.1:9/hook"})
    PendingOrder.objects.filter(order_id=orders[0]["order_id"]).update(
        parked_at=timezone.now(), attempts=12, last_error="HTTP 500"
    )
    now = timezone.now()
    run = SyncRun.objects.create(
        endpoint=endpoint,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.SUCCEEDED,
        started_at=now,
        finished_at=now,
        orders_claimed=1,
        orders_delivered=1,
        payloads=1,
    )
    Delivery.objects.create(
        run=run,
        endpoint=endpoint,
        payload_id="msg_seed",
        order_ids=[orders[1]["order_id"]],
        versions=[1],
        attempted_at=now,
        duration_ms=12,
        status_code=200,
        ok=True,
        response_excerpt="{}",
    )
    initial = imports.initial_import_create(
        endpoint=endpoint,
        created_from=now - dt.timedelta(days=3650),
        created_to=now + dt.timedelta(days=1),
    )
    export = "".join(export_csv_blocks(order_export_rows()))
    crm = "\n".join(export.splitlines()[:-1]).replace("CLOSED", "CANCELLED", 1)
    record = reconciliation_services.reconciliation_create(
        crm_file=SimpleUploadedFile("crm.csv", crm.encode(), content_type="text/csv")
    )
    reconciliation_services.reconciliation_run(reconciliation_id=record.pk)
    _seeded.update(
        orders=[o["order_id"] for o in orders],
        endpoints=[endpoint.pk],
        runs=[run.pk],
        **{"initial-imports": [initial.pk]},
        reconciliations=[record.pk],
    )
    yield
    _seeded.clear()


@pytest.fixture
def token(seeded) -> str:
    return Token.objects.create(user=UserFactory(is_superuser=True)).key


@schema.parametrize()
@settings(
    max_examples=API_EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_answers_as_documented(case, token):
    CASES[case.operation.label] += 1
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
        transaction.set_rollback(True)
