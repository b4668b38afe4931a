"""Drives the local 1Password Connect server with 1Password's own Python SDK
(`onepasswordconnectsdk`).

Every call the eso-rs provider makes must round-trip through the vendor's client: vaults by
name and ID, items by title and ID, fields and sections, files and their content, create,
replace and delete, and the error answers (401, 403, 404). Prints ALL CHECKS PASSED when every
check holds.
"""

import os
import sys

from onepasswordconnectsdk import load_dict, new_client
from onepasswordconnectsdk.errors import (
    FailedToRetrieveItemException,
    FailedToRetrieveVaultException,
)
from onepasswordconnectsdk.models import Field, Item, ItemVault

URL = os.environ["OP_TEST_URL"]
TOKEN = os.environ["OP_TEST_TOKEN"]
SCOPED = os.environ["OP_TEST_SCOPED_TOKEN"]
DB_ID = os.environ["OP_TEST_DB_ITEM_ID"]
THROTTLED_ID = os.environ["OP_TEST_THROTTLED_ITEM_ID"]


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def expect(exc_type, fn, what, status=None):
    try:
        fn()
    except exc_type as e:
        got = getattr(e, "status_code", None)
        check(status is None or got == status, f"{what}: status {got} == {status} ({e})")
        return e
    check(False, f"{what}: {exc_type.__name__} was raised")


client = new_client(URL, TOKEN)

vaults = client.get_vaults()
check(sorted(v.name for v in vaults) == ["dev", "prod"], "list vaults")
dev = client.get_vault_by_title("dev")
prod = client.get_vault_by_title("prod")
check(prod.name == "prod" and len(prod.id) == 26, "vault by name")
check(client.get_vault(prod.id).name == "prod", "vault by ID")
expect(FailedToRetrieveItemException, lambda: client.get_vault_by_title("nope"), "no vault by that name")
expect(FailedToRetrieveVaultException, lambda: client.get_vault("a" * 26), "missing vault ID")

summaries = client.get_items(prod.id)
check(sorted(s.title for s in summaries) == ["cert", "db", "dup", "dup"], "list items")
check(all(not hasattr(s, "fields") for s in summaries), "summaries carry no fields")
titled = client.get_items(prod.id, 'title eq "db"')
check([s.id for s in titled] == [DB_ID], "items filtered by title")

db = client.get_item("db", "prod")
check(db.id == DB_ID and db.category == "LOGIN" and db.vault.id == prod.id, "item by title and vault name")
labels = {f.label: f.value for f in db.fields}
check(labels == {"username": "admin", "password": "s3cret", "host": "db.internal"}, f"fields {labels}")
check(db.tags == ["env:prod"], "tags")
check([s.label for s in db.sections] == ["conn"], "sections")
by_id = client.get_item(DB_ID, prod.id)
check(by_id.title == "db" and by_id.version == 1, "item by ID")
expect(FailedToRetrieveItemException, lambda: client.get_item_by_id("b" * 26, prod.id), "missing item ID", 404)
expect(FailedToRetrieveItemException, lambda: client.get_item("dup", prod.id), "two items with one title")

values = load_dict(client, {
    "user": {"opitem": "db", "opfield": ".username", "opvault": prod.id},
    "host": {"opitem": "db", "opfield": "conn.host", "opvault": prod.id},
})
check(values == {"user": "admin", "host": "db.internal"}, f"load_dict through sections {values}")

cert = client.get_item("cert", prod.id)
files = client.get_files(cert.id, prod.id)
check([f.name for f in files] == ["tls.crt", "tls.key"], "list files")
one = client.get_file(files[0].id, cert.id, prod.id)
check(one.size == len(b"-----CERT-----"), "file metadata")
content = client.get_file_content(files[0].id, cert.id, prod.id, files[0].content_path)
check(content == b"-----CERT-----", "file content through content_path")
content = client.get_file_content(files[1].id, cert.id, prod.id)
check(content == b"-----KEY-----", "file content by IDs")

new = Item(
    title="pushed",
    category="SERVER",
    vault=ItemVault(id=prod.id),
    tags=["eso"],
    fields=[Field(label="password", value="p1", type="CONCEALED")],
)
created = client.create_item(prod.id, new)
check(len(created.id) == 26 and created.version == 1, "create")
check(created.fields[0].id and created.fields[0].value == "p1", "created field has an ID")
created.fields.append(Field(label="token", value="t1", type="CONCEALED"))
updated = client.update_item(created.id, prod.id, created)
check(updated.version == 2 and len(updated.fields) == 2, "replace")
check(client.get_item("pushed", prod.id).fields[1].value == "t1", "replaced item read back")
client.delete_item(created.id, prod.id)
expect(FailedToRetrieveItemException, lambda: client.get_item_by_id(created.id, prod.id), "deleted", 404)
bad = Item(title="x", category="NOT_A_CATEGORY", vault=ItemVault(id=prod.id), fields=[])
expect(FailedToRetrieveItemException, lambda: client.create_item(prod.id, bad), "invalid category")

expect(FailedToRetrieveVaultException, lambda: new_client(URL, "wrong").get_vaults(), "bad token")
scoped = new_client(URL, SCOPED)
check([v.name for v in scoped.get_vaults()] == ["dev"], "a scoped token lists its vaults only")
expect(FailedToRetrieveItemException, lambda: scoped.get_item_by_id(DB_ID, prod.id), "vault out of scope", 403)
expect(FailedToRetrieveItemException, lambda: client.get_item_by_id(THROTTLED_ID, dev.id), "an injected 429", 429)
check(client.get_item_by_id(THROTTLED_ID, dev.id).title == "throttled", "served after the fault")

print("ALL CHECKS PASSED")
