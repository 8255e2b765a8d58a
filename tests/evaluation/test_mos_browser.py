"""The listening page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) via selenium.

A listener opens ``index.html`` from disk, enters their number, watches every video to its end, answers
the attention check as captioned, rates, survives a reload, downloads the ratings, and the download
scores to the ratings clicked. Skipped only where Chromium, its driver or selenium is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from cause_pl.evaluation.mos.score import read_manifest, score
from tests.cli.test_mos import LIKES, build_small_kit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and its driver: apt-get install chromium chromium-driver",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
WAIT = 20.0


def until(condition, what: str, timeout: float = WAIT):
    """Poll ``condition()`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"):  # fmt: skip
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # Chromium leaves its profile lock's socket folder in TMPDIR when the driver stops it; a short private
    # TMPDIR (a socket path must stay under 108 bytes) keeps it out of /tmp.
    with tempfile.TemporaryDirectory(prefix="chromium-") as scratch:
        service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": scratch})
        driver = webdriver.Chrome(service=service, options=options)
        driver.downloads = downloads
        yield driver
        driver.quit()


def start(driver, listener: str) -> None:
    driver.find_element("id", "listener").clear()
    driver.find_element("id", "listener").send_keys(listener)
    driver.find_element("id", "begin").click()


def rate_current(driver, design, listener: int, clicked: dict[str, int]) -> None:
    """Wait for the video to end (the scale unlocks), rate it as the listener likes, press Next."""
    scale = driver.find_element("id", "scale")
    assert driver.find_element("id", "next").get_attribute("disabled") is not None
    until(lambda: scale.get_attribute("disabled") is None, "the video to play to its end")
    video = driver.execute_script("return document.getElementById('video').getAttribute('src')")
    key = Path(video).stem
    caption = driver.find_element("id", "caption")
    if caption.is_displayed():  # an attention check: do what it says
        rating = int(re.search(r"please rate this video (\d)", caption.text).group(1))
        key = next(c.id for c in design.checks.values() if c.listener == listener and c.id not in clicked)
    else:
        item = design.items[key]
        rating = LIKES[item.system][item.utterance]
    driver.find_element("css selector", f"label:has(#rating-{rating})").click()
    clicked[key] = rating
    driver.find_element("id", "next").click()


def test_a_listener_rates_every_video_and_downloads_ratings_that_score(capsys, quick_demo, tmp_path, browser):
    kit = build_small_kit(capsys, quick_demo, tmp_path)
    design = read_manifest(kit / "manifest.json")
    playlist = design.playlists[2]
    browser.get((kit / "index.html").as_uri() + "?listener=2")
    assert browser.find_element("id", "listener").get_attribute("value") == "2"
    start(browser, "2")
    clicked: dict[str, int] = {}
    rate_current(browser, design, 2, clicked)
    browser.refresh()  # a reload resumes at the next video, the first rating kept
    start(browser, "2")
    until(lambda: browser.find_element("id", "progress-text").text == f"Video 2 of {len(playlist)}", "resume")
    for _ in playlist[1:]:
        rate_current(browser, design, 2, clicked)
    until(lambda: browser.find_element("id", "done").is_displayed(), "the end screen")
    browser.find_element("id", "download-json").click()
    browser.find_element("id", "download-csv").click()
    json_file = browser.downloads / "mos-ratings-listener-2.json"
    until(lambda: json_file.exists() and (browser.downloads / "mos-ratings-listener-2.csv").exists(), "downloads")

    data = json.loads(json_file.read_text())
    assert data["listener"] == 2 and data["kit"] in (kit / "index.html").read_text()
    assert [r["item"] for r in data["ratings"]] == playlist
    assert {r["item"]: r["rating"] for r in data["ratings"]} == {key: clicked[key] for key in playlist}
    assert data["attention"] == {"checks": 1, "passed": 1}
    assert all(r["shown_at"] and r["ended_at"] and r["rated_at"] and r["plays"] >= 1 for r in data["ratings"])
    assert data["started_at"] <= data["finished_at"]
    result = score(design, [json_file])
    assert result.dropped == [] and result.listeners == [2]
    assert {s.system: s.mos for s in result.systems} == {"cnn": 4.5, "truth": 2.5}
    assert score(design, [browser.downloads / "mos-ratings-listener-2.csv"]) == result


def test_an_unknown_listener_number_is_refused_on_the_page(capsys, quick_demo, tmp_path, browser):
    kit = build_small_kit(capsys, quick_demo, tmp_path)
    browser.get((kit / "index.html").as_uri())
    start(browser, "9")
    assert "Unknown listener number" in browser.find_element("id", "start-error").text
    assert not browser.find_element("id", "trial").is_displayed()
