"""Fernet encryption of secrets at rest, and rotation through TRIPOD_ENCRYPTION_KEYS (newest first)."""

from typing import Any

import pytest
from cryptography.fernet import Fernet

from billing_platform.encryption import InvalidToken, decrypt, encrypt, rotate

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_secret_is_encrypted_randomly_and_read_back(settings: Any) -> None:
    settings.TRIPOD_ENCRYPTION_KEYS = [OLD]
    first, second = encrypt("whsec_abc"), encrypt("whsec_abc")
    # a Fernet token (url-safe base64, version byte 0x80 -> "gAAAAA"), different each time
    assert first.startswith("gAAAAA")
    assert second.startswith("gAAAAA")
    assert first != second
    assert "whsec_abc" not in first
    assert decrypt(first) == decrypt(second) == "whsec_abc"


def test_rotation_new_key_first_then_the_old_one_dropped(settings: Any) -> None:
    # given: a value stored under the old key
    settings.TRIPOD_ENCRYPTION_KEYS = [OLD]
    token = encrypt("whsec_abc")
    # when: a new key is put first, the old one still reads it, and rotating re-encrypts it
    settings.TRIPOD_ENCRYPTION_KEYS = [NEW, OLD]
    assert decrypt(token) == "whsec_abc"
    rotated = rotate(token)
    # then: with the old key dropped, only the rotated token reads
    settings.TRIPOD_ENCRYPTION_KEYS = [NEW]
    assert decrypt(rotated) == "whsec_abc"
    with pytest.raises(InvalidToken):
        decrypt(token)


def test_a_tampered_token_is_refused(settings: Any) -> None:
    settings.TRIPOD_ENCRYPTION_KEYS = [OLD]
    token = encrypt("whsec_abc")
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(InvalidToken):
        decrypt(tampered)
