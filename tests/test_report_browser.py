"""Every demo report and the synthesis, opened in a real headless Chromium (Debian ``chromium``).

For each report, at a 1366 × 768 window: no console error; no request outside ``file:``/``data:``
(the Data Docs page it links too); no element wider than the window; the headline and the start
of the scorecard above the fold; the visible text free of ``NaN``, ``None``, ``<Figure``,
``dtype``, ``Unnamed`` and of pandas row-index columns; every image with a real alt text. Printed
(A4 media, 186 mm of text width): no element wider than the page. ``report.pdf`` exists and its
text holds every word of every scorecard column header (nothing cut).

Talks to chromium over the Chrome DevTools protocol (``websocket-client``) on 127.0.0.1 only.
Skipped with a reason when chromium is absent outside CI (install: ``.ci/install-browser.sh``);
fails when it is absent in CI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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

#: Words a reader must never see: raw pandas / Python output.
FORBIDDEN = re.compile(r"\bNaN\b|\bNone\b|<Figure|\bdtype\b|Unnamed|<matplotlib|\bnan\b")

#: Text width of an A4 page with the report's 12 mm side margins, in CSS pixels (96 per inch).
A4_TEXT_PX = int((210 - 24) / 25.4 * 96)


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

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")

    def open(self, url: str, width: int = 1366, height: int = 768) -> None:
        """Load ``url`` in a ``width`` × ``height`` window and wait for it to finish."""
        self.events = []
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Emulation.setEmulatedMedia", media="screen")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def errors(self) -> list[dict]:
        return [
            e
            for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (
                e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error"
            )
            or (
                e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"
            )
        ]


@contextmanager
def browser() -> Iterator[DevTools]:
    """A headless chromium with a throwaway profile and one page under DevTools control."""
    exe = _need_browser()
    profile = tempfile.mkdtemp(prefix="clm-chromium-")
    argv = [
        exe,
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--window-size=1366,768",
        "about:blank",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.insert(2, "--no-sandbox")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        end = time.time() + 30
        while not port_file.is_file() and time.time() < end:
            time.sleep(0.1)
        time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        dt = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.call(f"{domain}.enable")
        yield dt
    finally:
        if dt is not None:
            dt.ws.close()
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


def _reports() -> list[Path]:
    base, summary = pipeline_run()
    assert summary.exit_code == 0, summary.format()
    paths = [base / "reports" / r.country / r.period / "report.html" for r in summary.results]
    assert summary.synthesis is not None and summary.synthesis.report
    paths.append(base / "reports" / summary.synthesis.report)
    return paths


def _expected_images(report_dir: Path) -> int:
    figures = 0
    for nb_path in [*(report_dir / "notebooks").glob("*.ipynb"), *report_dir.glob("*.ipynb")]:
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                figures += "image/png" in out.get("data", {})
    return figures


# Everything measured in the page, in one script: overflow, text, images, tables, the fold.
_MEASURE = """
(() => {
  const vw = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (el.scrollWidth > vw + 1 || r.right > vw + 1) {
      wide.push(`${el.tagName}.${el.className} "${(el.innerText || '').slice(0, 40)}": scroll ${el.scrollWidth}, right ${Math.round(r.right)}`);
    }
  }
  const indexColumns = [];
  for (const t of document.querySelectorAll('table')) {
    const first = Array.from(t.querySelectorAll('tbody tr')).map(r => (r.cells[0] || {}).innerText);
    if (first.length > 2 && first.every((v, i) => v !== undefined && v.trim() === String(i))) {
      indexColumns.push(t.className || 'table');
    }
  }
  const imgs = Array.from(document.images).map(i => ({
    alt: i.getAttribute('alt') || '', ok: i.complete && i.naturalWidth > 0,
    width: i.getBoundingClientRect().width}));
  const headline = document.querySelector('.clm-headline');
  const scorecard = document.querySelector('table.scorecard');
  return JSON.stringify({
    vw, wide: wide.slice(0, 10), nWide: wide.length, indexColumns, imgs,
    text: document.body.innerText,
    pandasTables: document.querySelectorAll('table.dataframe').length,
    headlineBottom: headline ? headline.getBoundingClientRect().bottom : null,
    scorecardTop: scorecard ? scorecard.getBoundingClientRect().top : null,
    scorecardHeaders: scorecard ? Array.from(scorecard.querySelectorAll('thead th')).map(th => th.innerText) : [],
    dataDocs: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))
      .filter(h => h && h.includes('data_docs')),
    provenance: !!document.getElementById('provenance'),
  });
})()
"""

_PRINT_WIDE = """
(() => {
  const vw = document.documentElement.clientWidth;
  const out = el => el.getBoundingClientRect().right > vw + 1;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    // the innermost elements sticking out: the ones to fix
    if (out(el) && !Array.from(el.children).some(out)) {
      wide.push(`${el.tagName}.${el.className} "${(el.innerText || '').slice(0, 40)}": right ${Math.round(r.right)}`);
    }
  }
  const docWide = document.documentElement.scrollWidth > vw + 1;
  return JSON.stringify({vw, wide: wide.slice(0, 10), n: wide.length + (docWide ? 1 : 0),
    docWidth: document.documentElement.scrollWidth});
})()
"""


def _pdf_text(path: Path) -> str:
    """The PDF's text; NFKC undoes the typographic ligatures (ﬁ, ﬀ) fonts print."""
    import unicodedata

    from pypdf import PdfReader

    reader = PdfReader(str(path))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return unicodedata.normalize("NFKC", text)


