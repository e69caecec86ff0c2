"""What every browser test shares: Debian's chromium driven by Playwright, the app served by werkzeug in a thread,
an axe-core check and a screenshot per page, logging in through the login page.

Test modules import the fixtures they use (``from tests.browser_support import browser, live_server, page``)
and mark themselves ``pytestmark = skip_without_browser``: without chromium or node_modules they are skipped,
except under CI (``CI`` set) where their absence is an error. Never ``playwright install``: no browser download.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine.paths import PROJECT_ROOT
from tests.api_support import DEMO_PASSWORD

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"

# No background traffic: this machine reaches nothing but the package registries.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--lang=fr-FR"]

_MISSING = [reason for missing, reason in (
    (not Path(CHROMIUM).exists(), "Debian's chromium is not installed (apt-get install chromium)"),
    (not AXE.exists(), "node_modules is missing (npm ci)"),
) if missing]
if _MISSING and os.environ.get("CI"):  # CI must run these, never skip them quietly
    raise RuntimeError("; ".join(_MISSING))
skip_without_browser = pytest.mark.skipif(bool(_MISSING), reason="; ".join(_MISSING))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(seeded):
    """The seeded app behind a real HTTP server on a free local port."""
    server = make_server("127.0.0.1", 0, seeded, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(browser):
    # axe-core is injected as an inline script: the pages' Content-Security-Policy would refuse it.
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", bypass_csp=True,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


def check_page(page, name: str) -> None:
    """No JavaScript error, no serious or critical axe-core violation; keep a screenshot."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => {
        const results = await axe.run(document, {resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: {serious}"
    assert not page.js_errors, f"{name}: {page.js_errors}"


def log_in(page, base: str, email: str, landing: str = "/taches") -> None:
    """Log in through the login page, asking to go to ``landing`` afterwards (as a link to a page does)."""
    page.goto(f"{base}/connexion?suivant={landing}")
    page.get_by_label("Adresse électronique professionnelle").fill(email)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}{landing}")
