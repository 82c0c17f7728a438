"""The report page: one self-contained HTML file (inline CSS, plots and diagrams as inline SVG, no script,
no network reference), rendered with jinja2 (autoescaped)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harmonic_nas import __version__
from harmonic_nas.report.data import ReportData, VariantRun, pareto_of
from harmonic_nas.model_manifest import Manifest
from harmonic_nas.report.diagrams import Diagram, inline_svg
from harmonic_nas.report.format import fusion_gain, metric, modalities_text, seconds, short_id, shuffled_text
from harmonic_nas.search.store import Evaluation


@dataclass
class Plot:
    """A plot's SVG file beside the page, inlined into it (so that its points' titles show on hover)."""

    path: Path
    alt: str

    @property
    def svg(self) -> Markup:
        head, sep, rest = inline_svg(self.path.read_text(encoding="utf-8")).partition(">")
        return Markup(f'{head} class="plot" role="img" aria-label="{Markup.escape(self.alt)}"{sep}{rest}')


def _when(stamp: float | None) -> str:
    return "–" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _columns(models: list[Evaluation], modalities: list[str]) -> list[tuple[str, list[str]]]:
    """(modality, sub-column labels) of the backbone part of a table."""
    out = []
    for m in modalities:
        arch = next((e.candidate.backbones[m] for e in models if m in e.candidate.backbones), None)
        if arch is not None:
            out.append((m, [label for label, _ in arch.table_fields()]))
    return out


def _measured(manifest: Manifest | None) -> list[dict[str, str]]:
    """The exported formats' measured latencies, each with how it was timed (hover text)."""
    cells = []
    for entry in manifest.exports if manifest is not None else []:
        m = entry.measured
        if m is not None:
            factor = m.machine_factor
            drift = "" if factor is None else f"; the LUT's reference model ran {factor:.2f}x its calibration time"
            cells.append({"text": f"{m.latency_ms:.3f} {entry.format}",
                          "how": f"{entry.file}, exported {entry.date}: {m.runtime}, {m.threads} thread(s), batch "
                                 f"{m.batch_size}, {m.method}{drift}"})
    return cells


def _float_and_int8(manifest: Manifest | None) -> dict[str, str] | None:
    """Float beside INT8 when the folder holds an INT8 export and a float one (model.onnx preferred): the
    val metric of each on the val score part with the INT8 drop in points, the measured latency of each
    with the INT8/float ratio, and how each was timed (hover)."""
    quantized = manifest.entry("onnx-int8") if manifest is not None else None
    floats = [e for e in manifest.exports if e.format != "onnx-int8"] if manifest is not None else []
    if quantized is None or not floats:
        return None
    plain = manifest.entry("onnx") or floats[-1]
    checks = quantized.checks.get("int8", {})
    val_float, val_int8 = quantized.checks.get("val_exported"), checks.get("val_int8")
    val = f"{metric(val_float)} / {metric(val_int8)}"
    if val_float is not None and val_int8 is not None:
        val += f" ({(val_int8 - val_float) * 100:+.1f})"
    a, b = plain.measured, quantized.measured
    latency = f"{'–' if a is None else f'{a.latency_ms:.3f}'} / {'–' if b is None else f'{b.latency_ms:.3f}'}"
    if a is not None and b is not None and a.latency_ms > 0:
        latency += f" (x{b.latency_ms / a.latency_ms:.2f})"
    how = "; ".join(f"{e.file}: {'not timed' if e.measured is None else f'{e.measured.runtime}, {e.measured.method}'}"
                    for e in (plain, quantized))
    return {"val": val, "latency": latency, "how": how, "float": plain.file}


def _model_row(e: Evaluation, columns: list[tuple[str, list[str]]], manifest: Manifest | None) -> dict[str, Any]:
    backbones = e.candidate.backbones
    cells = []
    for m, labels in columns:
        values = dict(backbones[m].table_fields()) if m in backbones else {}
        cells += [values.get(label, "–") for label in labels]
    macro = e.candidate.macro
    return {
        "id": short_id(e.key), "key": e.key, "generation": e.generation, "backbones": cells,
        "cells": macro.cells, "nodes": macro.nodes, "reads": modalities_text(e),
        "val": metric(e.val_metric),
        "test": metric(e.test_metric), "shuffled": shuffled_text(e), "latency": f"{e.latency_ms:.3f}",
        "measured": _measured(manifest),
        "energy": f"{e.energy_mj:.3f}", "int8": _float_and_int8(manifest),
    }


