"""``harmonic-nas fusion-search``: stage 2 alone (fusion search + derived fine-tune) for given backbones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harmonic_nas.cli.checks import dataset_modalities, own_run
from harmonic_nas.config import load_config
from harmonic_nas.console import console, make_progress
from harmonic_nas.errors import UserError
from harmonic_nas.jsonfile import read_json, write_json
from harmonic_nas.runtime import configure_threads, resolve_device


@click.command("fusion-search")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Experiment config (YAML).")
@click.option("--arch", "arch_path", required=True, type=click.Path(path_type=Path),
              help='Candidate JSON: {"backbones": {modality: arch}, "macro": {"cells": C, "nodes": D}}.')
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None,
              help="Result JSON (default: runs/<name>/fusion-search/<candidate id>.json; runs/<name>/fusion/ is the search's).")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: runtime.device of the config).")
@click.option("--cache-mb", type=float, default=None,
              help="Memory bound of the backbone-feature cache (default: runtime.feature_cache_mb).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. fusion.epochs=2.")
def fusion_search(
    config_path: Path, arch_path: Path, out_path: Path | None, device: str | None, cache_mb: float | None,
    overrides: tuple[str, ...],
) -> None:
    """Search the fusion of one candidate on its frozen backbones (trained supernets of the run), derive
    and fine-tune it; writes the result JSON (genotype, val metric, LUT cost, timings), the derived
    fusion weights (.pt) and a fusion diagram (.dot, plus .svg/.png when Graphviz is installed)."""
    from harmonic_nas.data.registry import load_dataset
    from harmonic_nas.fusion.diagram import write_diagram
    from harmonic_nas.fusion.discrete import save_fusion
    from harmonic_nas.fusion.features import FeatureCache, FeatureSettings
    from harmonic_nas.fusion.stage2 import stage2
    from harmonic_nas.search.runner import load_run_lut, load_run_supernets
    from harmonic_nas.space.candidate import CandidateSpace

    cfg = load_config(config_path, list(overrides))
    dataset_modalities(cfg, str(config_path))
    if out_path is None:  # the result goes into the run
        own_run(cfg.run_dir, existing=True)
    raw = read_json(arch_path, "arch file")
    try:
        candidate = CandidateSpace.from_config(cfg).parse(raw)
    except UserError as exc:
        raise UserError(f"{arch_path}: {exc}") from None
    configure_threads(cfg.runtime.threads)
    torch_device = resolve_device(device or cfg.runtime.device)

    supernets = load_run_supernets(cfg, torch_device, str(config_path))
    lut = load_run_lut(cfg)  # the hardware loss must cost the device the config targets
    dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed)
    settings = FeatureSettings.from_config(cfg, torch_device)

    with make_progress("loss", "select", "lat_ms", "mJ") as progress:
        tasks: dict[str, Any] = {}

        def on_epoch(phase: str, epochs: int, record: dict[str, Any]) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=epochs, loss="-", select="-", lat_ms="-", mJ="-")
            fields = {"loss": f"{record['loss']:.4f}", "select": f"{record['select_metric']:.4f}"}
            if "expected_latency_ms" in record:
                fields.update(lat_ms=f"{record['expected_latency_ms']:.3f}", mJ=f"{record['expected_energy_mj']:.3f}")
            progress.update(tasks[phase], advance=1, **fields)

        console.log("computing backbone features (once per backbone)")
        cache = FeatureCache(settings, cache_mb or cfg.runtime.feature_cache_mb)
        outcome = stage2(candidate, supernets, dataset, lut, cfg.fusion, cache=cache, seed=cfg.runtime.seed,
                         score_fraction=cfg.search.val_score_fraction, device=torch_device, on_epoch=on_epoch)
    result = outcome.result
    out = out_path or cfg.layout.fusion_search_result(result["candidate_id"])
    write_json(out, result)
    save_fusion(outcome.fusion, out.with_suffix(".pt"))
    drawn = write_diagram(outcome.fusion.genotype, out.with_suffix(".dot"), title=f"candidate {result['candidate_id']}")
    console.log(
        f"{result['metric']} (val score part) {result['val_metric']:.4f} | derived fusion ops "
        f"{result['derived']['latency_ms']:.3f} ms, {result['derived']['energy_mj']:.3f} mJ | "
        f"{result['timings']['total_s']:.1f} s"
    )
    console.log(f"wrote {out}, {out.with_suffix('.pt')}, " + ", ".join(str(p) for p in drawn))
    if len(drawn) == 1:
        console.log("Graphviz 'dot' not found: only the DOT text was written (install graphviz to render it)")
