"""What ships never imports torch: model/ and app/ load in a fresh interpreter without it."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_the_service_and_model_packages_do_not_import_torch() -> None:
    code = (
        "import sys, pkgutil, importlib, model, app\n"
        "for package in (model, app):\n"
        "    for m in pkgutil.iter_modules(package.__path__):\n"
        "        importlib.import_module(f'{package.__name__}.{m.name}')\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch'))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