def _modalities(data: ReportData) -> list[str]:
    order = list(data.main.config.get("modalities", {}))
    seen = {m for e in data.main.candidates for m in e.candidate.backbones} | set(data.main.backbones)
    return [m for m in order if m in seen] + sorted(seen - set(order))


def _generations_text(run: VariantRun) -> str:
    text = f"{len(run.generations)} of {run.generations_total} finished"
    if run.running is not None:
        text += f", generation {run.running} running or stopped"
    return text


def _facts(data: ReportData) -> list[tuple[str, str]]:
    run = data.main
    facts = [
        ("run", f"{data.name} ({data.run_dir})"),
        ("dataset", data.dataset),
        ("variant", f"{run.variant} ({run.label})"),
        ("generations", _generations_text(run)),
        ("evaluations", f"{sum(len(v) for v in run.backbones.values())} backbones (stage 1), "
                        f"{len(run.candidates)} multimodal candidates (stage 2)"),
        ("search wall time", seconds(run.wall_seconds) + ("" if run.wall_seconds is None else
                             f" (first generation start {_when(run.started)} to "
                             f"{'last generation end' if run.running is None else 'last event'})")
                             + (f"; resumed {run.resumes}x" if run.resumes else "")),
    ]
    gain = fusion_gain(run.front, [e for evals in run.backbones.values() for e in evals])
    if gain:
        facts.append(("fusion gain", gain))
    for i, timed in enumerate(data.timings[-3:], start=max(1, len(data.timings) - 2)):
        steps = ", ".join(f"{k} {seconds(float(v))}" for k, v in timed["steps_s"].items())
        facts.append((f"run {i} steps", f"{steps} (started {timed.get('started', '?')})"))
    lut = data.lut
    if lut.problem is None:
        facts.append(("hardware (LUT)", f"device {lut.device}, runtime {lut.runtime}, batch size {lut.batch_size}, "
                                        f"{lut.threads} thread(s), host {lut.host_cpu}, measured {lut.date}, "
                                        f"{lut.entries} entries ({lut.path})"))
        facts.append(("energy source", str(lut.energy_source)))
    else:
        fallback = next((e.result.get("lut") for e in run.candidates if e.result.get("lut")), None)
        text = f"{lut.path}: {lut.problem}"
        if fallback:
            text = f"device {fallback.get('device')}, runtime {fallback.get('runtime')} ({text})"
        facts.append(("hardware (LUT)", text))
    if run.hv_reference and len(run.hv_reference) == 3:
        facts.append(("hypervolume reference", "error {:.2f}, latency {:.3f} ms, energy {:.3f} mJ".format(
            *run.hv_reference)))
    return facts


def _ablation_rows(data: ReportData) -> list[dict[str, Any]]:
    rows = []
    for run in data.variants:
        e = run.best
        rows.append({
            "label": run.label, "variant": run.variant, "main": run.variant == data.main.variant,
            "id": short_id(e.key) if e else "–", "key": e.key if e else "",
            "val": metric(e.val_metric if e else None), "test": metric(e.test_metric if e else None),
            "latency": f"{e.latency_ms:.3f}" if e else "–", "energy": f"{e.energy_mj:.3f}" if e else "–",
            "candidates": len(run.candidates), "generations": _generations_text(run),
            "wall": seconds(run.wall_seconds),
        })
    return rows


