"""Browser fixtures: Debian's chromium driven by Playwright, against real servers.

The browser is skipped (with the reason) when chromium or Playwright is missing, unless
``CI`` is set: then it fails. Every page records the requests it makes; a test fails if
any of them went elsewhere than the server under test (the UI must work offline).

Screenshots go to ``docs/img/`` when ``MODELAAS_UPDATE_SCREENSHOTS=1``, else to a
temporary folder, so that a test run does not change the work tree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MODELAAS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def _unavailable() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MODELAAS_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class UI:
    """A browser page on a server, and every URL it requested."""

    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        own = (self.origin + "/", "data:", "blob:")
        return [u for u in self.requests if not u.startswith(own)]


@pytest.fixture
def open_ui(browser: Any, screenshot_dir: Path) -> Iterator[Callable[..., UI]]:
    """``open_ui(server_url, path="/ui", width=1100, height=900)`` -> a loaded :class:`UI`.

    ``routes`` (URL glob -> handler) are installed before the page loads; ``wait=False``
    does not wait for the models to be listed. The page's Content-Security-Policy is
    bypassed (Playwright's ``wait_for_function`` evaluates strings) unless ``csp=True``:
    then any violation is a console error, which fails the test.
    """
    opened: list[tuple[Any, UI]] = []

    def open_(
        origin: str,
        path: str = "/ui",
        *,
        width: int = 1100,
        height: int = 900,
        wait: bool = True,
        routes: dict[str, Callable[[Any], None]] | None = None,
        csp: bool = False,
    ) -> UI:
        context = browser.new_context(
            viewport={"width": width, "height": height}, accept_downloads=True, bypass_csp=not csp
        )
        for pattern, handler in (routes or {}).items():
            context.route(pattern, handler)
        page = context.new_page()
        ui = UI(page, origin)
        context.on("request", lambda request: ui.requests.append(request.url))
        page.on("pageerror", lambda exc: ui.errors.append(str(exc)))
        page.on("console", lambda msg: ui.errors.append(msg.text) if msg.type == "error" else None)
        page.set_default_timeout(15_000)
        opened.append((context, ui))
        page.goto(origin + path)
        if wait:
            page.wait_for_selector("#model-pick:not([hidden])")
        return ui

    yield open_
    problems = []
    for context, ui in opened:
        context.close()
        if ui.foreign_requests():
            problems.append(f"requests left {ui.origin}: {ui.foreign_requests()}")
        # a failed fetch (401, 422, ...) is logged by the browser; those are expected
        script_errors = [e for e in ui.errors if "Failed to load resource" not in e]
        if script_errors:
            problems.append(f"script errors: {script_errors}")
    assert not problems, problems


@pytest.fixture
def shoot(screenshot_dir: Path) -> Callable[..., Path]:
    def take(page: Any, name: str, *, full_page: bool = True, element: str | None = None) -> Path:
        path = screenshot_dir / name
        page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        if element:
            page.locator(element).screenshot(path=str(path), animations="disabled")
        else:
            page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return take
