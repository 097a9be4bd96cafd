"""Locates the files shipped beside the code: the Stof grammar and the policy JSON Schema.

They live at the repository root (`grammar/`, `schemas/`) and are copied into `limitr_py/_data/` in a wheel.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_path(folder: str, name: str) -> Path:
    """Path of `folder/name`, from the installed wheel or else from the source checkout."""
    for candidate in (_PACKAGE / "_data" / folder / name, _PACKAGE.parent / folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"limitr_py resource {folder}/{name} is missing from this installation")
