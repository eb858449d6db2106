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


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (throttle counters, cached admin lookups)."""
    from django.core.cache import cache

    cache.clear()
