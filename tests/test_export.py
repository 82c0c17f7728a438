"""Export and reproduce on a real small run: AV-MNIST layout built from real MNIST digits (image 28x28 and
a derived 16x16 "audio" view), small untrained supernets, a fixture LUT, one generation of the two-tier
search; then every export format with its parity checks through real onnxruntime / torch.jit, the rebuilt
model.pt, model selection, retraining from arch.json, and one-line errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from click.testing import CliRunner
from helpers import mnist_arrays
from helpers import IMAGE_SPACE, make_lut, small_fusion

from harmonic_nas.backbones.specs import max_tap_count
from harmonic_nas.cli import main
from harmonic_nas.config import load_config
from harmonic_nas.errors import UserError
from harmonic_nas.export import (
    RunContext, build_model, export_front, load_model, select_model,
)
from harmonic_nas.export.latency import Timing, measure_latency, protocol_of
from harmonic_nas.fusion.features import FeatureSettings
from harmonic_nas.export.reproduce import ArchFile, read_arch, reproduce
from harmonic_nas.costing.catalog import search_space_specs
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.lut import LutEntry
from harmonic_nas.hardware.timing import TimingProtocol
from harmonic_nas.search.engine import SearchEngine
from harmonic_nas.search.evaluator import Evaluator, EvaluatorSpec
from harmonic_nas.search.executors import InlineExecutor
from harmonic_nas.search.runner import add_test_metrics, load_run_supernets
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import Variant
from harmonic_nas.supernet import SupernetTrainer
from harmonic_nas.data.registry import load_dataset

SHAPES = {"image": (1, 32, 32), "audio": (1, 16, 16)}  # every tap pools evenly to the 2x2 grid (L = 4)


def write_dataset(root: Path, n_train: int = 800, n_test: int = 200) -> Path:
    """AV-MNIST numpy layout: real MNIST images padded to 32x32, and as audio a noisy, transposed 16x16 view
    of the digit."""
    xtr, ytr, xva, yva = mnist_arrays()
    rng = np.random.default_rng(0)
    for split, x, y in (("train", xtr[:n_train], ytr[:n_train]), ("test", xva[:n_test], yva[:n_test])):
        images = x.reshape(-1, 28, 28).astype(np.float32)
        small = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
        audio = np.pad(small, ((0, 0), (1, 1), (1, 1))).transpose(0, 2, 1)
        audio = (audio + rng.normal(0, 0.3, audio.shape)).astype(np.float32)
        (root / "image").mkdir(parents=True, exist_ok=True)
        (root / "audio").mkdir(parents=True, exist_ok=True)
        np.save(root / "image" / f"{split}_data.npy", np.pad(images, ((0, 0), (2, 2), (2, 2))))
        np.save(root / "audio" / f"{split}_data.npy", audio)
        np.save(root / f"{split}_labels.npy", y.astype(np.int64))
    return root


def layer_size(key: str) -> int:
    """A crude size of a LUT key's layer: its input elements times its widest channel count."""
    fields = dict(part.split("=", 1) for part in key.split(":")[1:] if "=" in part)
    size = math.prod(int(v) for v in fields.get("in", "1").split("x"))
    return size * max(int(fields.get(k, "1")) for k in ("out", "mid"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished one-generation search in run/, with its config file, supernets (trained for two short
    epochs, so that larger backbones read more and the front has trade-offs) and LUT on disk."""
    tmp = tmp_path_factory.mktemp("export")
    space = IMAGE_SPACE.model_dump(mode="json")
    raw = {
        "name": "exp",
        "dataset": {"name": "avmnist", "path": str(write_dataset(tmp / "avmnist")), "cache_dir": str(tmp / "cache"),
                    "options": {"val_size": 200}},
        "modalities": {"image": space, "audio": space},
        "supernet": {"bn_calib_samples": 256, "batch_size": 64, "epochs": 2, "lr": 3e-3, "random_subnets": 1,
                     "eval_random_subnets": 0},
        "search": {"population": 8, "generations": 1, "top_fraction": 0.5},
        "fusion": small_fusion(epochs=2, finetune_epochs=3, batch_size=64).model_dump(mode="json"),
        "hardware": {"device": "testcpu", "warmup": 2, "repeats": 5},
        "runtime": {"threads": 1, "workers": 1},
        "output": {"run_dir": str(tmp / "run")},
    }
    config_path = tmp / "exp.yaml"
    config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = load_config(config_path)
    lut = make_lut(8, 4, specs=search_space_specs(cfg, SHAPES, 10))
    for key in sorted(lut.entries):  # a layer costs with its size: larger (more accurate) models cost more
        ms = 0.02 + 1e-6 * layer_size(key)
        lut.add(key, LutEntry(latency_ms=ms, latency_std_ms=0.0, energy_mj=2 * ms, repeats=1))
    lut.save(cfg.lut_path)
    dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed)
    for m in cfg.modalities:
        SupernetTrainer(cfg, m, dataset, torch.device("cpu"), show_progress=False).run()
    spec = EvaluatorSpec(cfg.model_dump(mode="json"), load_run_supernets(cfg), lut)
    evaluator = Evaluator(spec)  # loads the dataset through the config, as every command does
    store = RunStore.create(cfg.run_dir, {"config": cfg.model_dump(mode="json"), "variant": "sb-sf-hw", "seed": 0})
    taps = {m: max_tap_count(cfg.modalities[m], SHAPES[m]) for m in cfg.modalities}
    engine = SearchEngine(cfg, store, InlineExecutor(evaluator), Variant.named("sb-sf-hw"),
                          CostModel(lut, cfg, SHAPES, 10), taps)
    add_test_metrics(store, engine.run(), lambda: evaluator)
    front = store.pareto_front()
    store.close()
    assert front and all(e.test_metric is not None for e in front)
    return {"cfg": cfg, "config": config_path, "dir": cfg.run_dir, "front": front, "evaluator": evaluator,
            "tmp": tmp}


@pytest.fixture(scope="module")
def ctx(run: dict[str, Any]) -> RunContext:
    return RunContext.open(run["dir"])


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def manifest_entries(folder: Path) -> list[dict[str, Any]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "harmonic-nas-manifest/1"
    return manifest["exports"]


def arch_inputs(arch: dict[str, Any]) -> list[str]:
    """The inputs the ONNX graph keeps: the modalities the fusion reads."""
    return [i["name"] for i in arch["inputs"] if i["used"]]


def val_batch(ctx: RunContext, modalities: list[str], n: int = 24) -> list[torch.Tensor]:
    val = ctx.dataset.split("val")
    return [torch.from_numpy(np.array(val.inputs[m][-n:])) for m in modalities]


# the model the export starts from ------------------------------------------------------------------------
def test_backbones_are_prepared_with_the_evaluators_feature_settings(run: dict[str, Any], ctx: RunContext) -> None:
    assert FeatureSettings.from_config(run["cfg"]) == run["evaluator"].settings
    assert ctx.settings == run["evaluator"].settings


def test_built_model_reproduces_the_searched_val_metric(ctx: RunContext) -> None:
    from harmonic_nas.export.exporter import val_metric_of

    e = ctx.front[0]
    built = build_model(ctx, e)
    assert built.modalities == list(dict.fromkeys(m for m, _ in e.genotype.taps))
    assert val_metric_of(built, ctx.val_score, ctx.dataset.task, 128) == pytest.approx(e.val_metric, abs=1e-6)


# selection -----------------------------------------------------------------------------------------------
def _fake(key: str, val: float, latency: float) -> Evaluation:
    return Evaluation(key, "candidate", None, 0, {}, val, latency, latency, None, None, {}, 0.0)


def test_select_model() -> None:
    front = [_fake("abc123", 0.9, 5.0), _fake("abd456", 0.8, 2.0), _fake("ffe789", 0.9, 4.0)]
    assert select_model(front, "best-acc").key == "ffe789"  # tie on val: the faster one
    assert select_model(front, "fastest").key == "abd456"
    assert select_model(front, "abc").key == "abc123"
    assert select_model(front, "ffe789").key == "ffe789"
    for which, expected in (("ab", "matches 2 Pareto models"), ("zzz", "no Pareto model of"), ("", "no Pareto")):
        with pytest.raises(UserError, match=expected) as info:
            select_model(front, which)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="front is empty"):
        select_model([], "best-acc")


def test_select_on_the_real_front(ctx: RunContext) -> None:
    best = select_model(ctx.front, "best-acc")
    fastest = select_model(ctx.front, "fastest")
    assert len(ctx.front) >= 2 and best.key != fastest.key
    assert best.val_metric == max(e.val_metric for e in ctx.front)
    assert fastest.latency_ms == min(e.latency_ms for e in ctx.front)
    assert select_model(ctx.front, best.key[:6]).key == best.key


# formats -------------------------------------------------------------------------------------------------
def test_export_onnx_parity_and_latency(run: dict[str, Any], ctx: RunContext) -> None:
    out = run["tmp"] / "onnx"
    code, _, err = cli("export", run["dir"], "--model", "fastest", "--format", "onnx", "--out", out)
    assert code == 0, err
    assert "measured/predicted" in err and "onnx" in err
    arch = json.loads((out / "arch.json").read_text())
    e = select_model(ctx.front, "fastest")
    assert arch["id"] == e.key and arch["candidate"] == e.arch.to_json() and arch["genotype"] == e.genotype.to_json()
    assert sorted(p.name for p in out.iterdir()) == ["arch.json", "manifest.json", "model.onnx", "model.pt"]
    (entry,) = manifest_entries(out)
    assert entry["format"] == "onnx" and entry["file"] == "model.onnx" and entry["onnx_inputs"] == arch_inputs(arch)
    assert arch["num_classes"] == 10 and arch["output"]["shape"] == ["batch", 10]
    assert [i["name"] for i in arch["inputs"]] == list(dict.fromkeys(m for m, _ in e.genotype.taps))
    assert arch["inputs"][0]["shape"][1:] == list(SHAPES[arch["inputs"][0]["name"]])
    assert arch["lut"]["latency_ms"] == e.latency_ms and arch["lut"]["runtime"] == "torch"
    assert entry["measured"]["latency_ms"] > 0 and entry["measured"]["runtime"] == "torch"
    assert entry["measured"]["method"].startswith("quantile ")  # the protocol it was timed with
    assert arch["metrics"]["val_exported"] == pytest.approx(e.val_metric, abs=1e-6)
    assert entry["checks"]["val_exported"] == arch["metrics"]["val_exported"]
    assert arch["metrics"]["test_shuffled"] == e.test_shuffled and set(e.test_shuffled) == set(e.candidate.backbones)
    assert set(entry["checks"]["max_abs_diff"]) == {"pt", "onnx"}
    assert all(d <= 1e-4 for d in entry["checks"]["max_abs_diff"].values())
    # independently: real ONNX Runtime on other val samples (a batch size the export never saw) vs model.pt
    names = [i["name"] for i in arch["inputs"]]
    inputs = val_batch(ctx, names, 24)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[names.index(i.name)].numpy() for i in session.get_inputs()}
    (got,) = session.run(["logits"], feed)
    with torch.no_grad():
        expected = load_model(out / "model.pt")(*inputs)
    assert got.shape == (24, 10)
    assert float(np.abs(got - expected.numpy()).max()) <= 1e-4
    # the same exported file timed under ONNX Runtime, as for an onnxruntime LUT
    timing = Timing("onnxruntime", 1, 1, TimingProtocol(warmup=1, repeats=5, rounds=2, min_seconds=0.05), "testcpu")
    report = measure_latency(load_model(out / "model.pt"), inputs, timing, out / "model.onnx", names)
    assert report.runtime == "onnxruntime" and report.latency_ms > 0


def test_export_onnx_int8_records_its_val_metric_and_drop(run: dict[str, Any], ctx: RunContext) -> None:
    """model.int8.onnx is a quantized graph; the manifest holds its val metric on the val score part (checked
    here with ONNX Runtime by hand), the drop from float, the calibration, and its latency under
    onnxruntime-int8."""
    import onnx

    out = run["tmp"] / "int8"
    best = select_model(ctx.front, "best-acc")
    code, _, err = cli("export", run["dir"], "--format", "onnx-int8", "--out", out)
    assert code == 0, err
    assert "INT8 (64 train samples calibrated, seed 0): val " in err and "onnxruntime-int8: measured" in err
    assert sorted(p.name for p in out.iterdir()) == ["arch.json", "manifest.json", "model.int8.onnx", "model.pt"]
    (entry,) = manifest_entries(out)
    assert entry["format"] == "onnx-int8" and entry["file"] == "model.int8.onnx"
    assert {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node} >= {"QuantizeLinear", "Conv"}
    int8 = entry["checks"]["int8"]
    assert set(entry["checks"]["max_abs_diff"]) == {"pt"}  # no 1e-4 claim for INT8
    names = [i["name"] for i in json.loads((out / "arch.json").read_text())["inputs"]]
    val = ctx.val_score
    session = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    feed = {i.name: np.asarray(val.inputs[i.name], dtype=np.float32) for i in session.get_inputs()}
    (logits,) = session.run(["logits"], feed)
    assert logits.shape == (len(val), 10)
    assert int8["val_int8"] == pytest.approx(float((logits.argmax(1) == val.targets).mean()), abs=1e-6)
    assert entry["checks"]["val_exported"] == pytest.approx(best.val_metric, abs=1e-6)
    assert int8["val_drop"] == pytest.approx(entry["checks"]["val_exported"] - int8["val_int8"], abs=1e-9)
    assert int8["calibration"] == {"split": "train", "samples": 64, "seed": 0}
    assert entry["measured"]["runtime"] == "onnxruntime-int8" and entry["measured"]["latency_ms"] > 0
    assert set(names) >= set(entry["onnx_inputs"])


def test_export_torchscript_parity(run: dict[str, Any], ctx: RunContext) -> None:
    out = run["tmp"] / "ts"
    code, _, err = cli("export", run["dir"], "--format", "torchscript", "--out", out, "--no-latency")
    assert code == 0, err
    arch = json.loads((out / "arch.json").read_text())
    (entry,) = manifest_entries(out)
    assert entry["format"] == "torchscript" and entry["file"] == "model.ts" and entry["measured"] is None
    names = [i["name"] for i in arch["inputs"]]
    inputs = val_batch(ctx, names, 24)
    scripted = torch.jit.load(str(out / "model.ts"))
    with torch.no_grad():
        diff = (scripted(*inputs) - load_model(out / "model.pt")(*inputs)).abs().max()
    assert float(diff) <= 1e-4


def test_export_pt_rebuilds_the_in_memory_model(run: dict[str, Any], ctx: RunContext) -> None:
    best = select_model(ctx.front, "best-acc")
    out = run["tmp"] / "pt"
    code, _, err = cli("export", run["dir"], "--model", best.key[:8], "--format", "pt", "--out", out, "--no-latency")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["arch.json", "manifest.json", "model.pt"]
    built = build_model(ctx, best)
    loaded = load_model(out / "model.pt")
    assert loaded.modalities == built.modalities
    mine, theirs = built.net.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    inputs = val_batch(ctx, built.modalities)
    with torch.no_grad():
        assert torch.equal(built.net(*inputs), loaded(*inputs))


def test_export_front_writes_every_pareto_model(run: dict[str, Any]) -> None:
    folders = export_front(run["dir"], run["tmp"] / "front", "pt", measure=False)
    assert [f.name for f in folders] == [e.key for e in run["front"]]
    assert all((f / "model.pt").is_file() and (f / "arch.json").is_file() for f in folders)
    written = {f: (f / "model.pt").stat().st_mtime_ns for f in folders}
    stale = folders[-1] / "arch.json"  # a model whose export no longer matches the store is redone
    stale.write_text(stale.read_text().replace('"val": ', '"val": 0.0, "was": '))
    assert export_front(run["dir"], run["tmp"] / "front", "pt", measure=False) == folders
    redone = {f for f in folders if (f / "model.pt").stat().st_mtime_ns != written[f]}
    assert redone == {folders[-1]}


def test_manifest_describes_every_format_of_the_folder(run: dict[str, Any], ctx: RunContext) -> None:
    out = run["tmp"] / "formats"
    best, fastest = select_model(ctx.front, "best-acc"), select_model(ctx.front, "fastest")

    def export(e: Evaluation, fmt: str) -> None:
        code, _, err = cli("export", run["dir"], "--model", e.key, "--format", fmt, "--out", out, "--no-latency")
        assert code == 0, err

    export(best, "onnx")
    export(best, "torchscript")
    entries = manifest_entries(out)
    assert [(e["format"], e["file"]) for e in entries] == [("onnx", "model.onnx"), ("torchscript", "model.ts")]
    assert [set(e["checks"]["max_abs_diff"]) for e in entries] == [{"pt", "onnx"}, {"pt", "torchscript"}]
    assert all((out / e["file"]).is_file() and e["date"] for e in entries)
    arch = json.loads((out / "arch.json").read_text())
    assert arch["format"] == "harmonic-nas-arch/2" and "export" not in arch and "measured" not in arch
    assert read_arch(out / "arch.json").genotype == best.genotype.to_json()  # what reproduce reads

    (out / "model.onnx").unlink()  # a stale entry is dropped at the next export
    export(best, "pt")
    assert [e["format"] for e in manifest_entries(out)] == ["torchscript", "pt"]
    # another model into the same folder: a fresh manifest, and the earlier model's model.ts goes with it
    export(fastest, "pt")
    assert [e["format"] for e in manifest_entries(out)] == ["pt"] and not (out / "model.ts").exists()
    assert json.loads((out / "manifest.json").read_text())["id"] == fastest.key


def test_report_shows_the_measured_latency_of_exported_models(run: dict[str, Any], ctx: RunContext,
                                                              tmp_path: Path) -> None:
    from markupsafe import escape

    from harmonic_nas.report.writer import write_report

    fastest = select_model(ctx.front, "fastest")
    code, _, err = cli("export", run["dir"], "--model", fastest.key, "--format", "pt")  # to RUN_DIR/models/<id>
    assert code == 0, err
    (entry,) = manifest_entries(run["dir"] / "models" / fastest.key)
    html = write_report(run["dir"], tmp_path).read_text(encoding="utf-8")
    table = html.split('<table class="pareto">')[1].split("</table>")[0]
    rows = {key: row for key, row in re.findall(r'<tr><td class="id" title="([0-9a-f]+)">(.*?)</tr>', table, re.S)}
    assert set(rows) == {e.key for e in ctx.front}

    def measured(row: str) -> list[str]:
        return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r'<td class="num measured">(.*?)</td>', row, re.S)]

    assert measured(rows[fastest.key]) == [f"{entry['measured']['latency_ms']:.3f} pt"]
    assert f"<td class=\"num\">{fastest.latency_ms:.3f}</td>" in rows[fastest.key]  # the LUT prediction beside it
    assert str(escape(entry["measured"]["method"])) in rows[fastest.key]  # how it was timed, on hover
    assert all(measured(row) == ["–"] for key, row in rows.items() if key != fastest.key)


def test_report_shows_float_and_int8_side_by_side(run: dict[str, Any], ctx: RunContext, tmp_path: Path) -> None:
    """A model exported as model.onnx and model.int8.onnx into its models/<id>/ folder (of a copy of the run)
    gets its float and INT8 val metric and measured latency side by side; the other models get dashes."""
    import shutil

    from harmonic_nas.report.writer import write_report

    copy = tmp_path / "run"
    shutil.copytree(run["dir"], copy)
    best = select_model(ctx.front, "best-acc")
    for fmt in ("onnx", "onnx-int8"):
        code, _, err = cli("export", copy, "--model", best.key, "--format", fmt)
        assert code == 0, err
    onnx, int8 = manifest_entries(copy / "models" / best.key)
    html = write_report(copy, tmp_path / "report").read_text(encoding="utf-8")
    table = html.split('<table class="pareto">')[1].split("</table>")[0]
    assert "val float / INT8" in table and "measured float / INT8 (ms)" in table
    rows = {key: row for key, row in re.findall(r'<tr><td class="id" title="([0-9a-f]+)">(.*?)</tr>', table, re.S)}
    cells = {key: re.findall(r'<td class="num int8"[^>]*>(.*?)</td>', row) for key, row in rows.items()}
    val_float, val_int8 = int8["checks"]["val_exported"], int8["checks"]["int8"]["val_int8"]
    fp, q = onnx["measured"]["latency_ms"], int8["measured"]["latency_ms"]
    assert cells[best.key] == [f"{val_float:.4f} / {val_int8:.4f} ({(val_int8 - val_float) * 100:+.1f})",
                               f"{fp:.3f} / {q:.3f} (x{q / fp:.2f})"]
    assert all(c == ["–", "–"] for key, c in cells.items() if key != best.key)
    # without an INT8 export anywhere the columns are not there
    assert "val float / INT8" not in write_report(run["dir"], tmp_path / "plain").read_text(encoding="utf-8")


def test_parity_failure_is_one_line_exit_2(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import harmonic_nas.export.exporter as exporter

    real = exporter.onnx_outputs
    monkeypatch.setattr(exporter, "onnx_outputs", lambda *a: real(*a) + 1e-3)
    code, _, err = cli("export", run["dir"], "--out", run["tmp"] / "bad", "--no-latency")
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().endswith(errors[0])  # after the progress log: the one error line
    assert "model.onnx (ONNX Runtime): max abs difference" in errors[0] and "over the 0.0001 tolerance" in errors[0]


# reproduce -----------------------------------------------------------------------------------------------
def test_reproduce_from_exported_arch_json(run: dict[str, Any]) -> None:
    arch_path = run["tmp"] / "pt" / "arch.json"
    if not arch_path.is_file():
        cli("export", run["dir"], "--format", "pt", "--out", arch_path.parent, "--no-latency")
    out = run["tmp"] / "repro" / "r.json"
    code, _, err = cli("reproduce", arch_path, "--config", run["config"], "--epochs", "2", "--out", out)
    assert code == 0, err
    assert "retrained" in err
    record = json.loads(out.read_text())
    assert record["epochs"] == 2 and len(record["history"]) == 2
    assert all(math.isfinite(record[k]) and 0 <= record[k] <= 1 for k in ("val_metric", "test_metric"))
    assert record["searched"]["val"] == json.loads(arch_path.read_text())["metrics"]["val"]
    assert record["lut"]["latency_ms"] == pytest.approx(json.loads(arch_path.read_text())["lut"]["latency_ms"])
    assert out.with_suffix(".pt").is_file()


def test_reproduce_plain_candidate_and_genotype(run: dict[str, Any], ctx: RunContext) -> None:
    e = ctx.front[-1]
    arch = ArchFile(Path("plain.json"), e.arch.to_json(), e.genotype.to_json())
    result = reproduce(run["cfg"], arch, 1, dataset=ctx.dataset, supernets=ctx.supernets)
    assert result.record["epochs"] == 1 and result.record["searched"] == {}
    assert math.isfinite(result.record["val_metric"]) and math.isfinite(result.record["test_metric"])


def test_reproduce_finds_its_run_without_a_config(run: dict[str, Any]) -> None:
    arch_path = run["tmp"] / "pt" / "arch.json"
    if not arch_path.is_file():
        cli("export", run["dir"], "--format", "pt", "--out", arch_path.parent, "--no-latency")
    out = run["tmp"] / "repro-found" / "r.json"
    code, _, err = cli("reproduce", arch_path, "--epochs", "1", "--out", out, "--set", "runtime.threads=1")
    assert code == 0, err
    assert json.loads(out.read_text())["candidate_id"] == json.loads(arch_path.read_text())["id"]
    code, _, err = cli("reproduce", arch_path, "--set", "fusion.epochs=9")  # the stored run's results stay
    assert "--set may change only keys that keep the run's results" in one_line_error(code, err)
    assert "fusion.epochs: 2 -> 9" in err
    lost = run["tmp"] / "lost.json"
    lost.write_text(json.dumps({**json.loads(arch_path.read_text()), "run": str(run["tmp"] / "gone")}))
    code, _, err = cli("reproduce", lost)
    assert "cannot find the search run of this model" in one_line_error(code, err) and "pass --config C" in err


def test_an_arch_json_in_its_runs_models_folder_finds_the_run_after_a_move(run: dict[str, Any]) -> None:
    moved = run["dir"] / "models" / "abc" / "arch.json"  # where export puts it; the run it names is gone
    assert ArchFile(moved, {}, {}, run=Path("/old/place")).find_run().resolve() == run["dir"].resolve()
    assert ArchFile(moved, {}, {}).find_run().resolve() == run["dir"].resolve()


def test_export_set_keeps_the_runs_results(run: dict[str, Any]) -> None:
    code, _, err = cli("export", run["dir"], "--set", "search.population=3")
    line = one_line_error(code, err)
    assert line.endswith("--set may change only keys that keep the run's results (runtime.* but seed, output.*, "
                         "dataset.cache_dir, hardware.warmup, hardware.repeats), found search.population: 8 -> 3")
    opened = RunContext.open(run["dir"], overrides=["runtime.workers=5", "hardware.repeats=7"])
    assert opened.cfg.runtime.workers == 5 and opened.cfg.hardware.repeats == 7


# bad input -----------------------------------------------------------------------------------------------
def test_bad_export_input_is_one_line(run: dict[str, Any], tmp_path: Path) -> None:
    cases = [
        (("export", tmp_path / "nope"), "run directory not found"),
        (("export", tmp_path), "no search store here"),
        (("export", run["dir"], "--model", "zzzz"), "no Pareto model of"),
        (("export", run["dir"], "--format", "tflite"), "invalid value for '--format': 'tflite' is not one of 'onnx', 'onnx-int8', 'torchscript', 'pt'"),
        (("export", run["dir"], "--samples", "0"), "--samples must be at least 1"),
    ]
    for args, expected in cases:
        assert expected in one_line_error(*cli(*args)[::2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="unreadable checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a harmonic-nas model file"):
        load_model(tmp_path / "other.pt")


def test_bad_reproduce_input_is_one_line(run: dict[str, Any], ctx: RunContext, tmp_path: Path) -> None:
    e = ctx.front[0]
    genotype, candidate = e.genotype.to_json(), e.arch.to_json()
    bad_taps = {**genotype, "taps": genotype["taps"][:-1] + [[genotype["taps"][-1][0], 9]]}
    files = {
        "missing.json": None,
        "broken.json": "{not json",
        "list.json": "[1, 2]",
        "nogenotype.json": json.dumps({"candidate": candidate}),
        "modality.json": json.dumps({"candidate": {**candidate, "backbones": {"text": {}}}, "genotype": genotype}),
        "taps.json": json.dumps({"candidate": candidate, "genotype": bad_taps}),
        "good.json": json.dumps({"candidate": candidate, "genotype": genotype}),
    }
    for name, text in files.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    cases = [
        ("missing.json", (), "arch file not found"),
        ("broken.json", (), "not valid JSON"),
        ("list.json", (), "expected a JSON object"),
        ("nogenotype.json", (), "genotype is missing"),
        ("modality.json", (), "candidate: missing modality"),
        ("taps.json", (), "are not the taps of the candidate's backbones"),
        ("good.json", ("--epochs", "0"), "--epochs must be at least 1"),
    ]
    for name, extra, expected in cases:
        code, _, err = cli("reproduce", tmp_path / name, "--config", run["config"], *extra)
        assert expected in one_line_error(code, err), name


def test_protocol_is_read_back_from_the_lut_method() -> None:
    protocol = TimingProtocol(warmup=3, repeats=40, rounds=4, min_seconds=0.25, quantile=0.2)
    assert protocol_of(protocol.describe("thread-cpu"), TimingProtocol()) == protocol
    assert protocol_of("fixture", TimingProtocol(warmup=1)) == TimingProtocol(warmup=1)
    paused = TimingProtocol(warmup=3, repeats=40, rounds=4, min_seconds=0.25, quantile=0.2, settle_seconds=0.02)
    assert "0.02 s pause" in paused.describe("wall")
    assert protocol_of(paused.describe("wall"), TimingProtocol()) == paused
    spread = TimingProtocol(rounds=4, settle_seconds=0.02, span_seconds=30)
    assert protocol_of(spread.describe("wall"), TimingProtocol()) == spread



def _mixed_net(cells: list[list[int]]) -> Any:
    """An mbv3 (28x28 image: taps 14x14, 7x7) and a maxout (49-d vector) backbone with a two-cell fusion."""
    from helpers import image_supernet, thumb_supernet

    from harmonic_nas.fusion.discrete import FusionNet, MultimodalNet
    from harmonic_nas.space import Genotype

    archs = {"image": {"ks": [5, 3, 3, 5], "e": [4, 3, 3, 4], "d": [1, 2]}, "thumb": {"hidden": 32, "blocks": 2, "pieces": 2, "width_mult": 1.0}}
    supernets = {"image": image_supernet(), "thumb": thumb_supernet()}
    backbones = {m: supernets[m].extract(supernets[m].space.parse(a)).eval() for m, a in archs.items()}
    taps = [["image", 0], ["image", 1], ["thumb", 0], ["thumb", 1]]
    genotype = {"taps": taps, "cells": [{"inputs": cells[0], "nodes": [{"inputs": [0, 1], "op": "attention"}]},
                                        {"inputs": cells[1], "nodes": [{"inputs": [0, 1], "op": "linear_glu"}]}]}
    return MultimodalNet(backbones, FusionNet(Genotype.parse(genotype), [8, 16, 32, 32], 8, 4, 10, 0.1)).eval()


def test_vector_modality_exports_with_a_dynamic_batch(mnist_pair: Any, tmp_path: Path) -> None:
    """A maxout (vector) backbone next to an mbv3 one: ONNX and TorchScript at another batch size."""
    from harmonic_nas.export.formats import export_onnx, export_torchscript, onnx_outputs, torchscript_outputs

    net = _mixed_net([[0, 3], [2, 4]])  # image tap 0 (14x14, even bins), both vector taps
    val = mnist_pair.split("val")
    inputs = [torch.from_numpy(val.inputs[m][:20]) for m in net.modalities]
    with torch.no_grad():
        expected = net(*inputs)
    assert export_onnx(net, [t[:2] for t in inputs], net.modalities, tmp_path / "m.onnx") == ["image", "thumb"]
    assert float((onnx_outputs(tmp_path / "m.onnx", net.modalities, inputs) - expected).abs().max()) <= 1e-4
    export_torchscript(net, [t[:2] for t in inputs], tmp_path / "m.ts")
    assert float((torchscript_outputs(tmp_path / "m.ts", inputs) - expected).abs().max()) <= 1e-4


def test_uneven_pooling_tap_exports_to_onnx(mnist_pair: Any, tmp_path: Path) -> None:
    from harmonic_nas.export.formats import export_onnx, onnx_outputs

    net = _mixed_net([[1, 3], [2, 4]])  # image tap 1: 7x7 pooled to 2x2
    inputs = [torch.from_numpy(mnist_pair.split("val").inputs[m][:20]) for m in net.modalities]
    with torch.no_grad():
        expected = net(*inputs)
    export_onnx(net, inputs, net.modalities, tmp_path / "m.onnx")
    assert float((onnx_outputs(tmp_path / "m.onnx", net.modalities, inputs) - expected).abs().max()) <= 1e-4


# shared run folders ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["supernet", "fusion"])
def test_export_of_a_run_with_a_crafted_file_is_one_line_and_runs_nothing(
    which: str, run: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from helpers import write_code_running_file

    from harmonic_nas.fusion.discrete import FUSION_FILE
    from harmonic_nas.layout import StoreLayout
    from harmonic_nas.supernet.supernet_file import SUPERNET_FILE

    shared = tmp_path / "shared-run"
    shutil.copytree(run["dir"], shared)
    best = select_model(run["front"], "best-acc")
    target = (shared / "supernets" / "image.pt", SUPERNET_FILE.tag) if which == "supernet" else (
        StoreLayout(shared).fusion(best.key), FUSION_FILE.tag)
    marker = tmp_path / "pwned"
    write_code_running_file(target[0], marker, target[1])
    code, _, err = cli("export", shared, "--model", best.key, "--format", "pt", "--out", tmp_path / "out")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # after the progress log
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert str(target[0]) in errors[0] and "refused to load" in errors[0]
    assert not marker.exists()
