"""The web console (/console) in a real browser: Debian's headless Chromium driven by Selenium,
against the session's local gateway and its simulator.

One browser for the module. Time is driven, not waited for: the simulator's Anthropic batches
move on a SteppedClock the tests step, and the page's own refresh is observed with Selenium's
explicit waits on a DOM condition. Every page is checked with axe-core (npm, pinned) and saved
as a screenshot under .artifacts/console/.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from gateway.routes import ROUTES
from openai.types import Batch
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from devserver.server import LocalGateway
from devserver.simulator import SteppedClock
from tests.integration.helpers import client
from tests.integration.receiver import webhook_receiver

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / ".artifacts" / "console"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MODEL = "claude-sonnet-4-5"
# The page refreshes every 2 s while a batch runs: a DOM condition is given this long to hold.
WAIT_SECONDS = 20
SCRIPT_NAME = "<script>alert(1)</script>.jsonl"


def chat_lines(count: int, *, model: str = MODEL) -> bytes:
    lines = [
        {
            "custom_id": f"request-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": f"Say {i}"}]},
        }
        for i in range(count)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def small_batch(sdk: openai.OpenAI, lines: int) -> Batch:
    """A batch of `lines` chat requests on the Anthropic deployment, just created."""
    uploaded = sdk.files.create(
        file=("in.jsonl", io.BytesIO(chat_lines(lines)), "application/jsonl"), purpose="batch"
    )
    return sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)")
    if not AXE_SCRIPT.exists():
        pytest.fail("axe-core is missing: `make test` installs it (npm ci)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]
    driver.requests = []  # type: ignore[attr-defined]  # every request the page made, in order
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stepped(local_gateway: LocalGateway) -> Iterator[tuple[SteppedClock, float]]:
    """The simulator's Anthropic batches on a clock the test steps (a little ahead of the
    gateway's, a skew it tolerates), and their phase."""
    assert local_gateway.simulator is not None
    batches = local_gateway.simulator.state.anthropic
    clock = SteppedClock(float(int(time.time())) + 30)
    saved, batches.clock = batches.clock, clock
    try:
        yield clock, local_gateway.simulator.config.batch_phase_seconds
    finally:
        batches.clock = saved


# What the page does ------------------------------------------------------------------------


def requests_seen(driver: WebDriver) -> list[dict[str, Any]]:
    """The requests the page sent since the session began (Chromium's performance log)."""
    seen: list[dict[str, Any]] = driver.requests  # type: ignore[attr-defined]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            seen.append(message["params"]["request"])
    return seen


def browser_errors(driver: WebDriver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        # the page re-renders what it refreshes: an element read mid-render is read again
        waiting = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
        return waiting.until(condition)
    except TimeoutException:
        shown = driver.execute_script("return document.body.innerText")
        raise AssertionError(f"waited {WAIT_SECONDS} s for {what}; the page shows:\n{shown[:3000]}") from None


def element(driver: WebDriver, css: str) -> WebElement:
    return wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, css), css)


def open_page(driver: WebDriver, gateway: LocalGateway, hash_route: str, ready_css: str) -> None:
    if not driver.current_url.startswith(gateway.url + "/console"):
        driver.get(gateway.url + "/console")
    driver.execute_script("window.location.hash = arguments[0]", hash_route)
    element(driver, ready_css)


