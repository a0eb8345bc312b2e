"""One self-contained HTML report per country: summary first, code hidden, images embedded.

The executed notebooks are merged into one notebook (the summary first, then each chapter,
then the provenance block) and rendered with nbconvert's ``HTMLExporter`` with the inputs
excluded. The template is the JupyterLab one without its scripts from a CDN: opening a report
never makes a network request (nothing leaves the machine by itself: key-population data are
sensitive). Every image carries the alternative text its figure was given
(:class:`clm_research.report.figures.ReportFigure`); outputs that are only a Python repr (e.g.
``<Figure size …>``) are left out.

Layout: one column at most :data:`PAGE_WIDTH_PX` wide, tables that wrap instead of overflowing,
and a print stylesheet (A4, 14 mm margins, a page break before every chapter, page numbers) so
:func:`clm_research.report.pdf.write_pdf` prints the same file to ``report.pdf``.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nbformat is imported when a report is rendered
    from nbformat import NotebookNode

__all__ = [
    "PAGE_WIDTH_PX",
    "REPORT_CSS",
    "PRINT_CSS",
    "combine_notebooks",
    "render_report",
    "write_report",
]

#: Width of the report's column on screen (CSS pixels).
PAGE_WIDTH_PX = 1060

#: Cell tags whose cells never reach the HTML report (still present in the executed .ipynb).
_HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "remove_cell"})

REPORT_CSS = f"""
:root {{ --clm-navy: #1f3a5f; --clm-grey: #57606a; }}
body {{ max-width: {PAGE_WIDTH_PX}px; margin: 0 auto; padding: 0 16px; box-sizing: border-box; }}
body, .jp-RenderedHTMLCommon {{ font-size: 15px; }}
.jp-Notebook {{ padding: 0 !important; }}
.jp-Cell {{ padding: 0 !important; }}
.jp-OutputArea-output {{ overflow: visible !important; }}
.jp-RenderedHTMLCommon {{ padding-right: 0 !important; }}
.clm-banner {{ background: var(--clm-navy); color: #fff; padding: 10px 18px; border-radius: 6px;
  margin: 10px 0 6px 0; }}
.clm-banner h1 {{ color: #fff; margin: 0; font-size: 1.45em; line-height: 1.25; }}
.clm-banner p {{ margin: 2px 0 0 0; font-size: 0.9em; }}
.clm-banner nav {{ margin-top: 6px; font-size: 0.85em; line-height: 1.6; }}
.jp-RenderedHTMLCommon .clm-banner nav a, .clm-banner nav a {{ color: #dce7f5; margin-right: 10px;
  white-space: nowrap; text-decoration: underline; }}
.clm-chapter {{ border-top: 3px solid var(--clm-navy); margin-top: 28px; padding-top: 2px; }}
.clm-chapter.first {{ border-top: none; margin-top: 0; }}
.jp-RenderedHTMLCommon h1 {{ font-size: 1.6em; margin: 0.5em 0 0.35em 0; }}
.jp-RenderedHTMLCommon h2 {{ font-size: 1.25em; margin: 1.1em 0 0.4em 0; }}
.clm-headline {{ border-left: 6px solid var(--clm-navy); background: #f2f5f9; padding: 8px 14px;
  margin: 4px 0 10px 0; }}
.clm-headline p, .clm-headline ul {{ margin: 2px 0; }}
.clm-headline ul {{ padding-left: 4px; list-style: none; }}
.clm-headline li {{ margin: 2px 0; }}
.clm-headline .clm-headline-q {{ font-weight: 600; }}
.clm-headline .verdict-improved b {{ color: #005a8c; }}
.clm-headline .verdict-worse b {{ color: #b3261e; }}
/* presentation tables (clm_research.report.format) */
.clm-table-block {{ margin: 6px 0 16px 0; max-width: 100%; }}
.jp-RenderedHTMLCommon table.clm-table {{ width: 100%; table-layout: auto; margin: 0;
  border-collapse: collapse; font-size: 13.5px; color: #1b1f24; }}
.jp-RenderedHTMLCommon table.clm-table caption {{ caption-side: top; text-align: left;
  font-weight: 600; padding: 4px 0; }}
.jp-RenderedHTMLCommon table.clm-table th, .jp-RenderedHTMLCommon table.clm-table td {{
  padding: 4px 7px; border-bottom: 1px solid #d8dee4; vertical-align: top; white-space: nowrap;
  line-height: 1.3; }}
.jp-RenderedHTMLCommon table.clm-table thead th {{ background: #eef2f6; vertical-align: bottom;
  white-space: normal; border-bottom: 2px solid #8c959f; }}
.jp-RenderedHTMLCommon table.clm-table td.wrap {{ white-space: normal; overflow-wrap: break-word; }}
.jp-RenderedHTMLCommon table.clm-table .al-left {{ text-align: left; }}
.jp-RenderedHTMLCommon table.clm-table .al-right {{ text-align: right; }}
.jp-RenderedHTMLCommon table.clm-table .al-center {{ text-align: center; }}
.jp-RenderedHTMLCommon table.clm-table tr.group th {{ text-align: left; background: #f6f8fa;
  color: var(--clm-navy); padding-top: 8px; }}
.jp-RenderedHTMLCommon table.clm-table tbody tr:nth-child(even) {{ background: #fafbfc; }}
.jp-RenderedHTMLCommon table.clm-table sup {{ font-size: 0.75em; color: var(--clm-grey); }}
.jp-RenderedHTMLCommon table.clm-table td.missing {{ color: var(--clm-grey); }}
.clm-notes {{ font-size: 12.5px; color: #3d444d; margin-top: 4px; }}
.jp-RenderedHTMLCommon .clm-notes p, .clm-notes p {{ margin: 1px 0; }}
.jp-RenderedHTMLCommon .clm-legend p {{ margin: 2px 0; }}
.clm-legend {{ font-size: 13px; color: #3d444d; border: 1px solid #d8dee4; border-radius: 4px;
  padding: 6px 10px; margin: 4px 0 12px 0; }}
.clm-legend p {{ margin: 2px 0; }}
.clm-caption {{ font-size: 13px; color: #3d444d; margin: 2px 0 14px 0; max-width: 720px; }}
/* verdicts and targets: a symbol and words, the colour only repeats them */
td.verdict-improved {{ background: #dbeaf7; color: #003d66; font-weight: 600; }}
td.verdict-worse {{ background: #f9dcd7; color: #7a1a12; font-weight: 600; }}
td.verdict-null {{ color: #3d444d; }}
td.verdict-none {{ color: var(--clm-grey); }}
td.target-met {{ color: #005a8c; font-weight: 600; }}
td.target-not-met {{ color: #7a1a12; }}
/* red / amber / green cells always carry a symbol and a word too */
td.rag-green {{ background: #d7ecd9; }} td.rag-amber {{ background: #fbe7b5; }}
td.rag-red {{ background: #f7d4cf; }}
.jp-RenderedImage img {{ max-width: 100%; height: auto; }}
.provenance table {{ font-size: 0.82em; width: 100%; table-layout: fixed; }}
.provenance td {{ overflow-wrap: anywhere; word-break: break-all; text-align: left !important; }}
.provenance code {{ word-break: break-all; }}
.jp-RenderedHTMLCommon pre {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
"""

PRINT_CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #57606a; } }
@media print {
  /* the lab template lays outputs out as table cells and flex boxes, which Chromium moves
     whole to the next page: as blocks, long tables break across pages instead */
  .jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea, .jp-OutputArea-child,
  .jp-OutputArea-output, .jp-RenderedHTMLCommon { display: block !important;
    width: auto !important; box-sizing: border-box; }
  /* the lab template keeps every output on one page: a long table then jumps to the next
     page and leaves the rest of this one blank */
  .jp-OutputArea-child { break-inside: auto !important; }
  html, body { max-width: none !important; width: auto !important; margin: 0 !important;
    padding: 0 !important; background: #fff !important; }
  body, .jp-RenderedHTMLCommon { font-size: 10pt !important; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .clm-banner { border-radius: 0; }
  .clm-banner nav { display: none; }
  .clm-chapter { break-before: page; border-top: none; margin-top: 0; }
  .clm-chapter.first { break-before: auto; }
  /* a section that starts a page on paper (a notebook marks it with an empty div) */
  .clm-new-page { break-before: page; }
  #provenance { break-before: page; }
  .jp-RenderedHTMLCommon table.clm-table { font-size: 8.5pt; }
  .jp-RenderedHTMLCommon table.clm-table th, .jp-RenderedHTMLCommon table.clm-table td {
    padding: 2px 4px; }
  /* headers and labels wrap between words only ("anywhere" would let the table shrink a
     column to one letter and break "Baseline" in the middle) */
  .jp-RenderedHTMLCommon table.clm-table th,
  .jp-RenderedHTMLCommon table.clm-table td.wrap { white-space: normal;
    overflow-wrap: break-word; word-break: normal; hyphens: manual; }
  .jp-RenderedHTMLCommon table.clm-table thead { display: table-header-group; }
  .jp-RenderedHTMLCommon table.clm-table tr { break-inside: avoid; }
  .jp-RenderedImage, .clm-caption, .clm-headline, .clm-legend { break-inside: avoid; }
  .jp-RenderedHTMLCommon h1, .jp-RenderedHTMLCommon h2, .jp-RenderedHTMLCommon h3 {
    break-after: avoid; }
  .clm-notes, .clm-legend, .clm-caption { font-size: 8.5pt; }
  a { color: inherit; text-decoration: none; }
}
"""

# The lab template minus every script it would fetch from a CDN (require.js, MathJax,
# mermaid, widgets); images get the alternative text stored in their output's metadata.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}<style type="text/css">{{ resources.clm_css }}</style>{% endblock extra_css %}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width="{{ width | escape_html }}"{%- endif %}
{%- set alt=output | get_metadata('alt', 'image/png') -%}
{%- if alt %} alt="{{ alt | escape_html }}"{%- endif %}>
</div>
{% endblock data_png %}
"""


def _title(nb: NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _shown(output: Any) -> bool:
    """Whether an output belongs in the report: no errors, warnings or bare Python reprs."""
    if output.output_type == "error":
        return False
    if output.output_type == "stream":
        return bool(output.get("name") != "stderr")
    data = output.get("data", {})
    # an output that is only text/plain is a repr (``<Figure size 700x280 with 1 Axes>``,
    # ``<SurvivalResult …>``): what the reader should see is an image or a table
    return any(k != "text/plain" for k in data)


def combine_notebooks(
    notebooks: Sequence[tuple[str, NotebookNode]],
    *,
    title: str,
    subtitle: str = "",
    provenance_html: str = "",
) -> NotebookNode:
    """Merge executed notebooks into one notebook for rendering.

    Parameters
    ----------
    notebooks
        ``(name, NotebookNode)`` pairs in report order (the summary first).
    title, subtitle
        Shown in the report's banner (with a one-line table of contents).
    provenance_html
        HTML block appended at the end (see :func:`clm_research.report.provenance.provenance_html`).

    Returns
    -------
    nbformat.NotebookNode
        Parameter cells, error/stderr outputs and bare reprs removed; one chapter divider per
        notebook.
    """
    import nbformat

    merged: NotebookNode = nbformat.v4.new_notebook()
    if notebooks:
        merged.metadata = copy.deepcopy(notebooks[0][1].metadata)
        merged.metadata.pop("papermill", None)
    chapters = [(name, _title(nb, name)) for name, nb in notebooks]
    toc = "".join(
        f'<a href="#chapter-{html.escape(name)}">{i}. {html.escape(t.split(":")[0])}</a> '
        for i, (name, t) in enumerate(chapters, start=1)
    )
    if provenance_html:
        toc += '<a href="#provenance">Provenance</a>'
    merged.cells.append(
        nbformat.v4.new_markdown_cell(
            f'<header class="clm-banner"><h1>{html.escape(title)}</h1>'
            f"<p>{html.escape(subtitle)}</p>"
            f'<nav aria-label="Contents">{toc}</nav></header>'
        )
    )
    for k, (name, nb) in enumerate(notebooks):
        first = " first" if k == 0 else ""
        merged.cells.append(
            nbformat.v4.new_markdown_cell(
                f'<div class="clm-chapter{first}" id="chapter-{html.escape(name)}"></div>'
            )
        )
        for cell in nb.cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & _HIDDEN_TAGS:
                continue
            cell = copy.deepcopy(cell)
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if _shown(o)]
                if not cell.outputs:
                    continue
            merged.cells.append(cell)
    if provenance_html:
        merged.cells.append(nbformat.v4.new_markdown_cell(provenance_html))
    return merged


def render_report(nb: NotebookNode, *, resources: Mapping[str, Any] | None = None) -> str:
    """Render a (combined) notebook to HTML with the code hidden and images embedded."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"clm_report.html.j2": _TEMPLATE})],
        template_file="clm_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    res: dict[str, Any] = {"clm_css": REPORT_CSS + PRINT_CSS}
    res.update(resources or {})
    body, _ = exporter.from_notebook_node(nb, resources=res)
    return _strip_style_comments(body)


def _strip_style_comments(page: str) -> str:
    """Drop the comments of the page's stylesheets: JupyterLab's cite web pages (colour tools,
    design guides) and a report must not refer to any host, even in a comment."""
    import re

    def clean(m: re.Match[str]) -> str:
        return re.sub(r"/\*.*?\*/", "", m.group(0), flags=re.S)

    return re.sub(r"<style[^>]*>.*?</style>", clean, page, flags=re.S | re.I)


def write_report(
    notebooks: Sequence[tuple[str, NotebookNode]],
    path: Path,
    *,
    title: str,
    subtitle: str = "",
    provenance_html: str = "",
) -> Path:
    """Combine, render and write one HTML report; returns ``path``."""
    from clm_research.files import write_text

    nb = combine_notebooks(
        notebooks, title=title, subtitle=subtitle, provenance_html=provenance_html
    )
    nb.metadata["title"] = title
    return write_text(path, render_report(nb))
