"""Render the eso-rs chart offline and print its manifests as one YAML stream.

Uses helm-python-sdk (Helm's Go SDK behind a Python API; no helm binary, no cluster):

    .venv-emu/bin/python deploy/charts/render.py [--values JSON-or-YAML-file] \
        [--set-json '{"replicaCount": 3}'] [--name eso-rs] [--namespace eso-rs] \
        [--output yaml|json] [--lint] [chart-dir]

Documents come in Helm's install order (CRDs, ServiceAccount, RBAC, Service, Deployment, ...),
each preceded by a `# Source:` comment, as `helm template` prints them. A template `fail`
(a refused value combination) exits with status 1 and the message on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import helm_python as helm

# Helm's install order (pkg/release/util/kind_sorter.go), trimmed to the kinds this chart
# renders; other kinds (ServiceMonitor) go last, as in Helm.
KIND_ORDER = [
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
]

HERE = os.path.dirname(os.path.abspath(__file__))


def split_documents(source: str, text: str) -> list[tuple[str, str, str]]:
    """(kind, source, text) of every non-empty document of one rendered template."""
    docs = []
    for doc in text.split("\n---"):
        body = doc.strip("\n")
        if body.startswith("---"):
            body = body[3:].lstrip("\n")
        lines = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            continue
        kind = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("kind:")), "")
        docs.append((kind, source, body.rstrip() + "\n"))
    return docs


def order(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", nargs="?", default=os.path.join(HERE, "eso-rs"))
    parser.add_argument("--values", help="a values file (YAML or JSON)")
    parser.add_argument("--set-json", default="{}", help="values as a JSON object")
    parser.add_argument("--name", default="eso-rs", help="release name")
    parser.add_argument("--namespace", default="eso-rs", help="release namespace")
    parser.add_argument(
        "--output",
        choices=["yaml", "json"],
        default="yaml",
        help="yaml: the manifests as a YAML stream; json: an array of the parsed documents",
    )
    parser.add_argument(
        "--lint",
        action="store_true",
        help="print `helm lint --strict`'s report (JSON) for these values instead",
    )
    args = parser.parse_args()

    values: dict = {}
    if args.values:
        with open(args.values, encoding="utf-8") as f:
            values = helm.values_from_yaml(f.read())
    overrides = json.loads(args.set_json)
    if args.lint:
        report = helm.lint(
            args.chart, _deep_merge(values, overrides), strict=True, namespace=args.namespace
        )
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    with helm.Chart.load(args.chart) as chart:
        try:
            # render() coalesces these with the chart's defaults, as an install does.
            rendered = chart.render(
                _deep_merge(values, overrides),
                name=args.name,
                namespace=args.namespace,
                is_install=True,
            )
        except helm.HelmError as e:
            print(f"render failed: {e}", file=sys.stderr)
            return 1
    docs = []
    for source in sorted(rendered):
        if os.path.basename(source).startswith("_") or source.endswith("NOTES.txt"):
            continue
        docs.extend(split_documents(source, rendered[source]))
    # Stable within a kind: by source path, then by order of appearance.
    docs = sorted(enumerate(docs), key=lambda d: (order(d[1][0]), d[1][1], d[0]))
    if args.output == "json":
        parsed = [helm.values_from_yaml(text) for _, (_, _, text) in docs]
        json.dump(parsed, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = []
    for _, (_, source, text) in docs:
        out.append(f"---\n# Source: {source}\n{text}")
    sys.stdout.write("".join(out))
    return 0


def _deep_merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


if __name__ == "__main__":
    sys.exit(main())