def test_reports_in_headless_chromium() -> None:
    reports = _reports()
    shots = project_root() / "reports" / "screenshots"
    with browser() as dt:
        for report in reports:
            name = f"{report.parent.parent.name}-{report.parent.name}"
            dt.open(report.as_uri())
            m = json.loads(str(dt.evaluate(_MEASURE)))
            shot = dt.call("Page.captureScreenshot", format="png")
            shots.mkdir(parents=True, exist_ok=True)
            (shots / f"report-{name}.png").write_bytes(base64.b64decode(shot["data"]))

            assert dt.errors() == [], (name, dt.errors())
            bad = [u for u in dt.requests() if not u.startswith(("file:", "data:"))]
            assert bad == [], (name, bad)  # nothing leaves the machine
            # and the file refers to no other host at all, not even in a comment
            hosts = re.findall(r"https?://[^\s\"'<>)]*", report.read_text(encoding="utf-8"))
            assert hosts == [], (name, hosts[:5])
            assert m["vw"] == 1366
            assert m["nWide"] == 0, (name, m["wide"])
            hits = sorted(set(FORBIDDEN.findall(m["text"])))
            assert hits == [], (name, hits)
            assert m["pandasTables"] == 0 and m["indexColumns"] == [], name
            assert len(m["imgs"]) == _expected_images(report.parent) and m["imgs"], name
            for img in m["imgs"]:
                assert img["ok"], name
                alt = img["alt"]
                assert len(alt) > 30 and "No description" not in alt, (name, alt)
                assert img["width"] <= 1366
            if report.parent.parent.name != "synthesis":
                assert m["provenance"], name
                # the first screen answers the question: headline, then the scorecard
                assert m["headlineBottom"] is not None and m["headlineBottom"] <= 768, name
                assert m["scorecardTop"] is not None and m["scorecardTop"] < 768, name
                assert m["dataDocs"] == ["data_docs.html"], name
            # printed: A4 text width, nothing wider than the page
            dt.call(
                "Emulation.setDeviceMetricsOverride",
                width=A4_TEXT_PX,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            dt.call("Emulation.setEmulatedMedia", media="print")
            p = json.loads(str(dt.evaluate(_PRINT_WIDE)))
            assert p["n"] == 0, (name, p["wide"])
            # the PDF: every word of every scorecard column header is in its text
            pdf = report.with_suffix(".pdf")
            assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-", name
            text = " ".join(_pdf_text(pdf).split())
            headers = m["scorecardHeaders"] if m["scorecardHeaders"] else []
            if report.parent.parent.name != "synthesis":
                assert len(headers) == 8, headers
            for h in headers:
                for word in h.split():
                    assert word in text, (name, h, word)
            assert not FORBIDDEN.search(text), (name, FORBIDDEN.findall(text)[:5])


def test_data_docs_and_index_work_offline() -> None:
    reports = _reports()
    base = reports[0].parents[2]
    with browser() as dt:
        for page in [reports[0].parent / "data_docs.html", base / "index.html"]:
            dt.open(page.as_uri())
            assert dt.errors() == [], page.name
            bad = [u for u in dt.requests() if not u.startswith(("file:", "data:"))]
            assert bad == [], (page.name, bad)
            text = str(dt.evaluate("document.body.innerText"))
            assert len(text) > 200 and not FORBIDDEN.search(text), page.name
            assert not re.search(r"https?://", page.read_text(encoding="utf-8")), page.name
        # the index links each report and its PDF
        dt.open((base / "index.html").as_uri())
        links = dt.evaluate(
            "Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))"
        )
        assert isinstance(links, list)
        for r in reports:
            rel = r.relative_to(base).as_posix()
            assert rel in links and rel.replace(".html", ".pdf") in links, rel
