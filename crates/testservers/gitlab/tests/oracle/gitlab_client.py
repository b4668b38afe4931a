"""Drives eso-testserver-gitlab with python-gitlab, the GitLab REST client GitLab documents.

Usage: gitlab_client.py URL TOKEN REPORTER_TOKEN [throttled]
Prints one JSON object with what the client saw; the Rust test checks it.
"""
import json
import sys

import gitlab


def code_of(call):
    try:
        call()
        return 200
    except gitlab.exceptions.GitlabError as err:
        return [err.response_code, err.error_message]


def main():
    url, token, reporter = sys.argv[1:4]
    gl = gitlab.Gitlab(url, private_token=token)
    out = {}
    project = gl.projects.get(42, lazy=True)
    if sys.argv[4:] == ["throttled"]:
        # The server answers 429 with Retry-After first: the client waits and repeats.
        print(json.dumps({"after_throttle": project.variables.get("API_TOKEN").value}))
        return
    # Two per page: the client follows the Link headers through every page.
    out["project_list"] = [
        [v.key, v.value, v.environment_scope]
        for v in project.variables.list(get_all=True, per_page=2)
    ]
    page = project.variables.list(page=2, per_page=2)
    out["page_2"] = [v.key for v in page]
    out["get_scoped"] = project.variables.get(
        "DB_PASSWORD", filter={"environment_scope": "production"}).value
    out["get_wildcard"] = project.variables.get(
        "DB_PASSWORD", filter={"environment_scope": "*"}).value
    out["get_unscoped"] = project.variables.get("API_TOKEN").value
    out["by_path"] = gl.projects.get("acme/team/app", lazy=True).variables.get("API_TOKEN").value
    out["multiple_status"] = code_of(lambda: project.variables.get("DB_PASSWORD"))
    out["missing_status"] = code_of(lambda: project.variables.get("NOPE"))
    out["invisible_status"] = code_of(lambda: gl.projects.get(99, lazy=True).variables.list())
    group = gl.groups.get(7, lazy=True)
    out["group_list"] = [[v.key, v.value] for v in group.variables.list(get_all=True)]
    out["group_get"] = group.variables.get("ORG_SECRET").value
    out["ancestors"] = sorted(g.full_path for g in project.groups.list(get_all=True))
    created = project.variables.create(
        {"key": "NEW_ONE", "value": "fresh", "environment_scope": "staging"})
    out["created"] = [created.key, created.environment_scope]
    out["created_get"] = project.variables.get(
        "NEW_ONE", filter={"environment_scope": "staging"}).value
    out["duplicate_status"] = code_of(lambda: project.variables.create(
        {"key": "NEW_ONE", "value": "again", "environment_scope": "staging"}))
    out["bad_token_status"] = code_of(
        lambda: gitlab.Gitlab(url, private_token="wrong").projects.get(42, lazy=True).variables.list())
    out["reporter_status"] = code_of(
        lambda: gitlab.Gitlab(url, private_token=reporter).projects.get(42, lazy=True).variables.list())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
