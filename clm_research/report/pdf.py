"""``report.pdf`` beside ``report.html``: the same file printed by headless Chromium.

The report's print stylesheet (:data:`clm_research.report.html.PRINT_CSS`) sets A4 pages,
margins, page numbers and a page break before every chapter; Chromium's ``--print-to-pdf``
honours it. The browser is Debian's ``chromium`` (installed by ``make browser`` /
``.ci/install-browser.sh``) or the one named by ``CLM_CHROMIUM``. It runs with a throwaway
profile, no header or footer (which would print the file's path), and every host name
resolving nowhere, so printing cannot reach the network. Links to files beside the report
(the Data Docs page, the CSV tables) are printed as their relative path in words: a PDF link
would carry the machine's absolute path (``file:///home/…``), which no artefact may.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from clm_research.errors import CLMError

__all__ = ["PDFError", "find_chromium", "printable_html", "write_pdf"]

#: Seconds one print may take before it is abandoned.
TIMEOUT_S = 180


class PDFError(CLMError):
    """The PDF could not be printed (no browser, or the browser failed)."""


def find_chromium() -> str | None:
    """The Chromium executable: ``CLM_CHROMIUM``, else ``chromium`` on the PATH, else ``None``."""
    named = os.environ.get("CLM_CHROMIUM")
    if named:
        return named if Path(named).is_file() or shutil.which(named) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


_LINK = re.compile(r'<a\s+href="(?!#)([^"]*)"[^>]*>(.*?)</a>', re.S | re.I)


def printable_html(page: str) -> str:
    """The page with every link to another file turned into its text and path, in words.

    Chromium resolves a relative link against the file it prints and writes the absolute
    ``file://`` URL into the PDF; a link within the page (``#chapter-…``) is kept.
    """

    def words(m: re.Match[str]) -> str:
        target, text = m.group(1), m.group(2)
        return f'<span class="clm-link">{text} ({target})</span>'

    return _LINK.sub(words, page)


def write_pdf(html_path: Path, pdf_path: Path, *, timeout: float = TIMEOUT_S) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4, the report's print stylesheet); return it.

    Raises
    ------
    PDFError
        No Chromium found (naming how to install it), the browser failed or timed out, or it
        wrote no PDF.
    """
    browser = find_chromium()
    if browser is None:
        raise PDFError(
            "report.pdf not written: Chromium is not installed (run `make browser`, i.e. "
            "`bash .ci/install-browser.sh`, or set CLM_CHROMIUM to a Chromium executable)"
        )
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = pdf_path.with_name(f".{pdf_path.name}.tmp")
    # printed from a copy beside the report, whose file links are words (see the module)
    source = html_path.with_name(f".print-{html_path.name}")
    source.write_text(printable_html(html_path.read_text(encoding="utf-8")), encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="clm-chromium-")
    argv = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={tmp_pdf}",
        source.as_uri(),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.insert(2, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise PDFError(f"report.pdf not written: Chromium took more than {timeout:.0f} s") from None
    except OSError as e:
        raise PDFError(f"report.pdf not written: cannot start {browser}: {e}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        source.unlink(missing_ok=True)
    if not tmp_pdf.is_file() or tmp_pdf.read_bytes()[:5] != b"%PDF-":
        tmp_pdf.unlink(missing_ok=True)
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise PDFError(
            f"report.pdf not written: Chromium exited with {proc.returncode}"
            + (f" ({' / '.join(tail)})" if tail else "")
        )
    os.replace(tmp_pdf, pdf_path)
    return pdf_path
