"""Fusion diagram of each Pareto model (fusion/diagram.py): DOT always, SVG and PNG when Graphviz is
installed. The SVG is inlined into the page (no XML prolog, no namespace URLs: the page has no http
reference at all); without Graphviz the page shows the DOT text."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harmonic_nas.fusion.diagram import genotype_dot, write_diagram
from harmonic_nas.search.store import Evaluation

_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


@dataclass
class Diagram:
    key: str
    dot: str
    svg: str | None  # inline <svg> element, None without Graphviz (or if it failed)
    files: list[Path]
    problem: str | None = None


def inline_svg(svg: str) -> str:
    """A Graphviz SVG file as an inline HTML5 <svg> element."""
    svg = _PROLOG.sub("", svg).strip()
    head, sep, rest = svg.partition(">")
    head = _NAMESPACES.sub("", head)  # its width/height stay; the page's CSS caps the width
    svg = head + sep + rest
    # xlink:href without its namespace declaration: HTML5 knows xlink, but plain href is the modern form
    return svg.replace("xlink:href=", "href=")


def fusion_diagram(evaluation: Evaluation, folder: Path, metric: str) -> Diagram:
    """Write ``folder``/<key>.dot (+ .svg, .png with Graphviz) for ``evaluation``'s fusion genotype."""
    genotype = evaluation.genotype
    if genotype is None:
        return Diagram(evaluation.key, "", None, [], problem="no fusion genotype stored")
    if genotype.is_dense:
        return Diagram(evaluation.key, "", None, [], problem="FB+FF's dense fusion: every tap, pair and operator")
    macro = evaluation.candidate.macro
    title = (f"{evaluation.key}: {macro.cells} cells x {macro.nodes} nodes, reads "
             f"{'+'.join(evaluation.modalities_used) or '?'}, val {metric} {evaluation.val_metric:.4f}")
    path = folder / f"{evaluation.key}.dot"
    try:
        files = write_diagram(genotype, path, formats=("svg", "png"), title=title)
    except (subprocess.CalledProcessError, OSError) as exc:
        dot = genotype_dot(genotype, title)
        return Diagram(evaluation.key, dot, None, [path] if path.exists() else [], problem=f"graphviz failed: {exc}")
    dot = path.read_text(encoding="utf-8")
    svg_file = path.with_suffix(".svg")
    svg = inline_svg(svg_file.read_text(encoding="utf-8")) if svg_file in files else None
    return Diagram(evaluation.key, dot, svg, files)
