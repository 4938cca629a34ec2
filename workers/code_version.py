"""A short fingerprint of the code the Modal image ships (core, store, workers and the worker's
requirements), stamped on the deployed App as a tag, so `python -m bench doctor` can tell whether
the deployment runs the code of this checkout."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the folder holding the shipped packages)."""
SHIPPED_PACKAGES = ("core", "store", "workers")
"""Packages the Modal image carries (workers/modal_app.py add_local_python_source)."""
REQUIREMENTS = "requirements-worker.txt"
"""The image's pip requirements (read when the image is built)."""
TAG = "code_version"
"""Name of the App tag carrying the fingerprint."""


def code_version(root: Path = ROOT) -> str:
    """'v' + 12 hex digits of the sha256 over every shipped .py file (path and bytes, in path
    order) and the worker requirements; files that are absent (the requirements file inside a
    container) are left out. A valid Modal tag value. Raises nothing."""
    digest = hashlib.sha256()
    files = sorted(path for package in SHIPPED_PACKAGES for path in (root / package).rglob("*.py")
                   if "__pycache__" not in path.parts)
    files.append(root / REQUIREMENTS)
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + data + b"\0")
    return "v" + digest.hexdigest()[:12]
