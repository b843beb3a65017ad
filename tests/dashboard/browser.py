"""A real browser for the dashboard's tests: Debian's Chromium driven by Playwright, and axe-core
(vendored from the npm registry) for the accessibility check.

Playwright's own browser download does not work on these machines (no internet); the system's
Chromium does. Without it the browser tests skip and say why, except under CI, where they must
run: there a missing browser fails the run instead of hiding a gap.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.support.needs import need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, see vendor/README.md
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
GRAVE = ("serious", "critical")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return "Debian's Chromium is not installed (apt-get install -y chromium)"
    return None


def need_browser() -> None:
    """Skip (or, under CI, fail) when the browser tests cannot run."""
    need(missing_browser(), "browser")


async def grave_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    await page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in found if v.get("impact") in GRAVE]


async def screenshot(page: Any, name: str) -> Path:
    """A picture of the page for docs/screenshots (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"dashboard-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
