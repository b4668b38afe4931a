"""Drives the local Doppler server with Doppler's own Python SDK (`doppler-sdk`).

Every call the eso-rs provider makes must round-trip through the vendor's client: downloads
(JSON, name transformers, other formats, the secrets filter), secret updates and deletes,
projects, and the error answers (401, 403, 404, 429). Prints ALL CHECKS PASSED when every
check holds.
"""

import os
import sys

import dopplersdk.services.secrets as sdk_secrets
from dopplersdk import DopplerSDK
from dopplersdk.models import SecretsUpdateRequest
from dopplersdk.models.SecretsUpdateRequest import SecretsUpdateRequestChangeRequests
from http_exceptions import HTTPException

URL = os.environ["DOPPLER_TEST_URL"]
PERSONAL = os.environ["DOPPLER_TEST_PERSONAL_TOKEN"]
SERVICE = os.environ["DOPPLER_TEST_SERVICE_TOKEN"]


# The SDK's generated download model keeps only the example keys of Doppler's API reference
# (STRIPE, ALGOLIA, ...); keep the whole JSON body instead, still requested, authenticated and
# error-checked by the SDK.
sdk_secrets.DownloadResponseModel = lambda **body: body


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def sdk(token):
    s = DopplerSDK(access_token=token)
    s.set_base_url(URL)
    return s


def expect_status(status, fn, what):
    try:
        fn()
    except HTTPException as e:
        check(e.status_code == status, f"{what}: status {e.status_code} == {status} ({e})")
        return e
    check(False, f"{what}: an HTTP {status} was raised")


pt = sdk(PERSONAL)
projects = pt.projects.list()
check(sorted(p["slug"] for p in projects.projects) == ["backend", "frontend"], "list projects")

plain = pt.secrets.download(project="backend", config="prd")
body = plain
check(body.get("API_KEY") == "k1" and body.get("DB_URL") == "pg://db.internal/app", "download JSON with references computed")
check(body.get("DOPPLER_PROJECT") == "backend" and body.get("DOPPLER_CONFIG") == "prd" and body.get("DOPPLER_ENVIRONMENT") == "prd", "download carries Doppler's meta secrets")

camel = pt.secrets.download(project="backend", config="prd", name_transformer="camel")
body = camel
check(body.get("apiKey") == "k1" and "API_KEY" not in body, "download with a name transformer")

filtered = pt.secrets.download(project="backend", config="prd", secrets="API_KEY")
body = filtered
check(set(body) == {"API_KEY"}, f"download filtered to one secret {body}")

env = pt.secrets.download(project="backend", config="prd", format="env")
text = env.text if hasattr(env, "text") else str(env)
check('API_KEY="k1"' in text, "download as env")

listed = pt.secrets.list(project="backend", config="prd")
check(listed.secrets["DB_URL"]["computed"] == "pg://db.internal/app" and listed.secrets["DB_URL"]["raw"] == "pg://${DB_HOST}/app", "list raw and computed")
one = pt.secrets.get(name="API_KEY", config="prd", project="backend")
check(one.name == "API_KEY" and one.value["raw"] == "k1", "get one secret")

pt.secrets.update(SecretsUpdateRequest(project="backend", config="prd", secrets={"NEW_ONE": "n1"}))
check(pt.secrets.get(name="NEW_ONE", config="prd", project="backend").value["raw"] == "n1", "update with a secrets map")
pt.secrets.update(SecretsUpdateRequest(
    project="backend",
    config="prd",
    change_requests=[SecretsUpdateRequestChangeRequests(name="NEW_ONE", originalName="NEW_ONE", value=None, shouldDelete=True)],
))
expect_status(404, lambda: pt.secrets.get(name="NEW_ONE", config="prd", project="backend"), "deleted through a change request")
pt.secrets.update(SecretsUpdateRequest(project="backend", config="prd", secrets={"TO_DELETE": "x"}))
pt.secrets.delete(name="TO_DELETE", config="prd", project="backend")
expect_status(404, lambda: pt.secrets.get(name="TO_DELETE", config="prd", project="backend"), "deleted")

expect_status(400, lambda: pt.secrets.update(SecretsUpdateRequest(project="backend", config="prd", secrets={"lower": "x"})), "a lower-case name")
expect_status(404, lambda: pt.secrets.download(project="backend", config="nope"), "missing config")
expect_status(401, lambda: sdk("dp.pt.wrong").projects.list(), "bad token")

st = sdk(SERVICE)
body = st.secrets.download(project="backend", config="prd")
check(body.get("API_KEY") == "k1", "service token download")
expect_status(403, lambda: st.secrets.download(project="frontend", config="prd"), "service token on another config")
expect_status(403, lambda: st.secrets.update(SecretsUpdateRequest(project="backend", config="prd", secrets={"X": "y"})), "service token write")
expect_status(429, lambda: st.secrets.download(project="backend", config="prd", secrets="THROTTLED"), "an injected 429")

print("ALL CHECKS PASSED")
