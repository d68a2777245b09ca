"""Take the README's screenshots of the app: the main view and A/B mode (a script, not a test).

Serves ``vbpsim app`` on 127.0.0.1 at a free port, drives Debian's chromium with
Playwright, steps two years of the small world and writes ``docs/app_main.png`` (FFS)
and ``docs/app_ab.png`` (FFS vs capitation), then stops the server by its pid.

Usage::

    .venv/bin/python docs/make_app_screenshots.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def serve() -> tuple[subprocess.Popen, str]:
    """Start the app server and wait until it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = Path(sys.executable).with_name("vbpsim")
    command = [str(script), "app", "--port", str(port), "--scenario", "small"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return server, url
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("the app server did not start")


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Vuetify select by its label."""
    page.locator(".v-select", has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def run_months(page, months: int) -> None:
    """Click Step once a month, waiting each time for the page to show the new month."""
    for month in range(1, months + 1):
        page.get_by_role("button", name="Step").click()
        page.locator(".vbpsim-month", has_text=f"Month {month} of").wait_for(timeout=60_000)


def main() -> None:
    """Two screenshots of the small world after two years."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    server, url = serve()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            for name, compare in (("app_main.png", False), ("app_ab.png", True)):
                page = browser.new_page(viewport={"width": 1400, "height": 1050})
                page.goto(url)
                page.get_by_role("button", name="Step").wait_for(timeout=60_000)
                page.get_by_text("Running: A: ffs").wait_for(timeout=60_000)
                if compare:
                    page.get_by_text("A/B mode: compare with contract B").click()
                    page.get_by_text("Running: A: ffs, B: capitation").wait_for(timeout=60_000)
                run_months(page, 24)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(DOCS / name))
                print(f"wrote {DOCS / name}")
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
