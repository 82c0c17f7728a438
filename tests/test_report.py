"""harmonic-nas report: the HTML page of a real (small) search run and its baselines, of a run with no
finished generation, without Graphviz, from the CLI, and rendered in headless Chromium."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from xml.etree import ElementTree
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from helpers import IMAGE_SPACE, THUMB_SPACE, image_supernet, make_lut, small_fusion, thumb_supernet

from harmonic_nas.cli import main
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.costing.catalog import search_space_specs
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.report.writer import write_report
from harmonic_nas.report.format import short_id
from harmonic_nas.report.plots import SVG, front_figure
from harmonic_nas.search.engine import SearchEngine
from harmonic_nas.search.evaluator import Evaluator, EvaluatorSpec
from harmonic_nas.search.executors import InlineExecutor
from harmonic_nas.search.runner import add_test_metrics
from harmonic_nas.search.store import RunStore
from harmonic_nas.search.variants import Variant
from harmonic_nas.space import Genotype, MaxoutArch, MBV3Arch

SHAPES = {"image": (1, 28, 28), "thumb": (49,)}
TAPS = {"image": 2, "thumb": 2}
GENOTYPE = {"taps": [["image", 0], ["image", 1], ["thumb", 0], ["thumb", 1]],
            "cells": [{"inputs": [1, 3], "nodes": [{"inputs": [0, 1], "op": "concat_fc"}]}]}


def config(run_dir: Path) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "name": "reportrun",
        "output": {"run_dir": str(run_dir)},
        "modalities": {"image": IMAGE_SPACE.model_dump(mode="json"), "thumb": THUMB_SPACE.model_dump(mode="json")},
        "supernet": {"bn_calib_samples": 256, "channels_last": False, "batch_size": 256},
        "search": {"population": 4, "generations": 2, "top_fraction": 0.5},
        "fusion": small_fusion(epochs=1, finetune_epochs=1, batch_size=256).model_dump(mode="json"),
        "hardware": {"device": "testcpu"},
        "runtime": {"threads": 1, "workers": 1},
    })


def search(cfg: ExperimentConfig, lut: Any, dataset: Any, variant: str, evaluator: Evaluator) -> RunStore:
    """A real search (untrained supernets, real data) into the run dir (the full method) or baselines/<v>."""
    folder = cfg.run_dir if variant == "sb-sf-hw" else cfg.run_dir / "baselines" / variant
    store = RunStore.create(folder, {"config": cfg.model_dump(mode="json"), "variant": variant, "seed": 0})
    costs = CostModel(lut, cfg, SHAPES, 10)
    front = SearchEngine(cfg, store, InlineExecutor(evaluator), Variant.named(variant), costs, TAPS).run()
    add_test_metrics(store, front, lambda: evaluator)
    return store


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, mnist_pair: Any) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("report") / "run"
    cfg = config(run_dir)
    lut = make_lut(8, 4, specs=search_space_specs(cfg, SHAPES, 10))
    lut.save(run_dir / "lut" / "testcpu.json")
    evaluator = Evaluator(EvaluatorSpec(cfg.model_dump(mode="json"), {"image": image_supernet(), "thumb": thumb_supernet()},
                                        lut, dataset=mnist_pair))
    with search(cfg, lut, mnist_pair, "sb-sf-hw", evaluator) as store:
        front = store.pareto_front()
        candidates = store.evaluations("candidate")
    search(cfg, lut, mnist_pair, "fb-ff", evaluator).close()
    index = write_report(run_dir)
    return {"run_dir": run_dir, "index": index, "html": index.read_text(encoding="utf-8"), "front": front,
            "candidates": candidates}


def external_references(html: str) -> list[str]:
    return re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<script|<link|@import|<iframe", html, flags=re.I)


def test_report_files_and_header(run: dict[str, Any]) -> None:
    out = run["run_dir"] / "report"
    assert run["index"] == out / "index.html"
    for name in ("multimodal-front", "hypervolume", "ablation", "unimodal-image", "unimodal-thumb"):
        root = ElementTree.parse(out / f"{name}.svg").getroot()  # a standalone SVG file beside the page
        assert root.tag == f"{{{SVG}}}svg" and float(root.get("width").removesuffix("pt")) > 300, name
    assert not list(out.glob("*.png"))
    html = run["html"]
    assert "<h1>harmonic-nas report: reportrun</h1>" in html
    assert "2 of 2 finished" in html
    assert f"{len(run['candidates'])} multimodal candidates" in html
    assert "device testcpu, runtime torch" in html and "estimated:fixture" in html
    assert "search wall time" in html


def test_report_is_self_contained(run: dict[str, Any]) -> None:
    html = run["html"]
    assert external_references(html) == []
    assert "<img" not in html
    assert len(re.findall(r'<svg [^>]*class="plot"', html)) == 5  # the plots, inline


def test_pareto_table_has_one_row_per_front_model(run: dict[str, Any]) -> None:
    html = run["html"]
    table = html.split('<table class="pareto">')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td class=\"id\" title=\"([0-9a-f]+)\">([0-9a-f]+)</td>", table)
    assert [key for key, _ in rows] == [e.key for e in run["front"]]
    assert all(short == short_id(key) for key, short in rows)
    for e in run["front"]:
        assert f"{e.val_metric:.4f}" in table and f"{e.latency_ms:.3f}" in table and f"{e.energy_mj:.3f}" in table
        assert e.test_metric is not None and f"{e.test_metric:.4f}" in table
        lost = [f"{m} {100 * (e.test_shuffled[m] - e.test_metric):+.1f}" for m in ("image", "thumb")]
        assert f"<td>{', '.join(lost)}</td>" in table  # test points lost with each modality shuffled
        for _, value in e.arch.backbones["image"].table_fields() + e.arch.backbones["thumb"].table_fields():
            assert value in table
    assert "<th>K</th><th>E</th><th>D</th>" in table and "<th>hidden</th><th>blocks</th><th>pieces</th><th>width_mult</th>" in table
    assert "val accuracy" in table and "test accuracy" in table
    assert all(e.modalities_used == ["image", "thumb"] for e in run["front"])  # multimodal by construction
    assert "<th rowspan=\"2\">reads</th>" in table and table.count("<td>image+thumb</td>") == len(run["front"])
    best = max(run["front"], key=lambda e: e.val_metric)
    gain = html.split("<dt>fusion gain</dt>")[1].split("</dd>")[0]
    assert (f"best multimodal {short_id(best.key)} [image+thumb] (val {best.val_metric:.4f} / test "
            f"{best.test_metric:.4f})") in gain


def _plot_titles(html: str, section: str) -> list[tuple[str, ElementTree.Element]]:
    """(title text, the group it titles) of every titled element of the inline plot under ``section``."""
    svg = html.split(f'<h2 id="{section}">')[1].split("<h2")[0]
    svg = svg[svg.index("<svg"):svg.index("</svg>") + len("</svg>")]
    root = ElementTree.fromstring(svg)  # inline SVG: well-formed XML with no namespace
    return [(group.find("title").text, group) for group in root.iter("g") if group.find("title") is not None]


def test_every_point_of_the_fronts_has_a_title_with_its_id(run: dict[str, Any]) -> None:
    titles = _plot_titles(run["html"], "front")
    assert all(group.find("g/use") is not None for _, group in titles)  # on the point's own marker
    texts = [text for text, _ in titles]
    assert len(texts) == 2 * len(run["candidates"])  # every candidate, in both panels
    front = {e.key for e in run["front"]}
    for e in run["candidates"]:
        text = (f"{short_id(e.key)}{' (Pareto)' if e.key in front else ''}: val accuracy {e.val_metric:.4f}, "
                f"latency {e.latency_ms:.3f} ms, energy {e.energy_mj:.3f} mJ, reads image+thumb")
        assert texts.count(text) == 2, text
    backbones = [text for text, _ in _plot_titles(run["html"], "unimodal")]
    assert backbones and all(text.startswith("image backbone ") for text in backbones)


def test_legends_sit_outside_the_axes(run: dict[str, Any]) -> None:
    fig, _ = front_figure(run["candidates"], run["front"], "accuracy", "front")
    fig.draw_without_rendering()
    (legend,) = fig.legends
    box = legend.get_window_extent()
    assert fig.axes and all(not box.overlaps(ax.get_window_extent()) for ax in fig.axes)


def test_fusion_diagrams_and_ablation(run: dict[str, Any]) -> None:
    html = run["html"]
    folder = run["run_dir"] / "report" / "fusion"
    for e in run["front"]:
        assert (folder / f"{e.key}.dot").is_file()
    if shutil.which("dot"):
        assert html.split('<h2 id="fusion">')[1].count("<svg") == len(run["front"])
        assert all((folder / f"{e.key}.svg").is_file() for e in run["front"])
    ablation = html.split('<table class="ablation">')[1].split("</table>")[0]
    assert "FB+FF (fb-ff)" in ablation and "SB+SF+HW (sb-sf-hw)" in ablation


def test_arch_fields_show_active_blocks() -> None:
    arch = MBV3Arch(ks=[3, 5, 7, 3], e=[4.0, 3.0, 6.0, 3.0], d=[1, 2])
    assert arch.table_fields() == [("K", "[3, 7, 3]"), ("E", "[4, 6, 3]"), ("D", "[1, 2]")]
    maxout = MaxoutArch(hidden=128, blocks=2, pieces=4, width_mult=2.0)
    assert maxout.table_fields() == [("hidden", "128"), ("blocks", "2"), ("pieces", "4"), ("width_mult", "2")]


def _result(val: float, latency: float, genotype: dict[str, Any] | None = None) -> dict[str, Any]:
    result = {"metric": "accuracy", "val_metric": val, "latency_ms": latency, "energy_mj": 2 * latency, "seconds": 1.0}
    return {**result, "genotype": genotype} if genotype else result


def test_report_of_a_run_without_a_finished_generation(tmp_path: Path) -> None:
    cfg = config(tmp_path / "run")
    with RunStore.create(cfg.run_dir, {"config": cfg.model_dump(mode="json"), "variant": "sb-sf-hw", "seed": 0}) as store:
        store.start_generation(0, {"population": []})
        image = {"ks": [3, 3, 5, 3], "e": [3.0, 3.0, 4.0, 3.0], "d": [1, 2]}
        thumb = {"hidden": 16, "blocks": 1, "pieces": 2, "width_mult": 1.0}
        space = store.space
        store.add_evaluation("image:aaaa1111", "backbone", "image", 0, space.backbones["image"].parse(image),
                             _result(0.8, 1.0))
        store.add_evaluation("thumb:bbbb2222", "backbone", "thumb", 0, space.backbones["thumb"].parse(thumb),
                             _result(0.6, 0.5))
        candidate = space.parse({"backbones": {"image": image, "thumb": thumb}, "macro": {"cells": 1, "nodes": 1}})
        store.add_evaluation("c0ffee0000000001", "candidate", None, 0, candidate, _result(0.9, 2.0, GENOTYPE))
        store.add_evaluation("c0ffee0000000002", "candidate", None, 0, candidate, _result(0.85, 3.0, GENOTYPE))
    (tmp_path / "out").mkdir()
    for stale in ("ablation.svg", "multimodal-front.png"):  # of an earlier report (baselines since gone; PNG)
        (tmp_path / "out" / stale).write_text("old")
    html = write_report(cfg.run_dir, tmp_path / "out").read_text(encoding="utf-8")
    assert "0 of 2 finished, generation 0 running" in html
    assert "No generation has finished yet" in html
    pareto = html.split('<h2 id="pareto">')[1].split("<h2")[0]
    assert 'title="c0ffee0000000001">c0ffee00<' in pareto and "c0ffee0000000002" not in pareto  # dominated
    assert (tmp_path / "out" / "hypervolume.svg").is_file() and not (tmp_path / "out" / "ablation.svg").exists()
    assert (tmp_path / "out" / "multimodal-front.svg").is_file() and not list((tmp_path / "out").glob("*.png"))
    assert "LUT" in html and "file not found" in html
    assert external_references(html) == []


def test_report_without_graphviz_shows_dot_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harmonic_nas.fusion.diagram as diagram

    monkeypatch.setattr(diagram.shutil, "which", lambda name: None)
    cfg = config(tmp_path / "run")
    with RunStore.create(cfg.run_dir, {"config": cfg.model_dump(mode="json"), "variant": "sb-sf-hw", "seed": 0}) as store:
        store.start_generation(0, {"population": []})
        candidate = store.space.parse({"backbones": {"image": {"ks": [3] * 4, "e": [3.0] * 4, "d": [1, 1]},
                                                     "thumb": {"hidden": 16, "blocks": 1, "pieces": 2, "width_mult": 1.0}},
                                       "macro": {"cells": 1, "nodes": 1}})
        store.add_evaluation("feed000000000001", "candidate", None, 0, candidate, _result(0.7, 1.0, GENOTYPE))
        store.finish_generation(0, {"hypervolume": 0.3, "front_size": 1, "best_val_metric": 0.7, "seconds": 1.0},
                                store.evaluations("candidate"))
    html = write_report(cfg.run_dir).read_text(encoding="utf-8")
    diagrams = html.split('<h2 id="fusion">')[1]
    assert "<svg" not in diagrams and '<pre class="dot">digraph fusion {' in diagrams
    assert "concat_fc" in html and "1 of 2 finished" in html
    assert not list((cfg.run_dir / "report" / "fusion").glob("*.svg"))


def test_cli_report(tmp_path: Path, run: dict[str, Any]) -> None:
    result = CliRunner().invoke(main, ["report", str(run["run_dir"]), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").is_file()
    missing = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert missing.exit_code == 2
    assert missing.output.strip().count("\n") == 0 and missing.output.startswith("error: ")
    assert "no search store" in missing.output


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(run: dict[str, Any], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
         run["index"].resolve().as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    assert shot.is_file()
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables and plots, not a blank page
    assert (pixels < 128).mean() > 0.01


def test_fusion_gain_counts_only_models_that_read_two_modalities() -> None:
    from harmonic_nas.report.format import fusion_gain
    from harmonic_nas.search.store import Evaluation

    def model(key: str, val: float, taps: list[list[Any]], cells: list[dict[str, Any]]) -> Evaluation:
        genotype = Genotype.parse({"taps": taps, "cells": cells})
        return Evaluation(key, "candidate", None, 0, {}, val, 1.0, 1.0, genotype, val, {}, 0.0)

    taps = [["image", 0], ["image", 1], ["audio", 0]]
    node = [{"inputs": [0, 1], "op": "sum"}]
    image_only = model("aaaa0000", 0.9, taps, [{"inputs": [0, 1], "nodes": node}])
    fused = model("bbbb0000", 0.7, taps, [{"inputs": [1, 2], "nodes": node}])
    backbone = Evaluation("image:cccc0000", "backbone", "image", 0, {}, 0.6, 1.0, 1.0, None, 0.6, {}, 0.0)
    assert image_only.modalities_used == ["image"] and fused.modalities_used == ["image", "audio"]
    line = fusion_gain([image_only, fused], [backbone])
    assert line is not None and line.startswith("best multimodal bbbb0000 [image+audio]") and "+10.0 points val" in line
    assert "no Pareto model reads two or more modalities" in str(fusion_gain([image_only], [backbone]))
    assert "shuffled" not in line  # no shuffled scores yet: nothing claimed
    fused.result["test_shuffled"] = {"image": 0.4, "audio": 0.695}
    assert line + "; test points it loses with a modality shuffled: image -30.0, audio -0.5" == fusion_gain([fused], [backbone])


@pytest.mark.parametrize("width", [80, 200])
def test_the_terminal_tables_show_every_number_whole_and_the_points_each_shuffled_modality_costs(
        run: dict[str, Any], width: int) -> None:
    from rich.console import Console

    from harmonic_nas.cli.views import front_table, reliance_table

    console = Console(width=width, record=True)
    console.print(front_table(run["front"], "front"))  # 80 columns: a log file; the numbers must not truncate
    text = console.export_text()
    assert "…" not in text and "shuffled" not in text
    lines = text.splitlines()
    for e in run["front"]:
        at = next(i for i, line in enumerate(lines) if e.key[:8] in line)
        row = lines[at].split("│")
        assert [cell.strip() for cell in row[5:9]] == [f"{e.val_metric:.4f}", f"{e.test_metric:.4f}",
                                                      f"{e.latency_ms:.3f}", f"{e.energy_mj:.3f}"], row
        rows = [line.split("│") for line in lines[at:]]
        rows = rows[:next((i for i, r in enumerate(rows[1:], 1) if len(r) < 9 or r[1].strip()), len(rows))]
        backbones = [r[2].strip() for r in rows]  # a line each, a long one folded onto the next lines
        assert "".join(backbones) == "".join(f"{m}:{a.short_text()}" for m, a in e.candidate.backbones.items())
        assert all(any(b.startswith(f"{m}:") for b in backbones) for m in e.candidate.backbones), backbones
        assert [r[4].strip() for r in rows if r[4].strip()] == e.modalities_used, rows  # names whole
    console = Console(width=width, record=True)
    console.print(reliance_table(run["front"]))
    text = console.export_text()
    assert "shuffled" in text and "not relied on" in text and "…" not in text
    for e in run["front"]:
        row = next(line for line in text.splitlines() if e.key[:8] in line)
        lost = [f"{100 * (e.test_shuffled[m] - e.test_metric):+.1f}" for m in ("image", "thumb")]
        assert row.strip(" │").split()[-3:] == [lost[0], "│", lost[1]], row
    no_scores = [dataclasses.replace(e, result={**e.result, "test_shuffled": {}}) for e in run["front"]]
    assert reliance_table(no_scores) is None  # a search still running: no table claims anything
