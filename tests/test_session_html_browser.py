"""The session page in a real headless Chromium: it renders its structure, a thinking block opens
on a click, it makes no network request, and nothing from the session runs as script. Chromium
and its driver are required (Debian: `apt-get install chromium chromium-driver`, which these
tests run themselves where they may); a machine without them fails here, never skips. A
screenshot is left in build/test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from qwen_agent_cli.scripted import ScriptedServer
from tests.session_pages import COMMAND, MARKUP, SHOWN, make_session

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
WAIT = 60.0
"""Seconds an element may take to appear or change: generous, since the machine may be busy;
a passing run never waits that long."""


def found() -> tuple[str | None, str | None]:
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which(
        "chromedriver"
    )


def install_chromium() -> None:
    """Debian's packages, as `.ci/run` installs them: the README's test command then works on a
    fresh machine too (as root, or with a password-less sudo)."""
    if not shutil.which("apt-get"):
        return
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        done = subprocess.run([*as_root, *command], env=environment, capture_output=True)
        if done.returncode:
            return


def chromium_paths() -> tuple[str, str]:
    browser, driver = found()
    if not (browser and driver):
        install_chromium()
        browser, driver = found()
    if not (browser and driver):
        pytest.fail(
            "these tests need Chromium and its WebDriver, and installing them failed: "
            "apt-get install chromium chromium-driver"
        )
    return browser, driver


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root, where Chromium's own sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1100,1600",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def requested_urls(chrome: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for, from Chromium's own network log."""
    urls = []
    for entry in browser_log(chrome, "performance"):
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.requestWillBeSent":
            urls.append(str(event["params"]["request"]["url"]))
    return urls


def browser_log(chrome: webdriver.Chrome, kind: str) -> list[dict[str, Any]]:
    """Chromium's log of `kind` since the last read (selenium leaves get_log untyped)."""
    entries: list[dict[str, Any]] = chrome.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def only(chrome: webdriver.Chrome, selector: str) -> WebElement:
    found = chrome.find_elements(By.CSS_SELECTOR, selector)
    assert len(found) == 1, (selector, len(found))
    return found[0]


def test_the_page_in_chromium_folds_opens_and_stays_inert(
    qac, model_server: ScriptedServer, repo: Path, tmp_path: Path, browser: webdriver.Chrome
):
    result = make_session(qac, model_server, repo, tmp_path)
    target = tmp_path / "session.html"
    out = qac("sessions", "show", str(result["session_id"]), "--html", str(target))
    assert out.code == 0, out.stderr

    browser.get(target.as_uri())
    wait = WebDriverWait(browser, WAIT)
    wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "footer")))

    assert only(browser, "dd.session").text == result["session_id"]
    assert only(browser, "dd.status").text == "done"
    assert only(browser, "dd.cost").text == f"${result['cost_usd']:.4f}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.turn.user")) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.turn.assistant")) == 3
    usage = browser.find_elements(By.CSS_SELECTOR, "p.usage")
    assert len(usage) == 3
    assert all(u.text.startswith("prompt ") and " · $0.0" in u.text for u in usage)

    thinking = browser.find_elements(By.CSS_SELECTOR, "details.thinking")
    assert len(thinking) == 3
    assert [t.get_attribute("open") for t in thinking] == [None, None, None]
    first = thinking[0].find_element(By.TAG_NAME, "pre")
    assert not first.is_displayed()
    thinking[0].find_element(By.TAG_NAME, "summary").click()
    wait.until(expected_conditions.visibility_of(first))
    assert first.text == "average floors the result " + SHOWN + "\nuse true division"

    shell = browser.find_elements(By.CSS_SELECTOR, "div.call")[1]
    assert shell.find_element(By.CSS_SELECTOR, "span.tool").text == "shell"
    assert shell.find_element(By.CSS_SELECTOR, "dl.arguments pre").text == COMMAND
    output = shell.find_element(By.CSS_SELECTOR, "details.output")
    assert output.get_attribute("open") is None
    assert output.find_element(By.TAG_NAME, "summary").text == "output: exit code 0 (3 lines)"
    output.find_element(By.TAG_NAME, "summary").click()
    shown = output.find_element(By.TAG_NAME, "pre")
    wait.until(expected_conditions.visibility_of(shown))
    assert shown.text == f"exit code 0\nfirst\nsecond {MARKUP}"

    added, removed = only(browser, "pre.diff .add"), only(browser, "pre.diff .del")
    assert (added.text, removed.text) == ("+sum(values) / len", "-sum(values) // len")
    colours = {e.value_of_css_property("background-color") for e in (added, removed)}
    assert len(colours) == 2
    assert "rgba(0, 0, 0, 0)" not in colours

    picture = only(browser, "img.image")
    assert browser.execute_script("return arguments[0].naturalWidth", picture) == 3

    hostile: Any = browser.execute_script(
        "return [window.pwned, document.scripts.length, "
        "document.querySelectorAll('[onerror], img:not(.image)').length]"
    )
    assert hostile == [None, 0, 0]
    assert [u for u in requested_urls(browser) if not u.startswith("data:")] == [target.as_uri()]
    refused = [
        e for e in browser_log(browser, "browser") if "Content Security Policy" in e["message"]
    ]
    assert refused == []  # nothing even tried to load or run

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "session-html.png"))