def sign_in(driver: WebDriver, gateway: LocalGateway, key: str) -> None:
    driver.get(gateway.url + "/console")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    field = element(driver, "#api-key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "nav").is_displayed(), "signed in")


def check_accessibility(driver: WebDriver, page: str) -> None:
    """axe-core on the page as shown: no serious or critical violation."""
    driver.execute_script(AXE_SCRIPT.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(done, (e) => done({error: String(e)}));"
    )
    assert "error" not in result, result
    serious = [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"]][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{page}: {serious}"


def screenshot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def progress_of(driver: WebDriver, batch_id: str) -> int:
    """The row's bar, read in one script (the table is re-rendered by each refresh)."""
    percent = driver.execute_script(
        'const bar = document.querySelector(`tr[data-batch-id="${arguments[0]}"] progress`);'
        "return bar ? bar.dataset.percent : null;",
        batch_id,
    )
    return -1 if percent is None else int(percent)


# The tests --------------------------------------------------------------------------------


def test_the_page_is_static_with_a_strict_policy(local_gateway: LocalGateway) -> None:
    page = httpx.get(local_gateway.url + "/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # scripts come from files only (tests/unit/test_console_files.py)
    script = httpx.get(local_gateway.url + "/console/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for missing in ("/console/index.html", "/console/nothing.js", "/console/..%2Fhandlers%2Fconsole.py"):
        answer = httpx.get(local_gateway.url + missing)
        assert answer.status_code == 404, missing
        assert answer.json()["error"]["code"] == "unknown_url"


def test_console_with_a_trailing_slash_redirects_to_the_page(local_gateway: LocalGateway) -> None:
    """API Gateway has no resource with an empty last part: the stack answers /console/ with 404
    (no route path ends with "/", checked here); the local server sends the browser to /console."""
    assert not [path for route in ROUTES for path in route.paths if path.endswith("/")]
    moved = httpx.get(local_gateway.url + "/console/?from=bookmark")
    assert moved.status_code == 301 and moved.headers["location"] == "/console?from=bookmark"
    page = httpx.get(local_gateway.url + "/console/", follow_redirects=True)
    assert page.status_code == 200 and page.url.path == "/console"
    assert page.text == httpx.get(local_gateway.url + "/console").text
    assert httpx.post(local_gateway.url + "/console/").status_code == 404  # a page only: no other method


def test_sign_in_refuses_a_wrong_key_then_takes_the_master_key(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    browser.get(local_gateway.url + "/console")
    field = element(browser, "#api-key")
    check_accessibility(browser, "sign-in")
    screenshot(browser, "sign-in")
    field.send_keys("sk-not-a-key")
    browser.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    refused = element(browser, "form.signin .error")
    assert "refused" in refused.text
    assert browser.execute_script("return sessionStorage.length") == 0
    # by keyboard alone: the key and Enter, then to a section and Enter
    field = element(browser, "#api-key")
    field.send_keys(local_gateway.master_key + Keys.ENTER)
    wait_for(browser, lambda d: d.find_element(By.ID, "nav").is_displayed(), "signed in")
    assert browser.find_element(By.ID, "nav-keys").is_displayed()
    kept = browser.execute_script("return sessionStorage.getItem('gateway-console-key')")
    assert kept == local_gateway.master_key
    # the page takes the focus after the sign-in: the sections are back before it (Shift+Tab)
    for _ in range(12):
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        if browser.switch_to.active_element.text == "Files":
            break
    assert browser.switch_to.active_element.text == "Files"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    element(browser, "#upload-file")
    assert browser.execute_script("return location.hash") == "#/files"


def test_an_upload_with_a_bad_line_shows_its_line_number_and_a_good_one_makes_a_batch(
    browser: WebDriver, local_gateway: LocalGateway, tmp_path: Path
) -> None:
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/files", "#upload-file")
    # not JSON on line 2: the upload itself is refused, naming the line
    unparseable = tmp_path / "unparseable.jsonl"
    first, second = chat_lines(2, model="gpt-4o-mini").splitlines(keepends=True)
    unparseable.write_bytes(first + b'{"custom_id": "x", oops\n' + second)
    browser.find_element(By.ID, "upload-file").send_keys(str(unparseable))
    refusal = element(browser, "#check-result .error")
    assert "line 2" in refusal.text and "invalid_json_line" in refusal.text
    # JSON, but line 2 repeats line 1's custom_id: uploaded, and the check names the line
    duplicate = tmp_path / "duplicate.jsonl"
    duplicate.write_bytes(first + first)
    browser.find_element(By.ID, "upload-file").send_keys(str(duplicate))
    verdict = element(browser, "#check-verdict")
    assert "fail" in verdict.text
    problems = browser.find_elements(By.CSS_SELECTOR, "#check-errors li")
    assert [item.get_attribute("data-line") for item in problems] == ["2"]
    assert problems[0].text.startswith("Line 2:") and "duplicate_custom_id" in problems[0].text
    assert not browser.find_element(By.ID, "create-batch").is_enabled()
    check_accessibility(browser, "files, a refused file")

    # a good file dropped on the zone: the check's estimate, then the batch from it
    browser.execute_script(
        "const file = new File([arguments[0]], 'good.jsonl', {type: 'application/jsonl'});"
        "const data = new DataTransfer(); data.items.add(file);"
        "const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true});"
        "document.getElementById('drop-zone').dispatchEvent(drop);",
        chat_lines(2, model="gpt-4o-mini").decode(),
    )
    wait_for(
        browser, lambda d: "would accept" in d.find_element(By.ID, "check-verdict").text, "a valid check"
    )
    facts = browser.find_element(By.CSS_SELECTOR, "#check-result dl").text
    assert "Requests\n2" in facts and "Estimated cost" in facts and "gpt-4o-mini" in facts
    screenshot(browser, "files")
    browser.find_element(By.ID, "create-batch").click()
    wait_for(
        browser,
        lambda d: d.execute_script("return location.hash").startswith("#/batch/batch_"),
        "the batch page",
    )
    batch_id = browser.execute_script("return decodeURIComponent(location.hash.split('/')[2])")
    assert element(browser, "h1.id").text == batch_id
    assert client(local_gateway).batches.retrieve(batch_id).input_file_id.startswith("file-")


def test_a_filename_holding_a_script_shows_as_text(browser: WebDriver, local_gateway: LocalGateway) -> None:
    sdk = client(local_gateway)
    uploaded = sdk.files.create(
        file=(SCRIPT_NAME, io.BytesIO(chat_lines(1, model="gpt-4o-mini")), "application/jsonl"),
        purpose="batch",
    )
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/spend", "#spend-charts")  # leave and come back: a fresh list
    open_page(browser, local_gateway, "#/files", f'tr[data-file-id="{uploaded.id}"]')
    cell = browser.find_element(By.CSS_SELECTOR, f'tr[data-file-id="{uploaded.id}"] td.filename')
    assert cell.text == SCRIPT_NAME
    assert cell.find_elements(By.TAG_NAME, "script") == []
    assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (reading it is what raises)


def test_a_file_is_downloaded_and_deleted_from_the_list(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    sdk = client(local_gateway)
    content = chat_lines(2, model="gpt-4o-mini")
    uploaded = sdk.files.create(
        file=("listed.jsonl", io.BytesIO(content), "application/jsonl"), purpose="batch"
    )
    sign_in(browser, local_gateway, local_gateway.master_key)
    row_css = f'tr[data-file-id="{uploaded.id}"]'
    open_page(browser, local_gateway, "#/files", row_css)
    browser.find_element(By.CSS_SELECTOR, f"{row_css} button[aria-label='Download listed.jsonl']").click()
    saved = browser.downloads / "listed.jsonl"  # type: ignore[attr-defined]
    wait_for(
        browser, lambda _: saved.exists() and saved.stat().st_size == len(content), "the downloaded file"
    )
    assert saved.read_bytes() == content
    browser.find_element(By.CSS_SELECTOR, f"{row_css} button[aria-label='Delete listed.jsonl']").click()
    wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, row_css), "the row gone")
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)


def test_progress_reaches_100_percent_then_the_output_downloads(
    browser: WebDriver, local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    clock, phase = stepped
    sdk = client(local_gateway, provider="anthropic")
    uploaded = sdk.files.create(
        file=("in.jsonl", io.BytesIO(chat_lines(20)), "application/jsonl"), purpose="batch"
    )
    created = sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"team": "<b>console</b>"},
    )
    sign_in(browser, local_gateway, local_gateway.master_key)
    assert (created.model_extra or {}).get("provider") == "anthropic"  # the gateway's extension field
    open_page(browser, local_gateway, "#/batches", f'tr[data-batch-id="{created.id}"]')
    assert progress_of(browser, created.id) == 0
    shown_provider = f'tr[data-batch-id="{created.id}"] td.batch-provider'
    shown = browser.execute_script(f"return document.querySelector('{shown_provider}').innerText")
    assert shown == "anthropic"
    clock.step(phase * 1.52)  # half way through the second phase: 10 of the 20 requests done
    wait_for(browser, lambda d: 0 < progress_of(d, created.id) < 100, "the bar part way")
    eta = f'tr[data-batch-id="{created.id}"] td.eta'
    assert re.fullmatch(
        r"\d+(\.\d)? (s|min|h)", browser.execute_script(f"return document.querySelector('{eta}').innerText")
    )
    check_accessibility(browser, "batches")
    screenshot(browser, "batches")
    clock.step(2 * phase)
    wait_for(browser, lambda d: progress_of(d, created.id) == 100, "the bar at 100 %")
    row = browser.execute_script(
        'const row = document.querySelector(`tr[data-batch-id="${arguments[0]}"]`);'
        "return [row.dataset.status, row.innerText];",
        created.id,
    )
    assert row[0] == "completed" and "100 % (20 / 20)" in row[1]
    assert browser.execute_script(f"return document.querySelector('{eta}').innerText") == "—"

    open_page(browser, local_gateway, f"#/batch/{created.id}", "#download-output")
    wait_for(browser, lambda d: "$" in d.find_element(By.ID, "batch-page").text, "the cost, once settled")
    provider_fact = browser.find_element(
        By.XPATH, "//*[@id='batch-page']//dt[.='Provider']/following-sibling::dd[1]"
    )
    assert provider_fact.text == "anthropic"
    metadata = browser.find_element(By.ID, "batch-metadata")
    assert "<b>console</b>" in metadata.text and metadata.find_elements(By.TAG_NAME, "b") == []
    check_accessibility(browser, "batch")
    screenshot(browser, "batch")
    browser.find_element(By.ID, "download-output").click()
    saved = browser.downloads / f"{created.id}_output.jsonl"  # type: ignore[attr-defined]
    wait_for(browser, lambda _: saved.exists() and saved.stat().st_size > 0, "the downloaded output")
    done = sdk.batches.retrieve(created.id)
    assert done.output_file_id is not None
    assert saved.read_bytes() == sdk.files.content(done.output_file_id).content


def test_cancel_a_second_batch(
    browser: WebDriver, local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    clock, phase = stepped
    sdk = client(local_gateway, provider="anthropic")
    created = small_batch(sdk, 4)
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, f"#/batch/{created.id}", "#cancel-batch")
    browser.find_element(By.ID, "cancel-batch").click()
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "batch-status").text in ("cancelling", "cancelled"),
        "cancelling",
    )
    clock.step(2 * phase)
    wait_for(browser, lambda d: d.find_element(By.ID, "batch-status").text == "cancelled", "cancelled")
    assert browser.find_elements(By.ID, "cancel-batch") == []
    assert sdk.batches.retrieve(created.id).status == "cancelled"


