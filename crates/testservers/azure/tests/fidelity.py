"""Drives eso-testserver-azure with Microsoft's own Python clients (azure-identity,
azure-keyvault-secrets, -keys, -certificates): every operation the azurekv provider uses
must round-trip. Run by tests/python_clients.rs, which starts the server, seeds it and passes
its endpoints in the environment; any failed check raises and exits non-zero.

Two settings are needed because the server runs on 127.0.0.1 instead of Azure's hosts:
- `verify_challenge_resource=False` on the Key Vault clients: the clients check that the
  challenge's resource (`https://vault.azure.net`) is a parent domain of the vault's host,
  which 127.0.0.1 never is; the challenge itself is still sent and honoured.
- `disable_instance_discovery=True` on the credentials: MSAL would otherwise ask the public
  cloud's instance-discovery endpoint about the authority, which no local server can answer
  for it.
TLS is verified against the server's test CA (REQUESTS_CA_BUNDLE / SSL_CERT_FILE).
"""

import base64
import os
import sys
import time

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import JsonWebKey, KeyClient
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

env = os.environ
VAULT = env["VAULT_URL"]
AUTHORITY = env["AUTHORITY"]
TENANT = env["TENANT"]
KW = {"authority": AUTHORITY, "disable_instance_discovery": True}
VAULT_KW = {"verify_challenge_resource": False}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok", what, flush=True)