def render(data: ReportData, images: dict[str, Plot], diagrams: list[Diagram]) -> str:
    """The page's HTML text."""
    run = data.main
    modalities = _modalities(data)
    columns = _columns(run.front, modalities)
    if run.front_generation is None:
        front_note = ("No generation has finished yet: these are the non-dominated candidates evaluated so far "
                      "(provisional).") if run.front else "No multimodal candidate has been evaluated yet."
    else:
        final = run.finished and run.front_generation == max(g.generation for g in run.generations)
        front_note = (f"Front after generation {run.front_generation}"
                      + (" (the final front; test metrics are measured for it)." if final else
                         " (the search has not finished: no test metric yet)."))
    unimodal = []
    for m in modalities:
        evals = run.backbones.get(m, [])
        front = sorted(pareto_of(evals), key=lambda e: (-e.val_metric, e.latency_ms, e.key))
        labels = [label for label, _ in front[0].arch.table_fields()] if front else []
        rows = [{"id": short_id(e.key), "key": e.key, "fields": [v for _, v in e.arch.table_fields()],
                 "val": metric(e.val_metric), "test": metric(e.test_metric), "latency": f"{e.latency_ms:.3f}",
                 "energy": f"{e.energy_mj:.3f}"}
                for e in front]
        unimodal.append({"modality": m, "image": images.get(f"unimodal-{m}"), "count": len(evals),
                         "labels": labels, "rows": rows,
                         "kind": run.config.get("modalities", {}).get(m, {}).get("type", "-")})
    by_key = {e.key: e for e in run.front}
    figures = [{"key": d.key, "id": short_id(d.key), "svg": Markup(d.svg) if d.svg else None, "dot": d.dot,
                "problem": d.problem, "files": [f.name for f in d.files],
                "macro": by_key[d.key].candidate.macro if d.key in by_key else None,
                "reads": modalities_text(by_key[d.key]) if d.key in by_key else ""}
               for d in diagrams]
    rows = [_model_row(e, columns, data.exports.get(e.key)) for e in run.front]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TEMPLATE).render(
        title=f"harmonic-nas report: {data.name}", facts=_facts(data), notes=data.problems, metric=run.metric,
        front_note=front_note, columns=columns, rows=rows, int8=any(row["int8"] for row in rows),
        images=images, ablation=_ablation_rows(data) if data.baselines else [], unimodal=unimodal,
        figures=figures, version=__version__, generated=_when(time.time()),
    )


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
         margin: 0; background: #fafafa; }
  main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 40px; background: #fff; }
  h1 { font-size: 22px; margin: 4px 0 12px; }
  h2 { font-size: 18px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
  h3 { font-size: 15px; margin: 18px 0 6px; }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
  dl.facts dt { font-weight: 600; color: #555; }
  dl.facts dd { margin: 0; }
  nav { margin: 14px 0 0; font-size: 13px; }
  nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
  p.note { color: #555; margin: 4px 0 10px; }
  ul.problems { color: #a33; }
  table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
  th, td { border: 1px solid #d8d8d8; padding: 3px 6px; text-align: left; vertical-align: top; }
  div.wide { overflow-x: auto; }  /* a table wider than the page (many modalities) scrolls, not clipped */
  td.measured span, td.int8 { white-space: nowrap; }
  table.pareto { font-size: 12px; }
  th { background: #f1f3f6; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.arch { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; white-space: nowrap; }
  td.id { font-family: ui-monospace, Menlo, Consolas, monospace; }
  tr.main td { background: #fff3f3; }
  svg.plot { max-width: 100%; height: auto; display: block; margin: 6px 0; }
  .diagrams { display: flex; flex-wrap: wrap; gap: 18px; }
  figure.diagram { margin: 0; padding: 8px; border: 1px solid #e2e2e2; border-radius: 4px; max-width: 100%; }
  figure.diagram svg { max-width: 100%; height: auto; }
  figure.diagram figcaption { font-size: 12px; color: #444; margin-bottom: 4px; }
  pre.dot { font-size: 11px; background: #f6f6f6; padding: 8px; overflow-x: auto; max-width: 540px; }
  footer { margin-top: 30px; font-size: 12px; color: #777; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<dl class="facts">
{% for label, value in facts %}
  <dt>{{ label }}</dt><dd>{{ value }}</dd>
{% endfor %}
</dl>
{% if notes %}
<ul class="problems">
{% for note in notes %}  <li>{{ note }}</li>
{% endfor %}
</ul>
{% endif %}
<nav><a href="#pareto">Pareto models</a><a href="#front">multimodal front</a><a href="#hypervolume">hypervolume</a>
{% if ablation %}<a href="#ablation">ablation</a>{% endif %}<a href="#unimodal">unimodal fronts</a><a href="#fusion">fusion diagrams</a></nav>

<h2 id="pareto">Pareto models</h2>
<p class="note">{{ front_note }} Backbones: K kernel sizes and E expand ratios of the active blocks, stage
after stage, D depth per stage (MobileNetV3); units of the first block, blocks, pieces per
maxout unit and width multiplier per block (Maxout). "reads": the
modalities whose taps the fusion network reads. Val metrics are measured on the val score part, which no
architecture step or epoch choice saw. Latency: the LUT's prediction; measured: the latency measured when
the model was exported to models/&lt;id&gt;/ (harmonic-nas export), per format (hover for how it was timed and
how much slower than at the LUT's calibration the machine ran then: a shared host's other tenants move whole-model
times by tens of percent).
{% if int8 %}Float / INT8: a model exported both as a float format (model.onnx preferred) and as
model.int8.onnx (--format onnx-int8): the val metric of each (in brackets the INT8 change in points) and
the measured latency of each (in brackets INT8 / float; hover for the runtimes: with a torch LUT the float
export is timed in eager PyTorch, so for ONNX Runtime float against INT8 run benchmarks/int8.py).{% endif %}</p>
{% if rows %}
<div class="wide">
<table class="pareto">
  <thead>
    <tr><th rowspan="2">id</th><th rowspan="2" class="num">gen</th>
{% for modality, labels in columns %}      <th colspan="{{ labels|length }}">{{ modality }}</th>
{% endfor %}
      <th rowspan="2" class="num">cells</th><th rowspan="2" class="num">nodes</th><th rowspan="2">reads</th>
      <th rowspan="2" class="num">val {{ metric }}</th><th rowspan="2" class="num">test {{ metric }}</th>
      <th rowspan="2" title="test points lost when one modality's features are shuffled across samples: ~0 means the model is wired to that modality but does not rely on it">test, a modality shuffled (points)</th>
      <th rowspan="2" class="num">latency (ms)</th><th rowspan="2" class="num">measured (ms)</th>
      <th rowspan="2" class="num">energy (mJ)</th>
{% if int8 %}      <th rowspan="2" class="num">val float / INT8</th><th rowspan="2" class="num">measured float / INT8 (ms)</th>
{% endif %}</tr>
    <tr>{% for modality, labels in columns %}{% for label in labels %}<th>{{ label }}</th>{% endfor %}{% endfor %}</tr>
  </thead>
  <tbody>
{% for row in rows %}
    <tr><td class="id" title="{{ row.key }}">{{ row.id }}</td><td class="num">{{ row.generation }}</td>
{% for value in row.backbones %}<td class="arch">{{ value }}</td>{% endfor %}
<td class="num">{{ row.cells }}</td><td class="num">{{ row.nodes }}</td><td>{{ row.reads }}</td><td class="num">{{ row.val }}</td>
<td class="num">{{ row.test }}</td><td>{{ row.shuffled }}</td><td class="num">{{ row.latency }}</td>
<td class="num measured">{% for m in row.measured %}<span title="{{ m.how }}">{{ m.text }}</span>{% if not loop.last %}<br>{% endif %}{% else %}–{% endfor %}</td>
<td class="num">{{ row.energy }}</td>
{% if int8 %}{% if row.int8 %}<td class="num int8">{{ row.int8.val }}</td><td class="num int8" title="{{ row.int8.how }}">{{ row.int8.latency }}</td>{% else %}<td class="num int8">–</td><td class="num int8">–</td>{% endif %}
{% endif %}</tr>
{% endfor %}
  </tbody>
</table>
</div>
{% endif %}

<h2 id="front">Multimodal front</h2>
<p class="note">Every evaluated multimodal candidate (grey) and the Pareto models (red, with their ids), as in the
paper's Figure 3: error against latency and against energy. Hover a point for its id and numbers.</p>
{{ images['multimodal-front'].svg }}

<h2 id="hypervolume">Hypervolume per generation</h2>
<p class="note">Hypervolume of the front after each finished generation, objectives scaled by the reference point
(so within [0, 1]; the same reference for every variant of this config).</p>
{{ images['hypervolume'].svg }}

{% if ablation %}
<h2 id="ablation">Ablation (paper Figure 4)</h2>
<p class="note">The best-accuracy model of each search variant present: fixed backbones and dense fusion (FB+FF),
searched fusion (FB+SF), searched backbones (SB+SF), hardware objectives (SB+SF+HW, the full method), random search.</p>
{{ images['ablation'].svg }}
<table class="ablation">
  <thead><tr><th>variant</th><th>best model</th><th class="num">val {{ metric }}</th><th class="num">test {{ metric }}</th>
    <th class="num">latency (ms)</th><th class="num">energy (mJ)</th><th class="num">candidates</th><th>generations</th>
    <th class="num">wall time</th></tr></thead>
  <tbody>
{% for row in ablation %}
    <tr{% if row.main %} class="main"{% endif %}><td>{{ row.label }} ({{ row.variant }})</td><td class="id" title="{{ row.key }}">{{ row.id }}</td>
<td class="num">{{ row.val }}</td><td class="num">{{ row.test }}</td><td class="num">{{ row.latency }}</td>
<td class="num">{{ row.energy }}</td><td class="num">{{ row.candidates }}</td><td>{{ row.generations }}</td>
<td class="num">{{ row.wall }}</td></tr>
{% endfor %}
  </tbody>
</table>
{% endif %}

<h2 id="unimodal">Unimodal fronts (stage 1)</h2>
<p class="note">Every backbone scored in stage 1 (BN-recalibrated val metric, LUT latency and energy as a standalone
classifier), its Pareto backbones in red. The test metric is measured for the best backbone of each modality.</p>
{% for u in unimodal %}
<h3>{{ u.modality }} ({{ u.kind }}): {{ u.count }} backbones evaluated</h3>
{% if u.image %}{{ u.image.svg }}{% endif %}
{% if u.rows %}
<table class="unimodal">
  <thead><tr><th>id</th>{% for label in u.labels %}<th>{{ label }}</th>{% endfor %}<th class="num">val {{ metric }}</th>
    <th class="num">test {{ metric }}</th><th class="num">latency (ms)</th><th class="num">energy (mJ)</th></tr></thead>
  <tbody>
{% for row in u.rows %}
    <tr><td class="id" title="{{ row.key }}">{{ row.id }}</td>{% for value in row.fields %}<td class="arch">{{ value }}</td>{% endfor %}
<td class="num">{{ row.val }}</td><td class="num">{{ row.test }}</td><td class="num">{{ row.latency }}</td><td class="num">{{ row.energy }}</td></tr>
{% endfor %}
  </tbody>
</table>
{% endif %}
{% else %}
<p class="note">No backbone evaluated (this variant does not search backbones, or nothing ran yet).</p>
{% endfor %}

<h2 id="fusion">Fusion networks of the Pareto models</h2>
<p class="note">Taps (ellipses) feed fusion cells; each node applies one operator; dashed grey parts are never built
by the derived network. DOT, SVG and PNG files are in fusion/ beside this page.</p>
<div class="diagrams">
{% for f in figures %}
<figure class="diagram">
  <figcaption><b title="{{ f.key }}">{{ f.id }}</b>{% if f.macro %}: {{ f.macro.cells }} cells x {{ f.macro.nodes }} nodes{% endif %}{% if f.reads %}, reads {{ f.reads }}{% endif %}
{% if f.problem %} ({{ f.problem }}){% endif %}</figcaption>
{% if f.svg %}
  {{ f.svg }}
{% elif f.dot %}
  <p class="note">Graphviz (dot) is not installed: the diagram as DOT text.</p>
  <pre class="dot">{{ f.dot }}</pre>
{% endif %}
</figure>
{% else %}
<p class="note">No Pareto model yet.</p>
{% endfor %}
</div>

<footer>Generated by harmonic-nas {{ version }} on {{ generated }}.
Plots: {% for name, image in images.items() %}{{ image.path.name }}{% if not loop.last %}, {% endif %}{% endfor %} (beside this page).</footer>
</main>
</body>
</html>
"""
