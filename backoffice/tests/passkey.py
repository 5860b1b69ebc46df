"""A software passkey for tests: what a browser and an authenticator answer to WebAuthn's options,
built with fido2's own data classes and a P-256 key, so that tests run the whole ceremony (the
server checks the challenge, the origin, the RP id hash, and the signature)."""

import hashlib
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    RegistrationResponse,
)

FLAGS = AuthenticatorData.FLAG


def _challenge(options: dict[str, Any]) -> bytes:
    challenge = options["publicKey"]["challenge"]
    return websafe_decode(challenge) if isinstance(challenge, str) else bytes(challenge)


class SoftwarePasskey:
    def __init__(self, origin: str = "https://testserver") -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle: bytes | None = None

    def _auth_data(self, rp_id: str, flags: Any, credential_data: bytes = b"") -> AuthenticatorData:
        self.counter += 1
        return AuthenticatorData.create(hashlib.sha256(rp_id.encode()).digest(), flags, self.counter, credential_data)

    def register(self, creation_options: dict[str, Any]) -> dict[str, Any]:
        """``navigator.credentials.create()``: a "none" attestation of a new key pair."""
        public_key = creation_options["publicKey"]
        rp_id = public_key["rp"]["id"]
        user_id = public_key["user"]["id"]
        self.user_handle = websafe_decode(user_id) if isinstance(user_id, str) else bytes(user_id)
        credential = AttestedCredentialData.create(
            Aaguid.NONE, self.credential_id, ES256.from_cryptography_key(self.key.public_key())
        )
        auth_data = self._auth_data(rp_id, FLAGS.UP | FLAGS.UV | FLAGS.AT, credential)
        client_data = CollectedClientData.create(
            type=CollectedClientData.TYPE.CREATE, challenge=_challenge(creation_options), origin=self.origin
        )
        response = RegistrationResponse(
            raw_id=self.credential_id,
            response=AuthenticatorAttestationResponse(
                client_data=client_data, attestation_object=AttestationObject.create("none", auth_data, {})
            ),
        )
        return dict(response)

    def authenticate(self, request_options: dict[str, Any], rp_id: str = "testserver") -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion signed with the key."""
        public_key = request_options["publicKey"]
        rp_id = public_key.get("rpId") or rp_id
        auth_data = self._auth_data(rp_id, FLAGS.UP | FLAGS.UV)
        client_data = CollectedClientData.create(
            type=CollectedClientData.TYPE.GET, challenge=_challenge(request_options), origin=self.origin
        )
        signature = self.key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        response = AuthenticationResponse(
            raw_id=self.credential_id,
            response=AuthenticatorAssertionResponse(
                client_data=client_data, authenticator_data=auth_data, signature=signature, user_handle=self.user_handle
            ),
        )
        return dict(response)
