"""training/constraints.txt pins what built the shipped model, and the shipped card agrees with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from model.card import card_path, load_card
from model.runtime import DEFAULT_MODEL_PATH
from training.artifacts import EXPORT_PACKAGES, WEIGHT_PACKAGES

ROOT = Path(__file__).resolve().parents[2]


def exact_pin(requirement: Requirement) -> Version:
    [spec] = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned to one version"
    return Version(spec.version)


def pins() -> dict[str, Version]:
    """The constraints file's pins and pyproject.toml's torch, by canonical name."""
    lines = (ROOT / "training" / "constraints.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [torch] = [Requirement(r) for r in extras["train"] if Requirement(r).name == "torch"]
    found: dict[str, Version] = {canonicalize_name(r.name): exact_pin(r) for r in [*requirements, torch]}
    assert len(found) == len(requirements) + 1, "a package is pinned twice"
    return found


def differences(recorded: dict[str, str], packages: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """The packages whose recorded version is not the pinned one (a local tag such as +cpu aside)."""
    pinned = pins()
    return {
        p: (recorded.get(p, "missing"), str(pinned[canonicalize_name(p)]))
        for p in packages
        if p not in recorded or Version(Version(recorded[p]).base_version) != pinned[canonicalize_name(p)]
    }


def test_every_package_that_shapes_the_model_is_pinned_and_nothing_else() -> None:
    assert set(pins()) == {canonicalize_name(p) for p in (*WEIGHT_PACKAGES, *EXPORT_PACKAGES)}


def test_the_shipped_model_was_built_by_the_pinned_versions() -> None:
    card = load_card(card_path(DEFAULT_MODEL_PATH))
    assert card.members
    for member in card.members:
        assert differences(member.packages, WEIGHT_PACKAGES) == {}
    assert differences(card.export_packages, EXPORT_PACKAGES) == {}


def test_a_moved_pin_or_a_missing_record_is_told() -> None:
    recorded = {p: str(v) for p, v in pins().items()}
    assert differences(recorded, WEIGHT_PACKAGES) == {}
    recorded["numpy"] = "1.26.4"
    del recorded["av"]
    assert set(differences(recorded, WEIGHT_PACKAGES)) == {"numpy", "av"}
