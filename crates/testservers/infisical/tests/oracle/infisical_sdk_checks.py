"""Drives the local Infisical server with Infisical's own Python SDK (`infisicalsdk`).

Every call the eso-rs provider makes must round-trip through the vendor's client: logins,
list and get (imports, recursion, references, versions), create, update, delete, and the
error answers (401, 403, 404, 400, 429). Prints ALL CHECKS PASSED when every check holds.
"""

import os
import sys

from infisical_sdk import InfisicalSDKClient
from infisical_sdk.infisical_requests import APIError

URL = os.environ["INF_TEST_URL"]
CLIENT_ID = os.environ["INF_TEST_CLIENT_ID"]
CLIENT_SECRET = os.environ["INF_TEST_CLIENT_SECRET"]
IDENTITY_ID = os.environ["INF_TEST_IDENTITY_ID"]
DENIED_ID = os.environ["INF_TEST_DENIED_CLIENT_ID"]
DENIED_SECRET = os.environ["INF_TEST_DENIED_CLIENT_SECRET"]
STATIC_TOKEN = os.environ["INF_TEST_STATIC_TOKEN"]
PROJECT_ID = os.environ["INF_TEST_PROJECT_ID"]


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def expect_api_error(status, fn, what):
    try:
        fn()
    except APIError as e:
        check(e.status_code == status, f"{what}: status {e.status_code} == {status} ({e})")
        return e
    check(False, f"{what}: an APIError {status} was raised")