def b64url_int(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return raw


def jwk_of(pem):
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        p = key.private_numbers()
        pub = p.public_numbers
        return JsonWebKey(
            kty="RSA",
            n=b64url_int(pub.n),
            e=b64url_int(pub.e),
            d=b64url_int(p.d),
            p=b64url_int(p.p),
            q=b64url_int(p.q),
            dp=b64url_int(p.dmp1),
            dq=b64url_int(p.dmq1),
            qi=b64url_int(p.iqmp),
        ), pub.n
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    p = key.private_numbers()
    size = (key.curve.key_size + 7) // 8
    return JsonWebKey(
        kty="EC",
        crv="P-256",
        x=p.public_numbers.x.to_bytes(size, "big"),
        y=p.public_numbers.y.to_bytes(size, "big"),
        d=p.private_value.to_bytes(size, "big"),
    ), p.public_numbers.x


def secrets(cred, label):
    sc = SecretClient(VAULT, cred, **VAULT_KW)
    s = sc.get_secret("seeded")
    check(s.value == "seeded-value" and s.properties.tags == {"env": "prod"}, f"{label}: get secret with tags")
    return sc


def main():
    # ----- logins --------------------------------------------------------------------------
    sp = ClientSecretCredential(TENANT, env["SP_CLIENT_ID"], env["SP_SECRET"], **KW)
    sc = secrets(sp, "client secret")

    cert_cred = CertificateCredential(TENANT, env["CERT_CLIENT_ID"], certificate_path=env["CERT_PEM"], **KW)
    secrets(cert_cred, "client certificate")

    wi = WorkloadIdentityCredential(
        tenant_id=TENANT, client_id=env["WI_CLIENT_ID"], token_file_path=env["WI_TOKEN_FILE"], **KW
    )
    secrets(wi, "workload identity")

    mi = ManagedIdentityCredential(client_id=env["MI_CLIENT_ID"])
    secrets(mi, "managed identity (IMDS)")

    # A refused secret is an authentication error, not a token.
    bad = ClientSecretCredential(TENANT, env["SP_CLIENT_ID"], "wrong", **KW)
    try:
        SecretClient(VAULT, bad, **VAULT_KW).get_secret("seeded")
        check(False, "a wrong client secret is refused")
    except Exception as e:  # ClientAuthenticationError
        check("AADSTS7000215" in str(e), "a wrong client secret is refused with AADSTS7000215")

    # ----- secrets ---------------------------------------------------------------------------
    exp = int(time.time()) + 86400
    from datetime import datetime, timezone

    s1 = sc.set_secret(
        "pushed", "v1", tags={"managed-by": "external-secrets", "team": "a"}, content_type="text/plain",
        expires_on=datetime.fromtimestamp(exp, timezone.utc),
    )
    check(s1.value == "v1" and s1.properties.version, "set secret returns the bundle with a version")
    s2 = sc.set_secret("pushed", "v2", tags={"managed-by": "external-secrets"})
    got = sc.get_secret("pushed", s1.properties.version)
    check(got.value == "v1" and got.properties.content_type == "text/plain", "get secret by version")
    check(int(got.properties.expires_on.timestamp()) == exp, "expiry round-trips")
    check(sc.get_secret("pushed").value == "v2", "get latest secret")
    versions = list(sc.list_properties_of_secret_versions("pushed"))
    check(len(versions) == 2, "list versions")

    names = [p.name for p in sc.list_properties_of_secrets()]
    check(len(names) == int(env["SECRET_COUNT"]) + 1 and "page-29" in names, f"list secrets across pages ({len(names)})")
    disabled = [p for p in sc.list_properties_of_secrets() if p.name == "disabled"]
    check(disabled and disabled[0].enabled is False, "disabled secrets are listed as disabled")

    try:
        sc.get_secret("missing")
        check(False, "a missing secret is 404")
    except ResourceNotFoundError as e:
        check(e.error.code == "SecretNotFound", "a missing secret is ResourceNotFoundError SecretNotFound")

    poller = sc.begin_delete_secret("pushed")
    deleted = poller.result()
    check(deleted.recovery_id and deleted.name == "pushed", "delete secret (soft delete)")
    check(sc.get_deleted_secret("pushed").name == "pushed", "get deleted secret")
    try:
        sc.set_secret("pushed", "v3")
        check(False, "setting a soft-deleted secret conflicts")
    except HttpResponseError as e:
        check(e.status_code == 409, "setting a soft-deleted secret is 409")
        inner = (e.error.innererror or {}).get("code") if e.error else None
        check(inner == "ObjectIsDeletedButRecoverable", "409 inner code ObjectIsDeletedButRecoverable")
    recovered = sc.begin_recover_deleted_secret("pushed").result()
    check(recovered.name == "pushed" and sc.get_secret("pushed").value == "v2", "recover deleted secret")
    sc.begin_delete_secret("pushed").result()
    sc.purge_deleted_secret("pushed")
    check(sc.set_secret("pushed", "fresh").value == "fresh", "purge frees the name")

    # ----- keys ------------------------------------------------------------------------------
    kc = KeyClient(VAULT, sp, **VAULT_KW)
    rsa_jwk, n = jwk_of(open(env["RSA_KEY_PEM"], "rb").read())
    k = kc.import_key("rsa-key", rsa_jwk, tags={"managed-by": "external-secrets"})
    check(k.key_type == "RSA" and int.from_bytes(k.key.n, "big") == n, "import RSA key")
    check(k.key.d is None, "the service returns no private key material")
    ec_jwk, x = jwk_of(open(env["EC_KEY_PEM"], "rb").read())
    k = kc.import_key("ec-key", ec_jwk)
    check(k.key_type == "EC" and k.key.crv == "P-256" and int.from_bytes(k.key.x, "big") == x, "import EC key")
    got = kc.get_key("rsa-key")
    check(got.properties.tags == {"managed-by": "external-secrets"} and got.id.endswith(got.properties.version), "get key")
    check(kc.get_key("ec-key", k.properties.version).key.crv == "P-256", "get key by version")
    kc.begin_delete_key("ec-key").result()
    try:
        kc.get_key("ec-key")
        check(False, "a deleted key is gone")
    except ResourceNotFoundError as e:
        check(e.error.code == "KeyNotFound", "a deleted key is KeyNotFound")

    # ----- certificates ----------------------------------------------------------------------
    cc = CertificateClient(VAULT, sp, **VAULT_KW)
    pfx = open(env["P12"], "rb").read()
    c = cc.import_certificate("pushed-cert", pfx, tags={"managed-by": "external-secrets"})
    want = open(env["CERT_DER"], "rb").read()
    check(bytes(c.cer) == want, "import PKCS#12 certificate: cer is the certificate's DER")
    got = cc.get_certificate("pushed-cert")
    check(bytes(got.cer) == want and got.properties.tags == {"managed-by": "external-secrets"}, "get certificate")
    check(got.secret_id and got.key_id, "a certificate names its secret and key")
    check(sc.get_secret("pushed-cert").properties.content_type == "application/x-pkcs12", "the certificate's secret holds the PKCS#12 bundle")
    v = cc.get_certificate_version("pushed-cert", got.properties.version)
    check(bytes(v.cer) == want, "get certificate by version")
    cc.begin_delete_certificate("pushed-cert").result()
    try:
        cc.get_certificate("pushed-cert")
        check(False, "a deleted certificate is gone")
    except ResourceNotFoundError as e:
        check(e.error.code == "CertificateNotFound", "a deleted certificate is CertificateNotFound")

    # ----- throttling ------------------------------------------------------------------------
    # The server fails the next request with 429 Retry-After: 1; the SDK's retry policy
    # honours it and the read succeeds.
    t0 = time.monotonic()
    check(sc.get_secret("throttled").value == "after-429", "a 429 with Retry-After is retried by the SDK")
    check(time.monotonic() - t0 >= 0.9, "the SDK waited for Retry-After")
    print("ALL OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
