"""The run report: one self-contained HTML page (index.html) with the SVG plots and fusion diagrams beside it.

Modules: ``data`` (what to show, read from the run's stores, LUT, timings and exported models' manifests),
``format`` (compact text of archs and numbers), ``plots`` (matplotlib SVGs, a title per point), ``diagrams`` (fusion diagrams via Graphviz), ``html``
(the page, jinja2), ``writer`` (:func:`write_report`, which ties them together).
"""

from __future__ import annotations

from harmonic_nas.report.writer import write_report

__all__ = ["write_report"]
