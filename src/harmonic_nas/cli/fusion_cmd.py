"""``harmonic-nas fusion-search``: stage 2 alone (fusion search + derived fine-tune) for given backbones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harmonic_nas.cli.params import DEVICE, computed, config_option, set_option
from harmonic_nas.config import load_config
from harmonic_nas.cli.views import progress_on_demand
from harmonic_nas.console import console


@click.command("fusion-search")
@config_option(required=True)
@click.option("--arch", "arch_path", required=True, type=click.Path(path_type=Path),
              help='Candidate JSON: {"backbones": {modality: arch}, "macro": {"cells": C, "nodes": D}}.')
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None,
              help=computed("Result JSON (RUN_DIR/fusion/ is the search's).", "RUN_DIR/fusion-search/<candidate id>.json"))
@click.option("--device", type=DEVICE, help=computed("Device to train on.", "from runtime.device"))
@click.option("--cache-mb", type=float, default=None,
              help=computed("Memory bound of the backbone-feature cache.", "from runtime.feature_cache_mb"))
@set_option("fusion.epochs=2")
def fusion_search(
    config_path: Path, arch_path: Path, out_path: Path | None, device: str | None, cache_mb: float | None,
    overrides: tuple[str, ...],
) -> None:
    """Search the fusion of one candidate on its frozen backbones (trained supernets of the run), derive
    and fine-tune it; writes the result JSON (genotype, val metric, LUT cost, timings), the derived
    fusion weights (.pt) and a fusion diagram (.dot, plus .svg/.png when Graphviz is installed).

    \b
    Examples (cand.json: the candidate of a model the search found):
      harmonic-nas export /tmp/smoke --out /tmp/model && jq .candidate /tmp/model/arch.json > cand.json
      harmonic-nas fusion-search --config configs/smoke.yaml --set output.run_dir=/tmp/smoke --arch cand.json
      harmonic-nas fusion-search --config configs/smoke.yaml --set output.run_dir=/tmp/smoke --arch cand.json \\
          --set fusion.epochs=2 --out /tmp/cand-2-epochs.json
    """
    from harmonic_nas.pipeline import fusion_search as search_fusion
    from harmonic_nas.pipeline import read_candidate

    cfg = load_config(config_path, list(overrides))
    candidate = read_candidate(arch_path, cfg)
    with progress_on_demand("loss", "select", "lat_ms", "mJ") as display:
        tasks: dict[str, Any] = {}

        def on_epoch(phase: str, epochs: int, record: dict[str, Any]) -> None:
            progress = display()
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=epochs, loss="-", select="-", lat_ms="-", mJ="-")
            fields = {"loss": f"{record['loss']:.4f}", "select": f"{record['select_metric']:.4f}"}
            if "expected_latency_ms" in record:
                fields.update(lat_ms=f"{record['expected_latency_ms']:.3f}", mJ=f"{record['expected_energy_mj']:.3f}")
            progress.update(tasks[phase], advance=1, **fields)

        found = search_fusion(cfg, candidate, out=out_path, device=device, cache_mb=cache_mb, on_epoch=on_epoch,
                              source=str(config_path))
    result = found.result
    console.log(
        f"{result['metric']} (val score part) {result['val_metric']:.4f} | derived fusion ops "
        f"{result['derived']['latency_ms']:.3f} ms, {result['derived']['energy_mj']:.3f} mJ | "
        f"{result['timings']['total_s']:.1f} s"
    )
    console.log(f"wrote {found.path}, {found.weights}, " + ", ".join(str(p) for p in found.diagrams))
    if len(found.diagrams) == 1:
        console.log("Graphviz 'dot' not found: only the DOT text was written (install graphviz to render it)")