client = InfisicalSDKClient(host=URL, cache_ttl=None)
login = client.auth.universal_auth.login(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
check(login.tokenType == "Bearer" and login.expiresIn > 0, "universal auth login")

listed = client.secrets.list_secrets(
    project_slug="shop", environment_slug="dev", secret_path="/", expand_secret_references=True
)
keys = sorted(s.secretKey for s in listed.secrets)
check(keys == ["API_URL", "DB_PASSWORD", "HOST", "JSON_DOC"], f"list root folder: {keys}")
api_url = next(s for s in listed.secrets if s.secretKey == "API_URL")
check(api_url.secretValue == "https://db.internal:5432", "references expanded in list")
check(api_url.secretPath == "/" and api_url.environment == "dev", "list carries path and environment")
check(
    [i.environment for i in listed.imports] == ["prod"]
    and [s["secretKey"] for s in listed.imports[0].secrets] == ["SHARED_KEY"],
    "imports listed with include_imports",
)

raw = client.secrets.list_secrets(
    project_slug="shop", environment_slug="dev", secret_path="/", expand_secret_references=False,
    include_imports=False,
)
check(
    next(s for s in raw.secrets if s.secretKey == "API_URL").secretValue
    == "https://${HOST}:${prod.PORT}",
    "references kept when not expanded",
)
check(raw.imports == [], "no imports without include_imports")

rec = client.secrets.list_secrets(
    project_slug="shop", environment_slug="dev", secret_path="/", recursive=True,
    include_imports=False,
)
check(
    sorted((s.secretPath, s.secretKey) for s in rec.secrets)
    == [("/", "API_URL"), ("/", "DB_PASSWORD"), ("/", "HOST"), ("/", "JSON_DOC"), ("/app", "DB_PASSWORD"), ("/app/deep", "TOKEN")],
    "recursive list reaches sub-folders",
)

by_id = client.secrets.list_secrets(project_id=PROJECT_ID, environment_slug="dev", secret_path="/app")
check([s.secretKey for s in by_id.secrets] == ["DB_PASSWORD"], "list by project id")

one = client.secrets.get_secret_by_name(
    secret_name="DB_PASSWORD", project_slug="shop", environment_slug="dev", secret_path="/app"
)
check(one.secretValue == "app-db-pass-2" and one.version == 2, "get by name, newest version")
v1 = client.secrets.get_secret_by_name(
    secret_name="DB_PASSWORD", project_slug="shop", environment_slug="dev", secret_path="/app",
    version="1",
)
check(v1.secretValue == "app-db-pass-1", "get an older version")
imported = client.secrets.get_secret_by_name(
    secret_name="SHARED_KEY", project_slug="shop", environment_slug="dev", secret_path="/"
)
check(imported.secretValue == "from-prod" and imported.environment == "prod", "get through an import")

e = expect_api_error(
    404,
    lambda: client.secrets.get_secret_by_name(
        secret_name="MISSING", project_slug="shop", environment_slug="dev", secret_path="/"
    ),
    "missing secret",
)
check("Secret with name 'MISSING' not found" in str(e), "Infisical's not-found message")
expect_api_error(
    404,
    lambda: client.secrets.get_secret_by_name(
        secret_name="X", project_slug="shop", environment_slug="dev", secret_path="/nope"
    ),
    "missing folder",
)
expect_api_error(
    404,
    lambda: client.secrets.list_secrets(project_slug="nope", environment_slug="dev", secret_path="/"),
    "missing project",
)

created = client.secrets.create_secret_by_name(
    secret_name="NEW_ONE", project_id=PROJECT_ID, environment_slug="dev", secret_path="/app",
    secret_value="v1", skip_multiline_encoding=True,
)
check(created.secretKey == "NEW_ONE" and created.version == 1, "create")
expect_api_error(
    400,
    lambda: client.secrets.create_secret_by_name(
        secret_name="NEW_ONE", project_id=PROJECT_ID, environment_slug="dev", secret_path="/app",
        secret_value="again",
    ),
    "create an existing secret",
)
updated = client.secrets.update_secret_by_name(
    current_secret_name="NEW_ONE", project_id=PROJECT_ID, environment_slug="dev", secret_path="/app",
    secret_value="v2",
)
check(updated.secretValue == "v2" and updated.version == 2, "update")
deleted = client.secrets.delete_secret_by_name(
    secret_name="NEW_ONE", project_id=PROJECT_ID, environment_slug="dev", secret_path="/app"
)
check(deleted.secretKey == "NEW_ONE", "delete")
expect_api_error(
    404,
    lambda: client.secrets.delete_secret_by_name(
        secret_name="NEW_ONE", project_id=PROJECT_ID, environment_slug="dev", secret_path="/app"
    ),
    "delete a missing secret",
)
expect_api_error(
    404,
    lambda: client.secrets.create_secret_by_name(
        secret_name="X", project_id=PROJECT_ID, environment_slug="dev", secret_path="/no/folder",
        secret_value="x",
    ),
    "create in a missing folder",
)

e = expect_api_error(
    429,
    lambda: client.secrets.get_secret_by_name(
        secret_name="THROTTLED", project_slug="shop", environment_slug="dev", secret_path="/"
    ),
    "an injected 429",
)
check(e.response.get("statusCode") == 429, "429 body in Infisical's shape")
check(os.environ.get("INF_TEST_EXPECT_RETRY_AFTER") == "7", "the test injected Retry-After: 7")

bad = InfisicalSDKClient(host=URL, cache_ttl=None)
expect_api_error(
    401,
    lambda: bad.auth.universal_auth.login(client_id=CLIENT_ID, client_secret="wrong"),
    "bad client secret",
)
expect_api_error(
    401,
    lambda: bad.secrets.list_secrets(project_slug="shop", environment_slug="dev", secret_path="/"),
    "no token",
)

denied = InfisicalSDKClient(host=URL, cache_ttl=None)
denied.auth.universal_auth.login(client_id=DENIED_ID, client_secret=DENIED_SECRET)
expect_api_error(
    403,
    lambda: denied.secrets.list_secrets(project_slug="shop", environment_slug="dev", secret_path="/"),
    "identity denied the project",
)

ldap = InfisicalSDKClient(host=URL, cache_ttl=None)
ldap.auth.ldap_auth.login(identity_id=IDENTITY_ID, username="eso", password="ldap-pass")
check(
    ldap.secrets.get_secret_by_name(
        secret_name="DB_PASSWORD", project_slug="shop", environment_slug="dev", secret_path="/"
    ).secretValue == "root-db-pass",
    "ldap auth login and read",
)

static = InfisicalSDKClient(host=URL, token=STATIC_TOKEN, cache_ttl=None)
check(
    len(static.secrets.list_secrets(project_slug="shop", environment_slug="dev", secret_path="/").secrets) == 4,
    "token auth read",
)

print("ALL CHECKS PASSED")
