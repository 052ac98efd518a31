"""The playground: its page and `/v1/playground/info` on tiny models, and the page itself in headless Debian
Chromium (Playwright): select words, run, see both outputs (completion and chat mode) and the attention view,
pick steering methods and compare two side by side."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from attnsteer import Steerer
from attnsteer.server import ServerSettings
from attnsteer.steering.methods import method_defaults
from tests.server.conftest import EIFFEL, NEW_FACT, live_server
from tests.tiny_models import tiny_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "server"  # git-ignored
CHAT_CONTROLS = ('id="mode-completion"', 'id="mode-chat"', 'id="system-input"', 'id="system-view"',
                 'id="user-input"', 'id="user-view"', 'id="model-note"')
SYSTEM = "Answer with the name of a city."


@pytest.fixture(scope="module")
def base_server(tokenizer):
    """A tiny Llama whose tokenizer has no chat template (chat gets the plain System/User/Assistant one)."""
    steerer = Steerer(tiny_model("llama"), tokenizer, heads="1")
    with live_server(steerer, ServerSettings(model_name="tiny-base", max_tokens=16)) as server:
        yield server


@pytest.fixture(scope="module")
def chat_server(chat_tokenizer):
    """A tiny Llama with a ChatML template (its markers are added tokens, so the embeddings grow to fit)."""
    model = tiny_model("llama")
    model.resize_token_embeddings(len(chat_tokenizer), mean_resizing=False)
    steerer = Steerer(model, chat_tokenizer, heads="1")
    with live_server(steerer, ServerSettings(model_name="tiny-chat", max_tokens=16)) as server:
        yield server


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


def drag_select(page, text: str, view: str = "prompt-view") -> None:
    """Select `text` inside a text view with the mouse: press on its first character, release on its last."""
    box = page.evaluate(
        """([view, target]) => {
            const node = document.getElementById(view).firstChild;
            const start = node.textContent.indexOf(target);
            const rect = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                                  return r.getBoundingClientRect(); };
            const first = rect(start), last = rect(start + target.length - 1);
            return {x0: first.left + 1, y0: first.top + first.height / 2,
                    x1: last.right - 1, y1: last.top + last.height / 2};
        }""",
        [view, text],
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
    assert page.inner_text("#prompt-view mark") == NEW_FACT
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


def test_the_page_has_the_chat_mode_controls(base_server):
    status, html = base_server.get("/")
    assert status == 200
    missing = [control for control in CHAT_CONTROLS if control not in html.decode()]
    assert not missing


@pytest.mark.parametrize(("fixture", "has_template"), [("base_server", False), ("chat_server", True)])
def test_playground_info_names_the_model_and_whether_it_has_a_chat_template(request, fixture, has_template):
    server = request.getfixturevalue(fixture)
    info = json.loads(server.get("/v1/playground/info")[1])
    models = json.loads(server.get("/v1/models")[1])
    assert {key: info[key] for key in ("model", "chat_template")} == {"model": models["data"][0]["id"],
                                                                      "chat_template": has_template}
    assert [method["name"] for method in info["steering_methods"]] == ["pasta", "instaboost", "spotlight"]
    assert info["steering_default"] == {"method": "pasta", "heads": "1.0,1.1,1.2,1.3", "alpha": 0.01,
                                        "mode": "exclude"}
    assert models["data"] == [{"id": info["model"], "object": "model", "created": 0, "owned_by": "attnsteer"}]


def open_playground(page, server) -> None:
    """Open the page and wait until it has asked the server which model it serves."""
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('model-kind').textContent !== ''")


def test_a_base_model_opens_in_completion_mode_and_says_so(base_server, page):
    open_playground(page, base_server)
    assert page.inner_text("#model-name") == "tiny-base"
    assert "base model: chat uses a plain System/User/Assistant template" in page.inner_text("#model-note")
    assert page.get_attribute("#mode-completion", "aria-selected") == "true"
    assert page.is_visible("#prompt-input") and page.is_hidden("#user-input")


def chat_response(page, steered: bool):
    """Wait for the chat request with (steered) or without emphasis in its messages; its response."""
    def wanted(response) -> bool:
        if not response.url.endswith("/v1/chat/completions"):
            return False
        messages = response.request.post_data_json["messages"]
        return any("emphasis" in message for message in messages) == steered

    return page.expect_response(wanted, timeout=60_000)


def test_chat_mode_sends_the_selected_emphasis_and_shows_both_replies(chat_server, page):
    open_playground(page, chat_server)
    assert page.inner_text("#model-name") == "tiny-chat"
    assert "chat model: uses its chat template" in page.inner_text("#model-note")
    assert page.get_attribute("#mode-chat", "aria-selected") == "true" and page.is_hidden("#prompt-input")
    page.fill("#system-input", SYSTEM)
    page.fill("#user-input", EIFFEL)
    drag_select(page, "name", view="system-view")
    drag_select(page, NEW_FACT, view="user-view")
    page.fill("#max-tokens", "6")
    with chat_response(page, steered=False) as plain, chat_response(page, steered=True) as steered:
        page.click("#run")
    name, fact = SYSTEM.index("name"), EIFFEL.index(NEW_FACT)
    assert plain.value.request.post_data_json["messages"] == [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": EIFFEL}]
    assert steered.value.request.post_data_json["messages"] == [
        {"role": "system", "content": SYSTEM, "emphasis": [{"start": name, "end": name + 4}]},
        {"role": "user", "content": EIFFEL, "emphasis": [{"start": fact, "end": fact + len(NEW_FACT)}]}]
    page.wait_for_function("!document.getElementById('run').disabled")
    replies = []
    for selector, response in (("#plain-output", plain.value), ("#steered-output", steered.value)):
        assert response.ok
        replies.append(response.json()["choices"][0]["message"]["content"])
        assert page.eval_on_selector(selector, "node => node.textContent") == replies[-1]
    assert replies[0] != replies[1]  # the emphasis reached the model (greedy decoding, seeded weights)
    assert page.is_hidden("#error") and page.is_hidden("#attention-panel")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground_chat.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"playground chat screenshot: {shot}; replies: {page.inner_text('#plain-output')!r}, "
          f"{page.inner_text('#steered-output')!r}")


def completion_response(page, method: str | None):
    """Wait for the completion request steered with `method` (None: the plain one); its response."""
    def wanted(response) -> bool:
        if not response.url.endswith("/v1/completions"):
            return False
        steering = response.request.post_data_json.get("steering")
        return (steering or {}).get("method") == method

    return page.expect_response(wanted, timeout=60_000)


def test_pick_a_method_and_compare_two_side_by_side(base_server, page):
    open_playground(page, base_server)
    assert page.input_value("#method") == "pasta" and page.input_value("#alpha") == "0.01"  # the server's default
    assert page.input_value("#compare-method") == "" and page.is_hidden("#compare-column")
    page.fill("#prompt-input", EIFFEL)
    drag_select(page, NEW_FACT)
    page.select_option("#method", "instaboost")
    assert page.is_hidden("#alpha") and page.is_visible("#boost") and page.is_hidden("#target")
    page.fill("#boost", "1000")
    page.select_option("#compare-method", "spotlight")
    assert page.is_visible("#compare-target") and page.is_visible("#compare-granularity")
    page.fill("#compare-target", "0.9")
    page.fill("#max-tokens", "6")
    with completion_response(page, None) as plain, completion_response(page, "instaboost") as boosted, \
            completion_response(page, "spotlight") as spotlit:
        page.click("#run")
    page.wait_for_selector("#attention-view .attention-row", timeout=60_000)
    fact = EIFFEL.index(NEW_FACT)
    emphasis = [{"start": fact, "end": fact + len(NEW_FACT)}]
    assert "emphasis" not in plain.value.request.post_data_json
    assert boosted.value.request.post_data_json["steering"] == {"method": "instaboost", "boost": 1000}
    assert spotlit.value.request.post_data_json["steering"] == {"method": "spotlight", "target": 0.9,
                                                                 "granularity": method_defaults("spotlight")[
                                                                     "granularity"]}
    assert boosted.value.request.post_data_json["emphasis"] == emphasis
    replies = []
    for selector, response in (("#plain-output", plain), ("#steered-output", boosted), ("#compare-output", spotlit)):
        assert response.value.ok
        replies.append(response.value.json()["choices"][0]["text"])
        assert page.eval_on_selector(selector, "node => node.textContent") == replies[-1]
    assert len(set(replies)) == 3  # each column got its own method (greedy decoding, seeded weights)
    assert page.inner_text("#steered-title") == "instaboost (boost 1000)"
    granularity = method_defaults("spotlight")["granularity"]
    assert page.inner_text("#compare-title") == f"spotlight (target 0.9, granularity {granularity})"
    # InstABoost steers all 12 heads of the tiny model: the attention view shows each layer's mean.
    labels = page.eval_on_selector_all(".attention-row span:first-child", "cells => cells.map(c => c.textContent)")
    assert labels[:2] == ["L0 (4 heads) plain", "L0 (4 heads) steered"] and len(labels) == 6
    assert page.is_hidden("#error")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground_methods.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"playground methods screenshot: {shot}; replies: {replies!r}")
