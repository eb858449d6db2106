"""Secrets at rest: Fernet (AES-128-CBC + HMAC) with keys from FIELD_ENCRYPTION_KEY.

FIELD_ENCRYPTION_KEY holds one or more comma-separated keys: the first encrypts, all decrypt,
so a key is rotated by putting the new one first and running `manage.py rotate_field_key`.
Without it (local development, tests) a key is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

UNREADABLE = (
    "Cannot decrypt a stored secret: FIELD_ENCRYPTION_KEY does not hold the key it was "
    "encrypted with."
)


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    if not keys:
        digest = hashlib.sha256(f"field-encryption:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    # Tests (and override_settings) change the keys at run time: read them again.
    if setting in ("FIELD_ENCRYPTION_KEY", "SECRET_KEY"):
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    """Return the ciphertext (text) of a secret; empty stays empty."""
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(ciphertext: str) -> str:
    """Return the secret of a ciphertext made by `encrypt` with any configured key."""
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise ValueError(UNREADABLE) from None


def reencrypt(ciphertext: str) -> str:
    """Return the ciphertext re-encrypted with the first (newest) key."""
    if not ciphertext:
        return ""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise ValueError(UNREADABLE) from None
