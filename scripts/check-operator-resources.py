#!/usr/bin/env python3
"""Checks prometheus-operator resources (PodMonitor, ServiceMonitor, PrometheusRule) against the operator's CRD
schemas, as carried by the typed models of the PyPI package cloudcoil-models-prometheus-operator (generated from
the CRDs' openAPIV3Schema). scripts/test.sh installs it, pinned, with the rest of the deploy tools.

Two checks per resource, because the models alone are lenient:
- pydantic validation in strict mode: types, enums, patterns and required fields, with no coercion;
- a round trip: the validated model, dumped back, must equal the input. The models ignore unknown fields, so a
  key that does not come back is one the CRD does not define: the API server rejects it under kubectl's default
  strict field validation (or prunes it silently under the lenient one).

Usage: check-operator-resources.py FILE... Prints "OK" or "FAIL" per resource; exits 1 if any fails, 2 when a
file holds something that is not one of the three kinds (so a typo in a kind cannot skip the check).
"""

import sys

import pydantic
import yaml
from cloudcoil.models.prometheus_operator import v1

API_VERSION = "monitoring.coreos.com/v1"
KINDS = {"PodMonitor": v1.PodMonitor, "ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}


def first_difference(given, back, path="$"):
    """The path of the first value the round trip lost or changed, or None when nothing differs."""
    if isinstance(given, dict) and isinstance(back, dict):
        for key in given:
            if key not in back:
                return f"{path}.{key}: unknown field"
            found = first_difference(given[key], back[key], f"{path}.{key}")
            if found:
                return found
        extra = sorted(set(back) - set(given))
        return f"{path}: gained {extra}" if extra else None
    if isinstance(given, list) and isinstance(back, list):
        if len(given) != len(back):
            return f"{path}: {len(given)} items became {len(back)}"
        for i, (g, b) in enumerate(zip(given, back)):
            found = first_difference(g, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if given != back or type(given) is not type(back):
        return f"{path}: {given!r} became {back!r}"
    return None


def check(resource):
    """None when the resource is valid, else the reason it is not."""
    model = KINDS[resource["kind"]]
    try:
        validated = model.model_validate(resource, strict=True)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']} ({e.error_count()} error(s))"
    return first_difference(resource, validated.model_dump(mode="json", by_alias=True, exclude_unset=True))


def main(paths):
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            resources = [r for r in yaml.safe_load_all(f) if r]
        for resource in resources:
            kind = resource.get("kind")
            name = (resource.get("metadata") or {}).get("name")
            if resource.get("apiVersion") != API_VERSION or kind not in KINDS:
                print(f"ERROR {path}: {resource.get('apiVersion')}/{kind} {name} is not a prometheus-operator kind")
                return 2
            problem = check(resource)
            if problem:
                failed = True
                print(f"FAIL {path} {kind}/{name}: {problem}")
            else:
                print(f"OK {path} {kind}/{name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