def test_the_spend_chart_shows_the_settled_batch(
    browser: WebDriver, local_gateway: LocalGateway, stepped: tuple[SteppedClock, float]
) -> None:
    clock, phase = stepped
    sdk = client(local_gateway, provider="anthropic")
    created = small_batch(sdk, 2)
    clock.step(4 * phase)  # past every phase of the simulator's batch
    settled = sdk.batches.retrieve(created.id)  # a retrieve that sees it end settles it
    assert settled.status == "completed" and (settled.model_extra or {}).get("cost"), settled
    report = httpx.get(
        local_gateway.url + "/spend/report",
        params={"group_by": "model"},
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
    ).json()
    assert MODEL in {row["group"] for row in report["data"]}, report  # the batch settled just now
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/spend", f'#chart-by-model g[data-group="{MODEL}"]')
    bar = browser.find_element(By.CSS_SELECTOR, f'#chart-by-model g[data-group="{MODEL}"] rect')
    assert float(bar.get_attribute("width") or 0) > 1
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-by-day g[data-group]")
    assert browser.find_element(By.ID, "spend-total").text.startswith("$")
    check_accessibility(browser, "spend")
    screenshot(browser, "spend")


def test_a_webhook_delivery_is_shown_retried_and_its_secret_rotated(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    sign_in(browser, local_gateway, local_gateway.master_key)
    with webhook_receiver() as receiver:
        open_page(browser, local_gateway, "#/webhooks", "#webhook-url")
        browser.find_element(By.ID, "webhook-url").send_keys(receiver.url)
        browser.find_element(By.ID, "webhook-name").send_keys("console-hook")
        browser.find_element(By.ID, "event-batch.completed").click()
        browser.find_element(
            By.CSS_SELECTOR, "form[aria-label='Add a webhook endpoint'] button[type=submit]"
        ).click()
        assert element(browser, "#webhook-secret code").text.startswith("whsec_")
        section = wait_for(
            browser, lambda d: d.find_element(By.XPATH, "//section[h2='console-hook']"), "the new endpoint"
        )
        endpoint_id = section.get_attribute("data-endpoint-id")
        section.find_element(By.CSS_SELECTOR, "button.send-test").click()
        row_css = f'section[data-endpoint-id="{endpoint_id}"] tr[data-delivery-id]'
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row_css), "a delivery row")
        row = browser.find_element(By.CSS_SELECTOR, row_css)
        assert row.find_element(By.CSS_SELECTOR, ".delivery-status").text == "200"
        assert " ms" in row.text and "delivered" in row.text
        check_accessibility(browser, "webhooks")
        screenshot(browser, "webhooks")
        row.find_element(By.CSS_SELECTOR, "button.retry").click()
        wait_for(
            browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, row_css)) >= 2, "the retried delivery"
        )
        assert len(receiver.deliveries) >= 2
        first_secret = browser.find_element(By.CSS_SELECTOR, "#webhook-secret code").text
        browser.find_element(
            By.CSS_SELECTOR, f'section[data-endpoint-id="{endpoint_id}"] button.rotate'
        ).click()
        wait_for(
            browser,
            lambda d: d.find_element(By.CSS_SELECTOR, "#webhook-secret code").text != first_secret,
            "rotated",
        )


