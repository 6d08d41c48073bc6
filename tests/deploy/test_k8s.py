"""deploy/k8s: valid against Kubernetes' own schemas (offline), and consistent with the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.main import create_app
from tests.helpers import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"


def manifests() -> dict[str, dict[str, Any]]:
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_each_manifest_is_valid_kubernetes(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises on any error


def test_the_manifests_fit_the_service_and_each_other() -> None:
    kinds = manifests()
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    deployment, service, hpa = kinds["Deployment"], kinds["Service"], kinds["HorizontalPodAutoscaler"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    routes = set(create_app().openapi()["paths"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/health" and "/health" in routes
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready" and "/ready" in routes
    assert container["ports"][0]["containerPort"] == 8000
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001  # the image's user


def mib(quantity: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_the_memory_limit_covers_the_measured_burst() -> None:
    """The limit must hold the default settings' peak under a burst of large uploads (bench.burst)."""
    [container] = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    burst = json.loads((ROOT / "bench" / "results" / "burst.json").read_text())["runs"]
    [defaults] = [run for run in burst if run["setting"].startswith("defaults")]
    assert mib(container["resources"]["limits"]["memory"]) >= 1.5 * defaults["peak_rss_mib"]
    assert mib(container["resources"]["requests"]["memory"]) <= mib(container["resources"]["limits"]["memory"])
