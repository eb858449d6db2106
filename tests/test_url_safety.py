"""Which URLs may be webhook targets (webhooks.url_safety: no SSRF into our own networks) and
secrets at rest (webhooks.crypto: Fernet with rotatable keys)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from webhooks import crypto
from webhooks.url_safety import UnsafeURL, check_url


@pytest.fixture
def strict(settings):
    """Private networks not allowed, as in production."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.9.8.7:8080/",
        "http://[::1]/",
        "https://[::1]:8443/hook",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://100.127.255.254/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fc00::1]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",  # site-local: deprecated, and Python calls it global
        "http://[::127.0.0.1]/",  # IPv4-compatible forms, delivered by 6in4 / SIIT boxes
        "http://[::10.0.0.1]/",
        "http://[::169.254.169.254]/",
        "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated (SIIT)
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://localhost/",
        "http://LOCALHOST:8000/hook",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",  # 127.0.0.1 in inet_aton's short hex form
    ],
)
def test_private_and_reserved_addresses_are_refused(strict, url):
    """Loopback, private, link-local, CGNAT, unspecified and mapped addresses are refused."""
    with pytest.raises(UnsafeURL):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
        "javascript:alert(1)",
        "//93.184.216.34/",
        "93.184.216.34/hook",
    ],
)
def test_non_http_schemes_are_refused(strict, url):
    """Only http:// and https:// are allowed."""
    with pytest.raises(UnsafeURL, match="http"):
        check_url(url)


def test_non_http_scheme_is_refused_even_with_private_networks_allowed(settings):
    """The scheme rule holds in development too."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(UnsafeURL):
        check_url("ftp://127.0.0.1/")


def test_url_without_host_is_refused(settings):
    """A URL with no host is refused."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(UnsafeURL, match="host"):
        check_url("http:///hook")


@pytest.mark.parametrize(
    "url", ["https://user:pass@crm.example.com/", "https://token@crm.example.com/"]
)
def test_credentials_in_url_are_refused(settings, url):
    """Credentials belong in the endpoint's authentication, not in the URL."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(UnsafeURL, match="credentials"):
        check_url(url)


def test_unresolvable_host_is_refused(strict):
    """A host that does not resolve cannot be checked, so it is refused."""
    with pytest.raises(UnsafeURL, match="resolve"):
        check_url("http://nonexistent.invalid/hook")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://93.184.216.34:8443/crm/hook?x=1",
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]/hook",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
        "http://172.32.0.1/",  # just outside 172.16/12
        "http://100.128.0.1/",  # just outside 100.64/10
    ],
)
def test_public_addresses_are_accepted(strict, url):
    """Public IP literals pass (an IP literal needs no DNS)."""
    check_url(url)


def test_loopback_is_accepted_when_private_networks_are_allowed(settings):
    """WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the network rule (local CRM in development)."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    check_url("http://127.0.0.1:8000/democrm/webhook/")
    check_url("http://localhost:8000/democrm/webhook/")
    check_url("http://[::1]/")


def test_refusal_message_names_the_address(strict):
    """The refusal says which address the host resolved to."""
    with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
        check_url("http://localhost/")


def test_send_time_check_refuses_a_private_url(strict, db):
    """A stored endpoint whose URL became private is refused at send time, without a request."""
    from sync import sending
    from webhooks.models import Endpoint

    endpoint = Endpoint(name="CRM", url="http://127.0.0.1:1/hook")
    endpoint.signing_secret = "whsec_" + "A" * 44
    with sending.new_client() as client:
        result = sending.post_payload(
            client=client,
            endpoint=endpoint,
            payload_id="msg_x",
            body="{}",
            at=timezone.now(),
        )
    assert result.ok is False
    assert result.status_code is None
    assert result.error.startswith("Refused:")


# --- crypto ---------------------------------------------------------------------------------


@pytest.fixture
def fernet_cache():
    """Clear the cached Fernet before and after, as the key setting changes in the test."""
    crypto._fernet.cache_clear()
    yield
    crypto._fernet.cache_clear()


def test_round_trip(fernet_cache):
    """decrypt(encrypt(x)) is x, and the ciphertext does not hold x in clear."""
    secret = "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw=="
    token = crypto.encrypt(secret)
    assert token != secret
    assert secret not in token
    assert crypto.decrypt(token) == secret


def test_round_trip_of_non_ascii(fernet_cache):
    """Any text round-trips, not only ASCII."""
    assert crypto.decrypt(crypto.encrypt("mot de passe é ü 密码")) == "mot de passe é ü 密码"


def test_two_encryptions_differ(fernet_cache):
    """Encrypting the same value twice gives different ciphertexts (random IV)."""
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_empty_stays_empty(fernet_cache):
    """An empty secret is stored empty and reads back empty."""
    assert crypto.encrypt("") == ""
    assert crypto.decrypt("") == ""
    assert crypto.reencrypt("") == ""


def test_key_rotation(settings, fernet_cache):
    """Old ciphertexts decrypt after a new key is put first; reencrypt moves them to it."""
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old_key
    crypto._fernet.cache_clear()
    token = crypto.encrypt("crm-password")

    settings.FIELD_ENCRYPTION_KEY = f"{new_key}, {old_key}"
    crypto._fernet.cache_clear()
    assert crypto.decrypt(token) == "crm-password"
    rotated = crypto.reencrypt(token)
    assert rotated != token
    assert crypto.decrypt(rotated) == "crm-password"
    # New values are encrypted under the first key.
    fresh = crypto.encrypt("another")

    settings.FIELD_ENCRYPTION_KEY = new_key
    crypto._fernet.cache_clear()
    assert crypto.decrypt(rotated) == "crm-password"
    assert crypto.decrypt(fresh) == "another"
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEY"):
        crypto.decrypt(token)


def test_wrong_key_is_a_clear_error(settings, fernet_cache):
    """A ciphertext from an unknown key raises ValueError naming the setting."""
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    crypto._fernet.cache_clear()
    token = crypto.encrypt("x")
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    crypto._fernet.cache_clear()
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEY"):
        crypto.decrypt(token)


def test_without_a_key_one_is_derived_from_secret_key(settings, fernet_cache):
    """Without FIELD_ENCRYPTION_KEY the key derives from SECRET_KEY (a new one can't decrypt)."""
    settings.FIELD_ENCRYPTION_KEY = ""
    crypto._fernet.cache_clear()
    token = crypto.encrypt("x")
    assert crypto.decrypt(token) == "x"
    settings.SECRET_KEY = "another-secret-key"
    crypto._fernet.cache_clear()
    with pytest.raises(ValueError):
        crypto.decrypt(token)


@pytest.mark.parametrize(
    "url",
    ["http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::1]/", "http://[64:ff9b::a00:1]/"],
)
def test_ipv6_forms_that_embed_a_private_ipv4_are_refused(strict, url):
    """NAT64 and 6to4 addresses are judged by the IPv4 address they carry."""
    with pytest.raises(UnsafeURL):
        check_url(url)
