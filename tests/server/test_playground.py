"""The playground in headless Debian Chromium (Playwright): select words, run, see both outputs and attention."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.server.conftest import EIFFEL, NEW_FACT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "server"  # git-ignored


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make test` as root (it apt-installs chromium) "
                    "or `apt-get install chromium chromium-driver`")
    profile = tempfile.mkdtemp(prefix="attnsteer-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1200, "height": 1100},
        )
        try:
            yield context.new_page()
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def drag_select(page, text: str) -> None:
    """Select `text` inside the text view with the mouse: press on its first character, release on its last."""
    box = page.evaluate(
        """(target) => {
            const node = document.getElementById("text-view").firstChild;
            const start = node.textContent.indexOf(target);
            const rect = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                                  return r.getBoundingClientRect(); };
            const first = rect(start), last = rect(start + target.length - 1);
            return {x0: first.left + 1, y0: first.top + first.height / 2,
                    x1: last.right - 1, y1: last.top + last.height / 2};
        }""",
        text,
    )
    page.mouse.move(box["x0"], box["y0"])
    page.mouse.down()
    page.mouse.move((box["x0"] + box["x1"]) / 2, box["y1"], steps=5)
    page.mouse.move(box["x1"], box["y1"], steps=5)
    page.mouse.up()


def test_select_run_and_see_outputs_and_attention(embedded_server, page):
    page.goto(embedded_server.url + "/")
    page.fill("#prompt-input", EIFFEL)
    drag_select(page, NEW_FACT)
    assert page.inner_text("#text-view mark") == NEW_FACT
    page.fill("#max-tokens", "4")
    page.click("#run")
    page.wait_for_selector("#attention-view .attention-row", timeout=120_000)
    plain, steered = page.inner_text("#plain-output"), page.inner_text("#steered-output")
    assert plain.startswith(" Paris") or plain.startswith("Paris")
    assert "Rome" in steered
    shares = page.eval_on_selector_all(".attention-row span:last-child", "cells => cells.map(c => c.textContent)")
    plain_share, steered_share = (float(value.rstrip("%")) for value in shares[:2])
    assert steered_share > plain_share  # steering moved attention onto the emphasised span
    assert page.locator(".heat-strip span.emphasised").count() > 5
    assert page.is_hidden("#error")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"playground screenshot: {shot}")
