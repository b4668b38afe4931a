"""Drives eso-testserver-conjur with CyberArk's own Python SDK (PyPI `conjur`).

Usage: conjur_client.py URL ACCOUNT LOGIN API_KEY
Prints one JSON object with what the SDK saw; the Rust test checks it.
"""
import json
import sys

from aiohttp import ClientResponseError
from conjur.api.client import Client
from conjur.api.models import SslVerificationMode
from conjur.data_object import ConjurrcData, CredentialsData
from conjur.interface.credentials_store_interface import CredentialsStoreInterface


class Memory(CredentialsStoreInterface):
    """Credentials held in memory (the SDK's own stores write files or a keyring)."""

    def __init__(self, login, api_key):
        self.data = CredentialsData(machine=None, login=login, password=api_key)

    def save(self, credential_data):
        self.data = credential_data

    def load(self, conjurrc_conjur_url):
        return self.data

    def update_api_key_entry(self, user_to_update, credential_data, new_api_key):
        pass

    def remove_credentials(self, conjurrc):
        pass

    def is_exists(self, conjurrc_conjur_url):
        return True

    def cleanup_if_exists(self, conjurrc_conjur_url):
        pass

    def get_store_location(self):
        return "memory"


def status_of(call):
    try:
        call()
        return 200
    except ClientResponseError as err:
        return err.status
    except Exception as err:  # the SDK wraps some failures
        cause = err.__cause__ or err.__context__
        return getattr(cause, "status", repr(err))


def main():
    url, account, login, api_key = sys.argv[1:5]
    rc = ConjurrcData(conjur_url=url, account=account, cert_file=None)

    def client(key):
        return Client(rc, ssl_verification_mode=SslVerificationMode.INSECURE,
                      credentials_provider=Memory(login, key))

    c = client(api_key)
    out = {}
    out["whoami"] = c.whoami()
    out["get"] = c.get("db/password").decode()
    out["get_version_1"] = c.get("db/password", version="1").decode()
    out["get_many"] = c.get_many("db/password", "api/token")
    out["list"] = c.list({"kind": "variable"})
    out["list_page"] = c.list({"kind": "variable", "limit": "2", "offset": "1"})
    out["list_search"] = c.list({"kind": "variable", "search": "token"})
    full = c.list({"kind": "variable", "inspect": True})
    out["annotations"] = {r["id"]: {a["name"]: a["value"] for a in r["annotations"]} for r in full}
    c.set("db/password", "rotated")
    out["after_set"] = c.get("db/password").decode()
    out["missing_status"] = status_of(lambda: c.get("db/nope"))
    out["empty_status"] = status_of(lambda: c.get("empty"))
    out["forbidden_status"] = status_of(lambda: c.get("hidden-exec"))
    out["invisible_status"] = status_of(lambda: c.get("invisible"))
    out["bad_key_status"] = status_of(lambda: client("wrong").get("db/password"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