# The page's requests for key/list held until released: a page shown but not yet loaded.
HOLD_KEY_LISTS = """
window.heldLists = [];
window.sendUnheld = window.fetch;
window.fetch = (url, options) => String(url).includes("key/list")
  ? new Promise((resolve) => window.heldLists.push(() => resolve(window.sendUnheld(url, options))))
  : window.sendUnheld(url, options);
"""


def test_a_field_typed_in_before_its_page_has_loaded_keeps_the_focus(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    """A page takes the focus once it has loaded, unless the user has gone into it meanwhile:
    the keys page's list arriving must not take the alias field's keystrokes."""
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/batches", "#batches-table")
    browser.execute_script(HOLD_KEY_LISTS)
    try:
        browser.execute_script("window.location.hash = '#/keys'")
        alias = element(browser, "#key-alias")
        alias.send_keys("typed-early")
        assert browser.execute_script("return window.heldLists.length") == 1  # the list not loaded yet
        browser.execute_script(
            "window.fetch = window.sendUnheld; window.heldLists.forEach((release) => release())"
        )
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#keys-table > *"), "the keys listed")
        assert browser.switch_to.active_element.get_attribute("id") == "key-alias"
        browser.switch_to.active_element.send_keys("-and-after")
        assert alias.get_attribute("value") == "typed-early-and-after"
    finally:
        browser.execute_script("window.fetch = window.sendUnheld")


def test_a_virtual_key_sees_only_its_own_batches(browser: WebDriver, local_gateway: LocalGateway) -> None:
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/keys", "#key-alias")
    browser.find_element(By.ID, "key-alias").send_keys("console-team")
    browser.find_element(By.ID, "key-budget").send_keys("5")
    browser.find_element(By.ID, "key-providers").send_keys("openai")
    browser.find_element(By.CSS_SELECTOR, "form[aria-label='Create a key'] button[type=submit]").click()
    key = element(browser, "#new-key").text
    assert key.startswith("sk-")
    wait_for(
        browser, lambda d: "console-team" in d.find_element(By.ID, "keys-table").text, "the new key listed"
    )
    check_accessibility(browser, "keys")
    screenshot(browser, "keys")
    open_page(browser, local_gateway, "#/spend", "#budget-key option:nth-child(2)")
    choice = Select(browser.find_element(By.ID, "budget-key"))
    choice.select_by_visible_text(next(o.text for o in choice.options if o.text.startswith("console-team")))
    wait_for(browser, lambda d: "$5.00" in d.find_element(By.ID, "budget-detail").text, "the key's budget")
    assert "Held for running batches\n$0.00" in browser.find_element(By.ID, "budget-detail").text

    own = client(local_gateway, key=key)
    uploaded = own.files.create(
        file=("own.jsonl", io.BytesIO(chat_lines(1, model="gpt-4o-mini")), "application/jsonl"),
        purpose="batch",
    )
    mine = own.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    master = client(local_gateway)
    theirs = master.files.create(
        file=("theirs.jsonl", io.BytesIO(chat_lines(1, model="gpt-4o-mini")), "application/jsonl"),
        purpose="batch",
    )
    master.batches.create(input_file_id=theirs.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert mine.id in [batch.id for batch in master.batches.list(limit=20).data]  # the master sees both
    sign_in(browser, local_gateway, key)
    assert not browser.find_element(By.ID, "nav-keys").is_displayed()
    open_page(browser, local_gateway, "#/batches", f'tr[data-batch-id="{mine.id}"]')
    shown = [
        row.get_attribute("data-batch-id")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-batch-id]")
    ]
    assert shown == [mine.id]
    open_page(browser, local_gateway, "#/spend", "#spend-charts .error")
    assert "master key" in browser.find_element(By.CSS_SELECTOR, "#spend-charts .error").text

    # revoked: the console signs it in no more
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/keys", 'button[aria-label="Revoke console-team"]')
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Revoke console-team"]').click()
    wait_for(browser, lambda d: "console-team" not in d.find_element(By.ID, "keys-table").text, "revoked")
    with pytest.raises(openai.AuthenticationError):
        own.batches.list()
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    element(browser, "#api-key").send_keys(key + Keys.ENTER)
    assert "refused" in element(browser, "form.signin .error").text


def test_no_key_in_any_url_the_page_requested(browser: WebDriver, local_gateway: LocalGateway) -> None:
    """Of every request the browser sent in this module: no URL holds a key; the API calls carry
    it as Authorization."""
    requests = requests_seen(browser)
    urls = [request["url"] for request in requests]
    assert len(urls) > 50
    assert not [url for url in urls if local_gateway.master_key in url]
    assert not [url for url in urls if "sk-" in url]
    api_calls = [r for r in requests if r["url"].startswith(local_gateway.url) and "/console" not in r["url"]]
    assert api_calls
    assert [
        r["url"] for r in api_calls if not r["headers"].get("Authorization", "").startswith("Bearer ")
    ] == []
    assert not [error for error in browser_errors(browser) if "Content Security Policy" in error]


def test_the_batches_table_pages_with_the_cursor_and_filters_by_status(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    generated = httpx.post(
        local_gateway.url + "/key/generate",
        json={"key_alias": "console-pages"},
        headers={"Authorization": f"Bearer {local_gateway.master_key}"},
    )
    key = generated.json()["key"]
    own = client(local_gateway, key=key)
    uploaded = own.files.create(
        file=("pages.jsonl", io.BytesIO(chat_lines(1, model="gpt-4o-mini")), "application/jsonl"),
        purpose="batch",
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda _: own.batches.create(
                    input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
                ),
                range(21),
            )
        )
    first_page = own.batches.list(limit=20)
    newest, oldest = [batch.id for batch in first_page.data], own.batches.list(after=first_page.last_id).data
    assert len(newest) == 20 and len(oldest) == 1
    sign_in(browser, local_gateway, key)
    open_page(browser, local_gateway, "#/batches", f'tr[data-batch-id="{newest[0]}"]')
    rows_css = "#batches-table tr[data-batch-id]"

    def shown(driver: WebDriver) -> list[str]:
        return list(
            driver.execute_script(
                f"return [...document.querySelectorAll('{rows_css}')].map(r => r.dataset.batchId)"
            )
        )

    assert shown(browser) == newest  # the API's order: newest first, one page
    browser.find_element(By.XPATH, "//button[text()='Older']").click()
    wait_for(browser, lambda d: shown(d) == [oldest[0].id], "the second page")
    assert not browser.find_element(By.XPATH, "//button[text()='Older']").is_enabled()
    browser.find_element(By.XPATH, "//button[text()='Newer']").click()
    wait_for(browser, lambda d: len(shown(d)) == 20, "the first page again")

    status = own.batches.retrieve(newest[0]).status
    Select(browser.find_element(By.ID, "filter-status")).select_by_value(status)
    wait_for(
        browser,
        lambda d: d.execute_script(
            f"const rows = [...document.querySelectorAll('{rows_css}')];"
            "return rows.length > 0 && rows.every(r => r.dataset.status === arguments[0]);",
            status,
        ),
        f"only {status} batches",
    )


def test_a_batch_run_in_parts_shows_its_parts_and_partial_output(
    browser: WebDriver, local_gateway: LocalGateway
) -> None:
    """`parts` and `partial_output_file_id` land with "Batches of any size": until then the page
    is handed such an answer (a real batch plus the plan's two fields, the partial output a real
    file) in place of the API's, for this one batch; the download goes to the real API."""
    sdk = client(local_gateway)
    uploaded = sdk.files.create(
        file=("partial.jsonl", io.BytesIO(chat_lines(2, model="gpt-4o-mini")), "application/jsonl"),
        purpose="batch",
    )
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    counts = {"total": 2, "completed": 1, "failed": 0}
    answer = {
        **batch.to_dict(),
        "status": "in_progress",
        "request_counts": {"total": 4, "completed": 1, "failed": 0},
        "partial_output_file_id": uploaded.id,
        "parts": [
            {
                "id": "part-0",
                "index": 0,
                "status": "running",
                "provider_batch_id": "batch_up0",
                "upstream_status": "in_progress",
                "request_counts": counts,
            },
            {
                "id": "part-1",
                "index": 1,
                "status": "waiting",
                "provider_batch_id": None,
                "upstream_status": None,
                "request_counts": {"total": 2, "completed": 0, "failed": 0},
                "next_attempt_at": batch.created_at + 600,
            },
        ],
    }
    sign_in(browser, local_gateway, local_gateway.master_key)
    open_page(browser, local_gateway, "#/batches", "#batches-table")
    browser.execute_script(
        "const [batchId, answer] = arguments; const real = window.fetch;"
        "const headers = {'Content-Type': 'application/json'};"
        "window.fetch = (url, init) => new URL(url).pathname.endsWith(`/batches/${batchId}`)"
        "  ? Promise.resolve(new Response(JSON.stringify(answer), {headers})) : real(url, init);",
        batch.id,
        answer,
    )
    try:
        open_page(browser, local_gateway, f"#/batch/{batch.id}", "#batch-parts")
        rows = browser.find_elements(By.CSS_SELECTOR, "#batch-parts tbody tr")
        assert [row.get_attribute("data-part") for row in rows] == ["0", "1"]
        assert (
            "running" in rows[0].text
            and "batch_up0 (in_progress)" in rows[0].text
            and "50 % (1 / 2)" in rows[0].text
        )
        assert "waiting" in rows[1].text and "UTC" in rows[1].text
        check_accessibility(browser, "a batch in parts")
        browser.find_element(By.ID, "download-partial").click()
        saved = browser.downloads / f"{batch.id}_partial_output.jsonl"  # type: ignore[attr-defined]
        wait_for(browser, lambda _: saved.exists() and saved.stat().st_size > 0, "the partial output")
        assert saved.read_bytes() == sdk.files.content(uploaded.id).content
    finally:
        browser.refresh()  # the page's own fetch again
