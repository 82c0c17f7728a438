"""Fusion diagram of a genotype as Graphviz DOT text (no dependency), rendered when ``dot`` is installed.

Parts that run are drawn solid; cells, nodes and taps the derived network never builds are dashed grey.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harmonic_nas.space.genotype import Genotype

_DEAD = ', style="dashed", color="gray60", fontcolor="gray60"'


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def genotype_dot(genotype: Genotype, title: str | None = None) -> str:
    """DOT text of a derived ``genotype``: taps -> cells (their nodes and operators) -> output head."""
    live = genotype.live
    num_taps = len(genotype.taps)
    lines = ["digraph fusion {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    for t, (modality, stage) in enumerate(genotype.taps):
        style = "" if t in live.taps else _DEAD
        lines.append(f"  t{t} [label={_quote(f'{modality} {stage}')}, shape=ellipse{style}];")

    def source(index: int) -> str:
        return f"t{index}" if index < num_taps else f"c{index - num_taps}_out"

    for p, cell in enumerate(genotype.cells):
        cell_live = p in live.cells
        lines.append(f"  subgraph cluster_c{p} {{")
        lines.append(f"    label={_quote(f'cell {p}')};" + ("" if cell_live else ' style="dashed"; color="gray60";'))
        for d, node in enumerate(cell.nodes):
            style = "" if d in live.nodes[p] else _DEAD
            lines.append(f"    c{p}n{d} [label={_quote(node.op)}{style}];")
        lines.append(f"    c{p}_out [label=\"+ input 0\\nLayerNorm\", shape=oval{'' if cell_live else _DEAD}];")
        lines.append("  }")
        inputs = [source(i) for i in cell.inputs]
        for d, node in enumerate(cell.nodes):
            style = " [style=dashed, color=gray60]" if d not in live.nodes[p] else ""
            for i in node.inputs:
                origin = inputs[i] if i < 2 else f"c{p}n{i - 2}"
                lines.append(f"  {origin} -> c{p}n{d}{style};")
        dead = " [style=dashed, color=gray60]" if not cell_live else ""
        lines.append(f"  c{p}n{len(cell.nodes) - 1} -> c{p}_out{dead};")
        lines.append(f"  {inputs[0]} -> c{p}_out [style=dotted{', color=gray60' if dead else ''}];")
    lines.append('  head [label="concat\\nLayerNorm, ReLU\\nLinear", shape=doubleoctagon];')
    lines += [f"  c{p}_out -> head;" for p in genotype.outputs]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_diagram(genotype: Genotype, path: Path, formats: Sequence[str] = ("svg", "png"),
                  title: str | None = None) -> list[Path]:
    """Write ``path`` (.dot) and, if the Graphviz ``dot`` binary is installed, one rendering per format.

    Returns the files written; without Graphviz only the DOT file (the caller can tell the user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(genotype_dot(genotype, title), encoding="utf-8")
    written = [path]
    binary = shutil.which("dot")
    if binary is None:
        return written
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        subprocess.run([binary, f"-T{fmt}", str(path), "-o", str(target)], check=True, capture_output=True)
        written.append(target)
    return written
