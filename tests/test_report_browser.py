"""Open a country's HTML report in headless Debian chromium: no console errors, all figures and tables.

Talks to chromium over the Chrome DevTools protocol (``websocket-client``) on 127.0.0.1 only.
Skipped with a reason when chromium is absent outside CI (install: ``.ci/install-browser.sh``);
fails when it is absent in CI.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from test_notebooks_smoke import pipeline_run

from clm_research.paths import project_root

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

# one worker runs every test that shares the full pipeline run (it is cached per process)
pytestmark = pytest.mark.xdist_group("pipeline")


def _need_browser() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed in CI: run .ci/install-browser.sh first")
    pytest.skip("chromium not installed (/usr/bin/chromium); run .ci/install-browser.sh")


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if any(e.get("method") == event for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(event)


def _expected(report_dir: Path) -> tuple[int, int]:
    """Figures (PNG outputs) and tables (HTML table outputs) in the executed notebooks."""
    figures = tables = 0
    for nb_path in (report_dir / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                figures += "image/png" in data
                tables += "<table" in str(data.get("text/html", ""))
    return figures, tables


def test_report_renders_in_headless_chromium() -> None:
    browser = _need_browser()
    base, summary = pipeline_run()
    assert summary.exit_code == 0, summary.format()
    result = summary.results[0]
    report_dir = base / "reports" / result.country / result.period
    report = report_dir / "report.html"
    profile = tempfile.mkdtemp(prefix="clm-chromium-")
    proc = subprocess.Popen(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,2000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        end = time.time() + 30
        while not port_file.is_file() and time.time() < end:
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        dt = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.call(f"{domain}.enable")
        dt.call("Page.navigate", url=report.as_uri())
        dt.wait_for("Page.loadEventFired")
        counts = dt.call(
            "Runtime.evaluate",
            expression="JSON.stringify({imgs: Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length,"
            " tables: document.querySelectorAll('table').length, scorecard: document.body.innerText.includes('headline'),"
            " provenance: !!document.getElementById('provenance')})",
            returnByValue=True,
        )["result"]["value"]
        shot = dt.call("Page.captureScreenshot", format="png")
        dt.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)

    out = project_root() / "reports" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"report-{result.country}-{result.period}.png").write_bytes(
        base64.b64decode(shot["data"])
    )

    errors = [
        e
        for e in dt.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    assert errors == [], errors
    requests = [
        e["params"]["request"]["url"]
        for e in dt.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert all(u.startswith(("file:", "data:")) for u in requests), (
        requests
    )  # nothing leaves the machine
    counts = json.loads(counts)
    figures, tables = _expected(report_dir)
    assert counts["imgs"] == figures and figures >= 5
    # every table output of the notebooks, plus the provenance block's three tables
    assert counts["tables"] >= tables + 3
    assert counts["scorecard"] and counts["provenance"]
