"""The app in a real headless Chromium (Debian's build), driven with pytest-playwright.

A ``vbpsim app`` server is started on 127.0.0.1 at a free port for this module and
stopped by its pid afterwards. The browser is found at ``$VBPSIM_CHROMIUM``, or as
``chromium`` on the PATH; ``playwright install`` is never used. Without a browser these
tests are skipped with one line saying how to get one, except under ``CI=true``, where a
missing browser fails them. Screenshots go to each test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="pytest-playwright is not installed (pip install -e '.[test]')")
from playwright.sync_api import expect  # noqa: E402

expect.set_options(timeout=60_000)

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOW_TO = (
    "browser tests skipped: no Chromium found; install Debian's build with `apt-get install -y chromium` "
    "(`make test` does this when run as root) or point $VBPSIM_CHROMIUM at a Chromium binary"
)
TIMEOUT_MS = 60_000


def find_chromium() -> str | None:
    """The Chromium to drive: $VBPSIM_CHROMIUM, else chromium on the PATH."""
    candidate = os.environ.get("VBPSIM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return candidate if candidate and Path(candidate).exists() else None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Launch Debian's Chromium headless; under CI a missing one fails every test."""
    chromium = find_chromium()
    if chromium is None:
        pytest.fail("CI=true but no Chromium was found: " + HOW_TO.split("; ", 1)[1])  # only reached under CI
    return {**browser_type_launch_args, "executable_path": chromium, "args": LAUNCH_ARGS, "headless": True}


ON_CI = os.environ.get("CI", "").lower() == "true"
if find_chromium() is None and not ON_CI:
    pytest.skip(HOW_TO, allow_module_level=True)  # one line for the whole module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve ``vbpsim app`` on 127.0.0.1 for this module; stop it by its pid."""
    port = _free_port()
    script = Path(sys.executable).with_name("vbpsim")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from vbpsim.cli import main; main()"]
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as out:
        arguments = ["app", "--host", "127.0.0.1", "--port", str(port), "--scenario", "small"]  # the quick world
        server = subprocess.Popen([*command, *arguments], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def open_app(page, url: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("button", name="Step").wait_for(timeout=TIMEOUT_MS)


def step(page, times: int = 1) -> None:
    for _ in range(times):
        page.get_by_role("button", name="Step").click()
        page.wait_for_timeout(150)


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Vuetify select by its label."""
    page.locator(".v-select", has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def chart_source(page, view: str) -> str:
    image = page.locator(f".vbpsim-view-{view} img").first
    image.wait_for(timeout=TIMEOUT_MS)
    return image.get_attribute("src") or ""


def test_page_loads_a_contract_is_chosen_the_model_steps_and_charts_change(page, app_url: str, tmp_path: Path) -> None:
    open_app(page, app_url)
    expect(page.get_by_text("Press Step or Play to run the model.").first).to_be_visible()
    choose(page, "contract A", "capitation")
    page.get_by_text("Running: A: capitation").wait_for(timeout=TIMEOUT_MS)
    step(page, 2)
    before = chart_source(page, "spending")
    step(page, 3)
    page.wait_for_function(
        "src => document.querySelector('.vbpsim-view-spending img').getAttribute('src') !== src",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    page.locator(".vbpsim-month", has_text="Month 5 of").wait_for(timeout=TIMEOUT_MS)
    assert chart_source(page, "values")
    expect(page.locator(".vbpsim-view-values table").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "app_main.png"), full_page=True)
    assert (tmp_path / "app_main.png").stat().st_size > 10_000


def test_ab_mode_shows_both_contracts(page, app_url: str, tmp_path: Path) -> None:
    open_app(page, app_url)
    page.get_by_text("A/B mode: compare with contract B").click()
    page.get_by_text("Running: A: ffs, B: capitation").wait_for(timeout=TIMEOUT_MS)
    step(page, 4)
    page.locator(".vbpsim-month", has_text="Month 4 of").wait_for(timeout=TIMEOUT_MS)
    page.locator(".vbpsim-view-ab table").wait_for(timeout=TIMEOUT_MS)
    text = page.locator(".vbpsim-view-ab").inner_text()
    assert "B - A" in text and "A: ffs" in text and "B: capitation" in text
    assert "spending_per_capita" in text
    page.screenshot(path=str(tmp_path / "app_ab.png"), full_page=True)
    assert (tmp_path / "app_ab.png").stat().st_size > 10_000


def test_two_browser_contexts_keep_separate_models(browser, app_url: str) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        one, two = first.new_page(), second.new_page()
        open_app(one, app_url)
        open_app(two, app_url)
        choose(one, "contract A", "per_case")
        one.get_by_text("Running: A: per_case").wait_for(timeout=TIMEOUT_MS)
        step(one, 3)
        one.locator(".vbpsim-view-spending img").first.wait_for(timeout=TIMEOUT_MS)
        one.locator(".vbpsim-month", has_text="Month 3 of").wait_for(timeout=TIMEOUT_MS)
        expect(two.get_by_text("Running: A: ffs").first).to_be_visible()  # the other tab's choice did not leak
        expect(two.get_by_text("Press Step or Play to run the model.").first).to_be_visible()  # nor its charts
        step(two, 1)
        two.locator(".vbpsim-month", has_text="Month 1 of").wait_for(timeout=TIMEOUT_MS)  # nor its steps
        assert one.locator(".vbpsim-month").inner_text().startswith("Month 3 of")
    finally:
        first.close()
        second.close()
