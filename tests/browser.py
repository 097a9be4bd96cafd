"""A real headless Chromium for the tests that look at pages: Debian's `chromium` (installed by .ci/run) driven by
Playwright for Python through `executable_path` (no browser download), `--no-sandbox` when running as root."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import backends

ARTIFACTS = Path(os.environ.get("LIMITR_ARTIFACTS") or Path(__file__).resolve().parent.parent / ".artifacts")
"""Where the browser tests leave their screenshots (git ignores it; CI may keep it)."""


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@contextmanager
def page() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        backends.unavailable("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield browser.new_page(viewport={"width": 1000, "height": 800})
        finally:
            browser.close()
