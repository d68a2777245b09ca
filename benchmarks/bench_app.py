"""Render time of the app for one step of the default world (a script, not a test).

Renders the app's page with ``solara.render`` (the same Python work the server does for
a browser, minus the websocket and the browser's own drawing), clicks Step and times the
click until every component of the open page has re-rendered: the model step plus the
redraw of that page's charts and tables. Reported as the median and the 90th percentile
over the first ``--steps`` steps, for every page (tab) of the app, in single and A/B mode.
Target: median < 200 ms on the page that opens first (page 0), single mode.

Usage::

    .venv/bin/python benchmarks/bench_app.py               # 24 steps per page and mode
    .venv/bin/python benchmarks/bench_app.py --steps 12 --scenario small
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import statistics
import time

import ipyvuetify as v
import solara

from vbpsim.app import page as app_page
from vbpsim.app.session import AppModel
from vbpsim.app.settings import Settings

TARGET_MS = 200.0


def time_page(settings: Settings, tab: int, steps: int) -> dict[str, float]:
    """Step-to-rendered wall time (median, 90th percentile) and CPU time (median), bare model step; ms."""
    app_page.INITIAL = settings
    with contextlib.redirect_stdout(io.StringIO()):  # solara.render echoes the app bar
        _, rc = solara.render(solara.AppLayout(children=[app_page.Page()]), handle_error=False)
    try:
        rc.find(v.Tabs).widget.v_model = tab
        button = rc.find(v.Btn, children=["Step"]).widget
        button.click()  # the first draw of each chart type pays one-off costs (fonts, caches)
        wall, cpu = [], []
        for _ in range(steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            button.click()
            wall.append(1000 * (time.perf_counter() - start))
            cpu.append(1000 * (time.process_time() - start_cpu))
    finally:
        rc.close()
    model = AppModel(settings)
    start = time.process_time()
    for _ in range(steps):
        model.step()
    wall.sort()
    return {
        "median": statistics.median(wall),
        "p90": wall[int(0.9 * (len(wall) - 1))],
        "cpu": statistics.median(cpu),
        "step": 1000 * (time.process_time() - start) / steps,
    }


def main() -> int:
    """Time every page in single and A/B mode; exit 0 when page 0 (single) meets the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {load:.1f} at start; scenario {args.scenario}, "
        f"{args.steps} steps per case"
    )
    print(f"{'case':<36}{'wall median':>12}{'wall p90':>10}{'CPU median':>12}{'model step CPU':>16}")
    ok = True
    for mode, settings in (
        ("single (ffs)", Settings(scenario=args.scenario, contract="ffs", years=10)),
        ("A/B (ffs vs capitation)", Settings(scenario=args.scenario, contract="ffs", years=10, compare=True)),
    ):
        for tab in range(5):
            t = time_page(settings, tab, args.steps)
            print(
                f"{mode + f', page {tab}':<36}{t['median']:>9.0f} ms{t['p90']:>7.0f} ms"
                f"{t['cpu']:>9.0f} ms{t['step']:>13.1f} ms"
            )
            if tab == 0 and mode.startswith("single"):
                ok = t["median"] < TARGET_MS
    print(f"target: page 0, single mode, median < {TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
