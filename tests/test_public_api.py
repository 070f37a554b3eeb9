"""The curated public surface: what `from modelaas import ...` offers, and that it stays cheap."""

import subprocess
import sys

import modelaas


def test_all_is_sorted_and_importable():
    assert modelaas.__all__ == sorted(modelaas.__all__)
    for name in modelaas.__all__:
        assert getattr(modelaas, name) is not None, name


def test_importing_modelaas_does_not_import_the_web_stack_or_the_client():
    heavy = "('starlette', 'httpx', 'uvicorn', 'sqlalchemy')"
    code = f"import sys, modelaas; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
