"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium, against a worker and the learner
fed by the simulator on the real broker. The charts are drawn with data, the numbers filled in, the user lookup
answers, nothing in the page throws, and a screenshot is written under the test's directory."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from streams.kafka.broker import free_port
from streams.settings import Settings
from streams.tools.eventfile import write_events
from streams.tools.produce import produce_file
from streams.tools.simulate import simulate
from tests.fixtures import WorkerProcess

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1440,1000")
BAD_RECORDS = [b"{not json", b'{"event_id": "x1", "user_id": "u-x", "ts": 1, "type": "request"}']  # no candidates
STREAM_RATE = 200.0
"""Events per second sent: well under what one worker scores on a 2-core machine while the learner runs."""


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    # Not a skip: a missing browser would hide the dashboard's test; `make test` installs it (`make browser`).
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make browser` (Debian's chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver's path below, Selenium Manager never downloads
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="streamscore-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for_data(base: str, processes: list[WorkerProcess], ready: Callable[[dict[str, Any]], bool],
                  timeout: float = 240.0) -> dict[str, Any]:
    """Poll ``/dashboard/data.json`` until ``ready`` holds; fail early, with the logs, if a process died."""
    deadline = time.monotonic() + timeout
    data: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for process in processes:
            assert process.alive, f"{process.log_path.name} died:\n{process.log_tail()}"
        try:
            data = fetch_json(f"{base}/dashboard/data.json")
        except (OSError, ValueError):
            data = {}
        if data and ready(data):
            return data
        time.sleep(0.5)
    summary = {k: data.get(k) for k in ("counters", "models")} | {"learner": bool(data.get("learner"))}
    raise AssertionError(f"data.json never got ready: {summary}\n{processes[0].log_tail()}")


def enough_to_draw(expected_events: int) -> Callable[[dict[str, Any]], bool]:
    def ready(data: dict[str, Any]) -> bool:
        learner = data.get("learner") or {}
        return (data["counters"].get("events_in") == expected_events
                and len(learner.get("history", [])) >= 3
                and bool(data["latest_scores"]) and bool(data["features"]) and len(data["throughput"]) >= 3)
    return ready


def body_attr(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(name) or ""


def count(driver: WebDriver, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def points(driver: WebDriver, chart: str, series: str) -> int:
    line = driver.find_element(By.CSS_SELECTOR, f'svg[data-chart="{chart}"] polyline[data-series="{series}"]')
    assert (line.get_attribute("points") or "").strip(), f"{chart}/{series} drawn with no points"
    return int(line.get_attribute("data-points") or 0)


def field(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text.strip()


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page: the window made as tall as the page, scrolled to the top."""
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(1440, int(height) + int(frame) + 4)
    renders = int(body_attr(driver, "data-renders"))  # redrawn at the new size before the picture
    WebDriverWait(driver, 30).until(lambda d: int(body_attr(d, "data-renders")) > renders)
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path)), "no screenshot written"


async def test_dashboard_in_headless_chromium(settings_factory: Callable[..., Settings],
                                              worker_factory: Callable[..., WorkerProcess],
                                              browser: WebDriver, tmp_path: Path) -> None:
    settings = settings_factory(arms="A:prod:0.5,B:baseline:0.5", snapshot_every=150, snapshot_seconds=1.0,
                                learner_web_port=free_port(), click_window=300.0, tripwire_min_count=50)
    worker = worker_factory(settings)
    learner = worker_factory(settings, name="learner", command="learner")
    base = f"http://{settings.web_host}:{settings.web_port}"
    events, _ = simulate(users=60, events=3000, seed=11)
    stream = tmp_path / "events.jsonl"
    write_events(stream, [*events, *BAD_RECORDS])
    # Once the worker owns its partitions, a steady stream (as `streamscore produce --rate` sends it): the latency
    # drawn is then the scoring's, not the queue of a start-up or of a burst of thousands of events at once.
    await asyncio.to_thread(wait_for_data, base, [worker, learner], lambda d: bool(d["worker"]["partitions"]))
    await produce_file(settings.bootstrap, stream, settings.topic("events"), rate=STREAM_RATE)
    data = await asyncio.to_thread(wait_for_data, base, [worker, learner], enough_to_draw(len(events) + 2))

    # The static routes as a browser sees them, traversal refused.
    with urllib.request.urlopen(f"{base}/dashboard/static/dashboard.css", timeout=10) as response:
        assert response.headers["Content-Type"] == "text/css; charset=utf-8"
    for bad in ("..%2F__init__.py", "%2e%2e%2f..%2fapp.py", "nope.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/dashboard/static/{bad}", timeout=10)
        assert refused.value.code == 404, bad

    driver = browser
    driver.get(f"{base}/dashboard")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: body_attr(d, "data-learner") == "reported")
    assert body_attr(driver, "data-state") == "live"

    # Model quality over time, from the learner's reports the worker follows.
    for chart in ("logloss", "auc"):
        for model in ("prod", "baseline"):
            assert points(driver, chart, model) >= 3, (chart, model)
    assert field(driver, "tripwire") in ("OK", "ALERT")
    assert driver.find_element(By.ID, "tripwire-reason").text.strip()
    # Throughput, latency, lag, dead letters, feature distributions.
    assert points(driver, "throughput", "events") >= 2
    assert count(driver, 'svg[data-chart="latency-histogram"] rect') > 0
    assert count(driver, 'svg[data-chart="lag"] rect') == len(data["lag"]) == settings.partitions
    assert count(driver, 'table[data-table="stages"] tr[data-stage]') >= 5
    for name in data["features"]:
        assert count(driver, f'svg[data-chart="feature:{name}"] rect') > 0, name
    assert count(driver, 'table[data-table="dead-letters"] tbody tr') == len(BAD_RECORDS)
    assert field(driver, "dead_total") == str(len(BAD_RECORDS))
    dead_list = driver.find_element(By.CSS_SELECTOR, 'table[data-table="dead-letters"]').text
    assert "(no reason recorded)" not in dead_list and "not valid JSON" in dead_list, dead_list
    assert field(driver, "events_total") == f"{len(events) + 2:,} in total"
    for name in ("events_rate", "scored_rate", "latency_p95", "lag_total", "examples", "label_rate"):
        assert field(driver, name) not in ("", "—"), name
    assert {row.get_attribute("data-arm") for row in driver.find_elements(
        By.CSS_SELECTOR, 'table[data-table="experiment"] tr[data-arm]')} == {"A", "B"}
    assert "prod" in field(driver, "models") and "baseline" in field(driver, "models")

    # The user lookup: the worker that owns the user answers with its features; its latest scores come along.
    user_id = next(reversed(data["latest_scores"]))
    expected = fetch_json(f"{base}/users/{user_id}/")["features"]
    box = driver.find_element(By.ID, "lookup-input")
    box.clear()
    box.send_keys(user_id)
    driver.find_element(By.ID, "lookup-button").click()
    wait.until(lambda d: d.find_element(By.ID, "lookup-result").get_attribute("data-state") in ("done", "error"))
    result = driver.find_element(By.ID, "lookup-result")
    assert result.get_attribute("data-state") == "done", result.text
    shown = {row.get_attribute("data-feature") for row in result.find_elements(
        By.CSS_SELECTOR, 'table[data-table="features"] tbody tr')}
    assert shown == set(expected) and len(shown) > 5
    assert count(driver, 'table[data-table="scores"] tbody tr') == len(data["latest_scores"][user_id]["scores"])

    screenshot(driver, tmp_path / "dashboard.png")
    assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"dashboard screenshot: {tmp_path / 'dashboard.png'}")

    assert driver.execute_script("return window.dashboardErrors") == []
    # Network lines are the browser's own (none expected either); anything else is the page's script.
    problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems
