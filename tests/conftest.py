import os

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    """An API user who may do everything (roles are tested with their own users)."""
    return UserFactory(is_superuser=True)


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated with a DRF token, as integrators use it."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def admin_client_logged(db, client):
    """A Django test client logged in as a superuser."""
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true, PostgreSQL, Redis and Chromium set up by .ci/run) nothing may be
    skipped: a skip there means a lost DATABASE_URL or a missing service, and would let the
    chaos, end-to-end or browser tests go quietly unrun."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"Skipped in CI, where everything must run: {report.longrepr}"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (throttle counters, cached admin lookups)."""
    from django.core.cache import cache

    cache.clear()


# --- Hypothesis profiles (the fuzzing tests: test_fuzz_*.py, test_schemathesis.py) -----------
# "ci" (the default) keeps all fuzzing under ~90 s on a 2-core machine and is derandomized, so
# a red CI run is reproducible; "soak" runs many more random examples:
#   HYPOTHESIS_PROFILE=soak bin/test tests/test_fuzz_reader.py
from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=25, derandomize=True, **_FUZZ)
settings.register_profile("soak", max_examples=500, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
