"""Drives eso-testserver-gcp with Google's own Python clients.

google-cloud-secret-manager (REST transport) for every Secret Manager call the gcpsm provider
makes, and google-auth for every credential flow it uses (service-account key, STS with a
Kubernetes token and impersonation, STS with AWS credentials, the metadata server). Each check
asserts what Google's client saw; the Rust test (tests/oracle.rs) then checks the server's
state. Run by the Rust test with the environment it sets up; exits non-zero on the first
failed check.
"""

import json
import os
import sys

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.api_core import exceptions
from google.auth import aws, compute_engine, identity_pool
from google.auth.compute_engine import _metadata
from google.cloud import secretmanager
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account

URL = os.environ["GCP_TEST_URL"]
PROJECT = os.environ["GCP_TEST_PROJECT"]
PROJECT_NUMBER = os.environ["GCP_TEST_PROJECT_NUMBER"]
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def client_for(token):
    return secretmanager.SecretManagerServiceClient(
        credentials=oauth_credentials.Credentials(token),
        transport="rest",
        client_options={"api_endpoint": URL},
    )


def expect(exc_type, status, fn, what):
    """Runs fn, which must fail with exc_type (chosen by the HTTP status) and the gRPC status
    name `status` in Google's error body."""
    try:
        fn()
    except exc_type as e:
        body = e.response.json() if e.response is not None else {}
        got = body.get("error", {}).get("status")
        check(got == status, f"{what}: status {got} (want {status}), message: {e.message}")
        return e
    except Exception as e:  # noqa: BLE001 - report the unexpected type
        check(False, f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    check(False, f"{what}: expected {exc_type.__name__}, got no error")


request = google.auth.transport.requests.Request()

# --- Service-account key: JWT bearer grant at the key's token_uri. ---
info = json.loads(os.environ["GCP_TEST_KEY_JSON"])
sa = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
sa.refresh(request)
check(sa.token and sa.expiry is not None, "service-account key exchanged at token_uri")
sm = client_for(sa.token)
parent = f"projects/{PROJECT}"

# --- Create, add versions, access. ---
created = sm.create_secret(
    request={
        "parent": parent,
        "secret_id": "py-db",
        "secret": {
            "replication": {"automatic": {}},
            "labels": {"managed-by": "external-secrets", "env": "prod"},
        },
    }
)
check(created.name == f"projects/{PROJECT_NUMBER}/secrets/py-db", f"created {created.name}")
check(created.replication.automatic is not None, "automatic replication echoed")
for data in (b"one", b'{"user":"admin","pass":"x"}'):
    v = sm.add_secret_version(
        request={"parent": created.name, "payload": {"data": data, "data_crc32c": crc32c(data)}}
    )
    check(v.state == secretmanager.SecretVersion.State.ENABLED, f"added {v.name}")
latest = sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/latest")
check(latest.payload.data == b'{"user":"admin","pass":"x"}', "latest is the newest version")
check(latest.payload.data_crc32c == crc32c(latest.payload.data), "dataCrc32c matches")
check(latest.name.endswith("/versions/2"), "access names the resolved version")
first = sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/1")
check(first.payload.data == b"one", "version 1 by number")

# --- Aliases and labels/annotations through update with a field mask. ---
updated = sm.update_secret(
    request={
        "secret": {
            "name": f"{parent}/secrets/py-db",
            "labels": {"managed-by": "external-secrets", "env": "dev"},
            "annotations": {"owner": "team-a"},
            "version_aliases": {"stable": 1},
        },
        "update_mask": {"paths": ["labels", "annotations", "version_aliases"]},
    }
)
check(updated.labels["env"] == "dev" and updated.annotations["owner"] == "team-a", "update_secret")
aliased = sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/stable")
check(aliased.payload.data == b"one", "access by alias")
got = sm.get_secret(name=f"{parent}/secrets/py-db")
check(got.version_aliases["stable"] == 1 and got.etag, "get_secret with aliases and etag")

# --- List with filters and paging. ---
for sid, env in (("py-a", "prod"), ("py-b", "prod"), ("py-c", "test")):
    sm.create_secret(
        request={
            "parent": parent,
            "secret_id": sid,
            "secret": {"replication": {"user_managed": {"replicas": [{"location": "us-east1"}]}},
                       "labels": {"env": env}},
        }
    )
# What the provider's push creates: labels, annotations, topics, user-managed replicas with CMEK.
pushed = sm.create_secret(
    request={
        "parent": parent,
        "secret_id": "py-pushed",
        "secret": {
            "labels": {"managed-by": "external-secrets", "env": "prod"},
            "annotations": {"owner": "ops"},
            "topics": [{"name": f"projects/{PROJECT}/topics/rotation"}],
            "replication": {"user_managed": {"replicas": [
                {"location": "us-east1",
                 "customer_managed_encryption": {"kms_key_name": "projects/p1/locations/us-east1/keyRings/r/cryptoKeys/k"}},
            ]}},
        },
    }
)
check(pushed.topics[0].name.endswith("/topics/rotation")
      and pushed.replication.user_managed.replicas[0].customer_managed_encryption.kms_key_name.endswith("/k"),
      "create with topics and CMEK replicas")
stale = pushed.etag
sm.update_secret(request={"secret": {"name": pushed.name, "etag": stale, "labels": {"managed-by": "external-secrets"}},
                          "update_mask": {"paths": ["labels", "annotations"]}})
expect(exceptions.Conflict, "ABORTED", lambda: sm.update_secret(
    request={"secret": {"name": pushed.name, "etag": stale, "labels": {}}, "update_mask": {"paths": ["labels"]}}),
    "update with a stale etag is ABORTED")
combined = [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(
    request={"parent": parent, "filter": "labels.managed-by=external-secrets name:py-"})]
check(combined == ["py-db", "py-pushed"], f"filter labels.managed-by=external-secrets name:py- -> {combined}")
sm.delete_secret(request={"name": pushed.name})
prod = [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": parent, "filter": "labels.env=prod"})]
check(prod == ["py-a", "py-b"], f"filter labels.env=prod -> {prod}")
named = [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": parent, "filter": "name:py-"})]
check(named == ["py-a", "py-b", "py-c", "py-db"], f"filter name:py- -> {named}")
pager = sm.list_secrets(request={"parent": parent, "page_size": 1})
pages = list(pager.pages)
check(len(pages) == 4 and sum(len(p.secrets) for p in pages) == 4, "paging with page_size=1")
expect(exceptions.BadRequest, "INVALID_ARGUMENT", lambda: list(sm.list_secrets(request={"parent": parent, "filter": "colour=red"})),
       "unknown filter field is INVALID_ARGUMENT")

# --- Version states and the errors upstream's selection policy reads. ---
sm.disable_secret_version(request={"name": f"{parent}/secrets/py-db/versions/2"})
enabled = [v.name.rsplit("/", 1)[1] for v in
           sm.list_secret_versions(request={"parent": f"{parent}/secrets/py-db", "filter": "state:ENABLED"})]
check(enabled == ["1"], f"list_secret_versions state:ENABLED -> {enabled}")
e = expect(exceptions.BadRequest, "FAILED_PRECONDITION",
           lambda: sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/latest"),
           "latest disabled is FAILED_PRECONDITION")
check("DISABLED state" in e.message, "message names the DISABLED state")
sm.enable_secret_version(request={"name": f"{parent}/secrets/py-db/versions/2"})
sm.destroy_secret_version(request={"name": f"{parent}/secrets/py-db/versions/2"})
e = expect(exceptions.BadRequest, "FAILED_PRECONDITION",
           lambda: sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/2"),
           "destroyed version is FAILED_PRECONDITION")
check("DESTROYED state" in e.message, "message names the DESTROYED state")
expect(exceptions.NotFound, "NOT_FOUND", lambda: sm.access_secret_version(name=f"{parent}/secrets/absent/versions/latest"),
       "missing secret is NOT_FOUND")
expect(exceptions.NotFound, "NOT_FOUND", lambda: sm.access_secret_version(name=f"{parent}/secrets/py-db/versions/9"),
       "missing version is NOT_FOUND")
expect(exceptions.Conflict, "ALREADY_EXISTS",
       lambda: sm.create_secret(request={"parent": parent, "secret_id": "py-db",
                                         "secret": {"replication": {"automatic": {}}}}),
       "duplicate create is ALREADY_EXISTS")

# --- Delete with the etag. ---
current = sm.get_secret(name=f"{parent}/secrets/py-c")
expect(exceptions.Conflict, "ABORTED", lambda: sm.delete_secret(request={"name": current.name, "etag": '"0"'}),
       "delete with a stale etag is ABORTED")
sm.delete_secret(request={"name": current.name, "etag": current.etag})
expect(exceptions.NotFound, "NOT_FOUND", lambda: sm.get_secret(name=f"{parent}/secrets/py-c"), "deleted")

# --- Regional secrets (locations/{l}). ---
rparent = f"{parent}/locations/europe-west4"
regional = sm.create_secret(request={"parent": rparent, "secret_id": "py-r", "secret": {"labels": {"env": "prod"}}})
check(regional.name == f"projects/{PROJECT_NUMBER}/locations/europe-west4/secrets/py-r", regional.name)
sm.add_secret_version(request={"parent": regional.name, "payload": {"data": b"regional"}})
check(sm.access_secret_version(name=f"{rparent}/secrets/py-r/versions/latest").payload.data == b"regional",
      "regional access")
rlisted = [s.name for s in sm.list_secrets(request={"parent": rparent, "filter": "labels.env=prod"})]
check(rlisted == [regional.name], "regional list holds only regional secrets")

# --- Authentication and authorization errors. ---
# The client's authorized session refreshes its credentials on a 401 (and only then); static
# token credentials cannot refresh, so a RefreshError shows the server answered 401.
try:
    client_for("not-a-token").get_secret(name=f"{parent}/secrets/py-db")
    check(False, "unknown token: expected a 401")
except google.auth.exceptions.RefreshError:
    print("ok: unknown token made the client refresh (401)")
raw = requests.get(f"{URL}/v1/{parent}/secrets/py-db", headers={"Authorization": "Bearer not-a-token"})
check(raw.status_code == 401 and raw.json()["error"]["status"] == "UNAUTHENTICATED"
      and raw.headers.get("WWW-Authenticate", "").startswith("Bearer"), "401 UNAUTHENTICATED shape")
denied = client_for(os.environ["GCP_TEST_DENIED_TOKEN"])
e = expect(exceptions.Forbidden, "PERMISSION_DENIED", lambda: denied.access_secret_version(
    name=f"{parent}/secrets/py-db/versions/1"), "denied principal is PERMISSION_DENIED")
check("secretmanager.versions.access" in e.message, "message names the permission")
e = expect(exceptions.TooManyRequests, "RESOURCE_EXHAUSTED", lambda: sm.get_secret(name=f"{parent}/secrets/py-throttled"),
           "injected 429 is RESOURCE_EXHAUSTED")

# --- Workload identity federation: STS with a Kubernetes token, then impersonation. ---
token_file = os.environ["GCP_TEST_K8S_TOKEN_FILE"]
audience = os.environ["GCP_TEST_WIF_AUDIENCE"]
wif = identity_pool.Credentials(
    audience=audience,
    subject_token_type="urn:ietf:params:oauth:token-type:jwt",
    token_url=f"{URL}/v1/token",
    credential_source={"file": token_file},
    scopes=[SCOPE],
)
wif.refresh(request)
check(wif.token, "STS exchange of a Kubernetes token")
client_for(wif.token).get_secret(name=f"{parent}/secrets/py-db")
impersonated = identity_pool.Credentials(
    audience=audience,
    subject_token_type="urn:ietf:params:oauth:token-type:jwt",
    token_url=f"{URL}/v1/token",
    credential_source={"file": token_file},
    service_account_impersonation_url=(
        f"{URL}/v1/projects/-/serviceAccounts/eso-wif@{PROJECT}.iam.gserviceaccount.com:generateAccessToken"
    ),
    scopes=[SCOPE],
)
impersonated.refresh(request)
check(impersonated.token and impersonated.expiry, "STS exchange, then generateAccessToken")
client_for(impersonated.token).get_secret(name=f"{parent}/secrets/py-db")

# --- Workload identity federation with AWS credentials (SigV4-signed GetCallerIdentity). ---
aws_creds = aws.Credentials(
    audience=audience,
    subject_token_type="urn:ietf:params:aws:token-type:aws4_request",
    token_url=f"{URL}/v1/token",
    credential_source={
        "environment_id": "aws1",
        "regional_cred_verification_url":
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    },
    scopes=[SCOPE],
)
aws_creds.refresh(request)
check(aws_creds.token, "STS exchange of a SigV4-signed AWS request")
client_for(aws_creds.token).get_secret(name=f"{parent}/secrets/py-db")

# --- The metadata server (default credentials of a pod). ---
check(_metadata.get_project_id(request) == PROJECT, "metadata project id")
check(_metadata.get(request, "instance/attributes/cluster-name") == "test-cluster", "metadata cluster-name")
check(_metadata.get(request, "instance/attributes/cluster-location") == "europe-west1",
      "metadata cluster-location")
gce = compute_engine.Credentials(scopes=[SCOPE])
gce.refresh(request)
check(gce.token and gce.service_account_email == os.environ["GCP_TEST_METADATA_EMAIL"],
      f"metadata server token for {gce.service_account_email}")
client_for(gce.token).get_secret(name=f"{parent}/secrets/py-db")

print("ALL CHECKS PASSED")
