"""One self-contained HTML report per country: summary first, code hidden, images embedded.

The executed notebooks are merged into one notebook (the summary first, then each chapter,
then the provenance block) and rendered with nbconvert's ``HTMLExporter`` with the inputs
excluded. The template is the JupyterLab one without its scripts from a CDN: opening a report
never makes a network request (nothing leaves the machine by itself: key-population data are sensitive).
"""

from __future__ import annotations

import copy
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nbformat is imported when a report is rendered
    from nbformat import NotebookNode

__all__ = ["REPORT_CSS", "combine_notebooks", "render_report", "write_report"]

#: Cell tags whose cells never reach the HTML report (still present in the executed .ipynb).
_HIDDEN_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "remove_cell"})

REPORT_CSS = """
body { max-width: 1100px; margin: 0 auto; }
.clm-banner { background: #1f3a5f; color: #fff; padding: 14px 20px; border-radius: 6px; margin: 12px 0; }
.clm-banner h1 { color: #fff; margin: 0 0 4px 0; font-size: 1.6em; }
.clm-banner p { margin: 0; }
.clm-toc { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 16px; margin-bottom: 16px; }
.clm-toc ol { margin: 4px 0; }
.clm-chapter { border-top: 3px solid #1f3a5f; margin-top: 28px; padding-top: 4px; }
.provenance table { font-size: 0.85em; }
.provenance code { word-break: break-all; }
table.dataframe td, table.dataframe th { padding: 3px 8px; }
.rag-red { background: #f8d0cc; } .rag-amber { background: #fde7b0; } .rag-green { background: #cfe8cf; }
"""

# The lab template minus every script it would fetch from a CDN (require.js, MathJax,
# mermaid, widgets). Reports hold static tables and PNG figures only.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}<style type="text/css">{{ resources.clm_css }}</style>{% endblock extra_css %}
"""


def _title(nb: NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


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
        Shown in the report's banner.
    provenance_html
        HTML block appended at the end (see :func:`clm_research.report.provenance.provenance_html`).

    Returns
    -------
    nbformat.NotebookNode
        Parameter cells and error/stderr outputs removed; one chapter divider per notebook.
    """
    import nbformat

    merged: NotebookNode = nbformat.v4.new_notebook()
    if notebooks:
        merged.metadata = copy.deepcopy(notebooks[0][1].metadata)
        merged.metadata.pop("papermill", None)
    chapters = [(name, _title(nb, name)) for name, nb in notebooks]
    toc = "".join(
        f'<li><a href="#chapter-{html.escape(name)}">{html.escape(t)}</a></li>'
        for name, t in chapters
    )
    merged.cells.append(
        nbformat.v4.new_markdown_cell(
            f'<div class="clm-banner"><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></div>'
            f'<nav class="clm-toc"><b>Contents</b><ol>{toc}'
            '<li><a href="#provenance">Provenance</a></li></ol></nav>'
        )
    )
    for (name, nb), (_, _t) in zip(notebooks, chapters, strict=True):
        merged.cells.append(
            nbformat.v4.new_markdown_cell(
                f'<div class="clm-chapter" id="chapter-{html.escape(name)}"></div>'
            )
        )
        for cell in nb.cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & _HIDDEN_TAGS:
                continue
            cell = copy.deepcopy(cell)
            if cell.cell_type == "code":
                cell.outputs = [
                    o
                    for o in cell.outputs
                    if o.output_type != "error"
                    and not (o.output_type == "stream" and o.get("name") == "stderr")
                ]
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
    res: dict[str, Any] = {"clm_css": REPORT_CSS}
    res.update(resources or {})
    body, _ = exporter.from_notebook_node(nb, resources=res)
    return body


def write_report(
    notebooks: Sequence[tuple[str, NotebookNode]],
    path: Path,
    *,
    title: str,
    subtitle: str = "",
    provenance_html: str = "",
) -> Path:
    """Combine, render and write one HTML report; returns ``path``."""
    nb = combine_notebooks(
        notebooks, title=title, subtitle=subtitle, provenance_html=provenance_html
    )
    nb.metadata["title"] = title
    path.write_text(render_report(nb), encoding="utf-8")
    return path
