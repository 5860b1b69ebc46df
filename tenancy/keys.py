"""API key and webhook secret material. Keys are random, shown once, stored as SHA-256 only."""

import base64
import hashlib
import secrets

KEY_PREFIX = "tpk_"


def generate_api_key() -> tuple[str, str, str]:
    """Returns (key, visible prefix, sha256 hex). ``tpk_<8 hex>_<43 urlsafe chars>``: 256 bits of secret."""
    public = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    return key, f"{KEY_PREFIX}{public}", hash_api_key(key)


def hash_api_key(key: str) -> str:
    # A fast hash is right here: the key has 256 bits of entropy, so nothing can be brute-forced,
    # and lookups happen on every request.
    return hashlib.sha256(key.encode()).hexdigest()


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_fingerprint(secret: str) -> str:
    """A short, stable name for a secret that reveals nothing of it: the first 12 hex digits of its
    SHA-256. Pages and the audit log show (and removals name) a secret by it, never by the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
