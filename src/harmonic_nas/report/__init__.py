"""The run report: one self-contained HTML page (index.html) with the SVG plots and fusion diagrams beside it.

Modules: ``data`` (what to show, read from the run's stores, LUT, timings and exported models' manifests),
``format`` (compact text of archs and numbers), ``plots`` (matplotlib SVGs, a title per point), ``diagrams`` (fusion diagrams via Graphviz), ``html``
(the page, jinja2), ``writer`` (:func:`harmonic_nas.report.writer.write_report`, which ties them together).

Nothing is imported here: ``status`` reads ``format`` and must not pay for the writer's torch and matplotlib.
"""
