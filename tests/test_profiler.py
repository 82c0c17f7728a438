"""Layer specs cover everything that runs, the space enumeration dedupes, the profiler writes a valid LUT
and resumes after a kill without re-measuring, and the profile command fails in one line."""

from __future__ import annotations

import io
import random
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import tiny_config
from torch import nn

from harmonic_nas.backbones import build_supernet
from harmonic_nas.backbones.specs import build_layer as build_backbone_layer
from harmonic_nas.backbones.specs import layer_specs, space_layer_specs, tap_shapes
from harmonic_nas import pipeline
from harmonic_nas.cli import main
from harmonic_nas.config import load_config
from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.hardware import timing
from harmonic_nas.costing.catalog import build_layer, candidate_specs, search_space_specs
from harmonic_nas.hardware.int8_recipe import LAYER_RECIPE
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.hardware.meters import EstimatedEnergy
from harmonic_nas.costing.profiler import ProfileSettings, profile
from harmonic_nas.hardware.specs import LayerSpec, lut_key
from harmonic_nas.hardware.timing import TimingProtocol
from harmonic_nas.costing.validate import random_models

SHAPES = {"image": (1, 8, 8), "thumb": (12,)}
CLASSES = 3
FAST = TimingProtocol(warmup=1, repeats=3, rounds=1, min_seconds=0.0)


def executed_leaves(module: nn.Module, *inputs: torch.Tensor) -> Counter:
    """(module type, parameter shapes, input shape without batch) of every leaf module a forward runs.

    Dropout is left out: it is the identity in eval mode and what a LUT entry costs is the same without it.
    """
    seen: Counter = Counter()

    def hook(mod: nn.Module, args: tuple, _out: object) -> None:
        shapes = tuple(tuple(p.shape) for p in mod.parameters(recurse=False))
        seen[(type(mod).__name__, shapes, tuple(args[0].shape[1:]))] += 1

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if not list(m.children()) and not isinstance(m, nn.Dropout)]
    try:
        with torch.no_grad():
            module.eval()(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def leaves_of_specs(specs: list) -> Counter:
    total: Counter = Counter()
    for spec in specs:
        module, inputs = build_layer(spec)
        total += executed_leaves(module, *inputs)
    return total


# The authors' Maxout meaning: each next block's width multiplied (here also a shrinking multiplier).
WIDENING_MAXOUT = MaxoutSpace(hidden=[8, 16], blocks=[1, 2, 3], pieces=[2, 3], width_multipliers=[0.5, 2.0])


@pytest.mark.parametrize(("modality", "space_cfg"), [("image", None), ("thumb", None), ("thumb", WIDENING_MAXOUT)],
                         ids=["image", "thumb", "thumb-width-multipliers"])
def test_backbone_specs_cover_every_layer_of_extracted_subnets(modality: str, space_cfg: Any) -> None:
    space_cfg = space_cfg or tiny_config().modalities[modality]
    supernet = build_supernet(space_cfg, SHAPES[modality], CLASSES).eval()
    space = space_layer_specs(space_cfg, SHAPES[modality], CLASSES)
    rng = random.Random(0)
    for arch in [supernet.space.min(), supernet.space.max()] + [supernet.space.sample(rng) for _ in range(8)]:
        static = supernet.extract(arch)
        specs = layer_specs(supernet, arch, SHAPES[modality])
        assert specs == layer_specs(space_cfg, arch, SHAPES[modality], num_classes=CLASSES)
        assert executed_leaves(static, torch.randn(1, *SHAPES[modality])) == leaves_of_specs(specs)
        assert sum(p.numel() for p in static.parameters()) == sum(
            p.numel() for s in specs for p in build_backbone_layer(s)[0].parameters()
        )
        assert set(specs) <= set(space)
        taps = static(torch.randn(1, *SHAPES[modality])).taps
        assert [tuple(t.shape[1:]) for t in taps] == tap_shapes(supernet, arch, SHAPES[modality])
        headless = layer_specs(supernet, arch, SHAPES[modality], include_head=False)
        assert headless == specs[: len(headless)] and len(headless) == len(specs) - (2 if modality == "image" else 1)
        first = layer_specs(supernet, arch, SHAPES[modality], include_head=False, last_tap=0)
        assert first == headless[: len(first)] and first[-1].out == tap_shapes(supernet, arch, SHAPES[modality])[0][0]


def test_multimodal_specs_cover_what_the_network_runs() -> None:
    """Torch eager runs every leaf of MultimodalNet; the specs must cost exactly those, no more, no less."""
    cfg = tiny_config()
    space = set(search_space_specs(cfg, SHAPES, CLASSES))
    for model in random_models(cfg, SHAPES, CLASSES, n=6, seed=1):
        specs = candidate_specs(cfg, model.candidate.backbones, model.genotype, SHAPES, CLASSES)
        assert executed_leaves(model.module, *model.inputs) == leaves_of_specs(specs)
        pruned = candidate_specs(cfg, model.candidate.backbones, model.genotype, SHAPES, CLASSES)
        assert set(specs) <= space and set(pruned) <= space
        assert Counter(pruned) - Counter(specs) == Counter()  # pruning only ever removes layers


def test_onnx_export_runs_exactly_the_pruned_specs() -> None:
    """An exported MultimodalNet keeps only what feeds the logits: its ONNX graph holds the same
    operator nodes as the pruned specs' layers exported one by one."""
    onnx = pytest.importorskip("onnx")

    def nodes(module: nn.Module, inputs: tuple) -> Counter:
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
            torch.onnx.export(module.eval(), inputs, buffer, dynamo=False, opset_version=timing.ONNX_OPSET)
        kinds = Counter(n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node)
        return Counter({k: v for k, v in kinds.items() if k in ("Conv", "Gemm", "MatMul", "MaxPool", "Softmax")})

    cfg = tiny_config()
    for model in random_models(cfg, SHAPES, CLASSES, n=3, seed=2):
        specs = candidate_specs(cfg, model.candidate.backbones, model.genotype, SHAPES, CLASSES)
        expected: Counter = Counter()
        for spec in specs:
            expected += nodes(*build_layer(spec))
        assert nodes(model.module, model.inputs) == expected


def test_space_enumeration_is_deduplicated_and_counted() -> None:
    cfg = tiny_config()
    specs = search_space_specs(cfg, SHAPES, CLASSES)
    keys = [lut_key(s) for s in specs]
    assert len(keys) == len(set(keys))
    ops = Counter(s.op for s in specs)
    # stage 1: one slot geometry per block (in 8 -> 8, stride 1) = 2 kernels x 2 mids, the second block equal;
    # stage 2: first block (8 -> 16, s2) and the rest (16 -> 16) = 2 x 4
    assert ops["mbconv"] == 4 + 8
    assert ops["maxout"] == 2 * 2 * 2 and ops["linear"] == 2
    assert ops["fusion_proj"] == 4  # two map taps, two hidden widths
    assert ops["fusion_out_norm"] == ops["fusion_classifier"] == 2  # one or two output cells
    assert {s.op for s in specs} >= {f"fusion_{op}" for op in cfg.fusion.operators}


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    cfg = tiny_config()
    specs = search_space_specs(cfg, SHAPES, CLASSES)
    path = tmp_path_factory.mktemp("lut") / "cpu.json"
    settings = ProfileSettings(torch.device("cpu"), "cpu", protocol=FAST)
    profile(specs, path, settings, EstimatedEnergy.for_cpu(1))
    return path, specs


def test_profile_writes_a_valid_lut_with_sensible_numbers(tiny_lut: tuple[Path, list]) -> None:
    path, specs = tiny_lut
    table = LookupTable.load(path)
    assert table.missing(specs) == [] and len(table) == len(specs)
    header = table.header
    assert (header.device, header.runtime, header.batch_size, header.threads) == ("cpu", "torch", 1, 1)
    assert header.energy_source == "estimated:cpu-core-tdp@4W"
    assert "thread-cpu" in header.method
    for entry in table.entries.values():
        assert 1e-4 < entry.latency_ms < 1e3 and entry.latency_std_ms >= 0 and entry.repeats >= FAST.repeats
        # estimated energy is 4 W times the stored latency statistic (not times the metered interval)
        assert entry.energy_mj == pytest.approx(4.0 * entry.latency_ms, rel=1e-9)


def test_onnxruntime_profile_and_batch_size(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    space = search_space_specs(tiny_config(), SHAPES, CLASSES)
    specs = space[:3] + space[-1:]
    settings = ProfileSettings(torch.device("cpu"), "cpu", runtime="onnxruntime", batch_size=4, protocol=FAST)
    table = profile(specs, tmp_path / "ort.json", settings, EstimatedEnergy.for_cpu(1))
    assert table.header.runtime == "onnxruntime" and table.header.batch_size == 4
    assert table.missing(specs) == []


def test_killed_profile_resumes_without_remeasuring(tmp_path: Path) -> None:
    specs = search_space_specs(tiny_config(), SHAPES, CLASSES)[:7]
    path = tmp_path / "cpu.json"
    settings = ProfileSettings(torch.device("cpu"), "cpu", protocol=FAST)
    built: list[str] = []
    on_disk_at_kill: list[set[str]] = []

    class Killed(BaseException):
        pass

    def dying_build(spec):  # dies while building the 6th layer (third group)
        if len(built) == 5:
            on_disk_at_kill.append(set(LookupTable.load(path).entries))
            raise Killed
        built.append(lut_key(spec))
        return build_layer(spec)

    with pytest.raises(Killed):
        profile(specs, path, settings, EstimatedEnergy.for_cpu(1), group_size=2, build=dying_build)
    # the two finished groups were on disk before the kill (a SIGKILL would have kept them too)
    assert on_disk_at_kill == [{lut_key(s) for s in specs[:4]}]

    rebuilt: list[str] = []

    def counting_build(spec):
        rebuilt.append(lut_key(spec))
        return build_layer(spec)

    table = profile(specs, path, settings, EstimatedEnergy.for_cpu(1), group_size=2, build=counting_build)
    assert rebuilt == [lut_key(s) for s in specs[4:]]
    assert table.missing(specs) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_every_layer_is_profiled_in_one_interleaved_group(tmp_path: Path, threads: int) -> None:
    """On either clock (thread CPU time on one thread, the wall clock on two) all layers are built before any
    is measured or written, so a slow spell of seconds cannot take every round of one small group."""
    specs = search_space_specs(tiny_config(), SHAPES, CLASSES)[:14]
    assert len(specs) == 14
    path = tmp_path / f"cpu-{threads}.json"
    settings = ProfileSettings(torch.device("cpu"), "cpu", threads=threads,
                               protocol=TimingProtocol(warmup=1, repeats=1, rounds=1, min_seconds=0.0, settle_seconds=0.0))
    written_before_13th: list[int] = []

    def build(spec):
        if len(built) == 12:
            written_before_13th.append(len(LookupTable.load(path).entries) if path.exists() else 0)
        built.append(spec)
        return build_layer(spec)

    built: list[LayerSpec] = []
    table = profile(specs, path, settings, EstimatedEnergy.for_cpu(threads), build=build)
    assert written_before_13th == [0] and table.missing(specs) == []


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "tiny.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_config().model_dump(mode="json")))
    return str(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--runtime", "tensorrt"], "invalid value for '--runtime': 'tensorrt' is not one of 'torch', 'onnxruntime', 'onnxruntime-int8'"),
        (["--validate", "3"], "--validate needs at least 6 models"),
        (["--batch-size", "0"], "--batch-size must be at least 1, found 0"),
        (["--device", "cuda:7"], "device 'cuda:7'"),
        (["--set", "hardware.threads=0"], "hardware.threads"),
        (["--set", "hardware.calibrate=3"], "calibrate must be 0 or at least 6"),
        (["--shape", "image=1x8", "--shape", "thumb=12"], "missing --classes"),
        (["--shape", "image=1xax8", "--classes", "3"], "expected MODALITY=CxHxW or MODALITY=D"),
        (["--shape", "audio=1x8x8", "--classes", "3"], "no modality 'audio' in the config"),
        (["--shape", "image=1x8x8", "--classes", "3"], "missing --shape thumb=..."),
    ],
)
def test_profile_errors_are_one_line_and_exit_2(config_file: str, args: list[str], expected: str) -> None:
    code, err = run_cli("profile", "--config", config_file, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err


def test_profile_missing_config_is_one_line(tmp_path: Path) -> None:
    code, err = run_cli("profile", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.count("\n") == 1 and "config file not found" in err


def test_profile_end_to_end(config_file: str, tmp_path: Path) -> None:
    """Profile and, by default, calibrate on hardware.calibrate models with a reference model stored; a
    second run measures nothing new and keeps the calibration the stored costs were computed with."""
    cfg = load_config(config_file, ["hardware.warmup=1", "hardware.repeats=3", "hardware.calibrate=6"])
    out = tmp_path / "lut" / "cpu.json"
    fast = TimingProtocol(warmup=1, repeats=3, rounds=1, min_seconds=0.0)
    given = {"input_shapes": {"image": (1, 8, 8), "thumb": (12,)}, "num_classes": 3, "protocol": fast}
    first = pipeline.profile(cfg, out=out, **given)
    table = LookupTable.load(out)
    assert first.measured == len(table) == first.layers and first.validation is not None
    assert table.calibration is not None and table.calibration.latency.models == 6
    assert (tmp_path / "lut" / "cpu.validation.png").stat().st_size > 1000
    assert "latency" in (tmp_path / "lut" / "cpu.validation.json").read_text()
    reference = table.calibration.reference
    rows = first.validation.rows
    assert reference is not None and reference.latency_ms in [r["latency_measured"] for r in rows]
    fused = sorted(r["latency_measured"] for r in rows if r["genotype"] is not None)
    assert reference.latency_ms == fused[len(fused) // 2]  # the median multimodal model
    again = pipeline.profile(cfg, out=out, **given)
    assert again.measured == 0 and again.validation is None, "re-measured what the table had"
    assert LookupTable.load(out).calibration == table.calibration  # resuming keeps the calibration

    # an export times the reference beside its model: the machine's slowdown since the calibration
    from harmonic_nas.export.latency import Reference, Timing, measure_latency

    ref = Reference.of(table, cfg, given["input_shapes"], 3)
    assert ref is not None and ref.calibration_ms == reference.latency_ms
    measured = measure_latency(ref.module, ref.inputs, Timing.of(table, cfg.hardware), reference=ref)
    assert measured.reference_ms is not None and measured.machine_factor == measured.reference_ms / reference.latency_ms
    assert "reference model" in measured.versus(1.0)
    # a reference far slower than at its calibration (the machine 1000x slower than then) is measured again,
    # every attempt, and the verdict says the machine never came back to its calibration speed; a reference far
    # faster is not waited for (the calibration was measured in a slow spell)
    from dataclasses import replace as replaced

    off = measure_latency(ref.module, ref.inputs, Timing.of(table, cfg.hardware),
                          reference=replaced(ref, calibration_ms=ref.calibration_ms / 1000), attempts=3, pause_s=0.0)
    assert off.attempts == 3 and off.machine_factor > 100
    assert "3 measurements, the machine more than 5% slower in all" in off.versus(1.0)
    fast = measure_latency(ref.module, ref.inputs, Timing.of(table, cfg.hardware),
                           reference=replaced(ref, calibration_ms=ref.calibration_ms * 1000), attempts=3, pause_s=0.0)
    assert fast.attempts == 1 and fast.machine_factor < 0.01
    alone = measure_latency(ref.module, ref.inputs, Timing.of(table, cfg.hardware), attempts=3, pause_s=0.0)
    assert alone.attempts == 1 and alone.reference_ms is None  # nothing to judge the machine by: one attempt
    assert Reference.of(LookupTable(table.header), cfg, given["input_shapes"], 3) is None  # no calibration


def test_a_run_whose_search_stored_plain_costs_is_not_calibrated_behind_its_back(config_file: str,
                                                                               tmp_path: Path) -> None:
    """A table without calibration that a search already costed with (an older run, hardware.calibrate: 0)
    stays as it is by default: calibrating it now would mix two cost models in one store."""
    given = {"input_shapes": {"image": (1, 8, 8), "thumb": (12,)}, "num_classes": 3,
             "protocol": TimingProtocol(warmup=1, repeats=3, rounds=1, min_seconds=0.0)}
    base = ["hardware.warmup=1", "hardware.repeats=3", f"output.run_dir={tmp_path / 'run'}"]
    plain = pipeline.profile(load_config(config_file, [*base, "hardware.calibrate=0"]), **given)
    assert plain.validation is None and plain.table.calibration is None
    cfg = load_config(config_file, [*base, "hardware.calibrate=6"])
    cfg.layout.search().store.write_bytes(b"")  # a search has stored costs in this run
    lines: list[str] = []
    kept = pipeline.profile(cfg, log=lines.append, **given)
    assert kept.validation is None and LookupTable.load(plain.path).calibration is None
    assert any("no calibration" in line and "--validate" in line for line in lines)
    cfg.layout.search().store.unlink()  # no stored costs: the default calibrates
    assert pipeline.profile(cfg, **given).table.calibration is not None


def test_no_warmup_still_sizes_rounds_by_the_first_call() -> None:
    """With ``warmup=0`` the first (initialising) call is the speed estimate: a 2 ms runner gets the
    calls that ``min_seconds`` needs, not the 100,000-call cap of an unknown speed."""
    import time

    calls = 0

    def run() -> None:
        nonlocal calls
        calls += 1
        time.sleep(0.002)

    protocol = timing.TimingProtocol(warmup=0, repeats=5, rounds=5, min_seconds=0.05)
    [m] = timing.measure([run], protocol, EstimatedEnergy(4.0, "test"))
    assert 1 + 5 <= calls <= 1 + 5 * 10 and m.latency_ms >= 2.0


@pytest.mark.parametrize("clock", ["wall", "thread-cpu"])
def test_wall_clock_items_are_timed_after_a_pause(clock: str) -> None:
    """On the wall clock each item's calls in a round start at least ``settle_seconds`` after the previous
    item's last call (its thread pool parks instead of spinning on the cores the next item needs); the
    one-thread CPU clock, which other threads do not disturb, does not wait."""
    import time

    log: list[tuple[str, float]] = []

    def runner(name: str) -> timing.Runner:
        return lambda: log.append((name, time.perf_counter()))

    protocol = timing.TimingProtocol(warmup=0, repeats=3, rounds=3, min_seconds=0.0, settle_seconds=0.03)
    timing.measure([runner("a"), runner("b")], protocol, EstimatedEnergy(4.0, "test"), clock)
    timed = log[2:]  # after the first, untimed call of each
    switches = [t1 - t0 for (n0, t0), (n1, t1) in zip(timed, timed[1:]) if n0 != n1]
    assert len(switches) == 2 * 3 - 1
    assert (min(switches) >= 0.03) == (clock == "wall")


@pytest.mark.parametrize("span", [0.0, 0.6])
def test_rounds_start_spread_over_the_span(span: float) -> None:
    """With ``span_seconds`` the rounds' starts are spread evenly over it (benchmarks/round_span.py's arms),
    without it they run back to back."""
    import time

    starts: list[float] = []
    calls = 0

    def run() -> None:
        nonlocal calls
        calls += 1
        if calls > 1 and (calls - 2) % 2 == 0:  # the first timed call of each round (2 calls per round)
            starts.append(time.perf_counter())

    protocol = timing.TimingProtocol(warmup=0, repeats=6, rounds=3, min_seconds=0.0, span_seconds=span)
    timing.measure([run], protocol, EstimatedEnergy(4.0, "test"))
    assert len(starts) == 3
    gaps = np.diff(starts)
    if span:  # never early; late only by what a busy machine adds (spread per round instead would be 1.2 s)
        assert gaps.min() >= span / 2 - 0.01 and starts[-1] - starts[0] < span + 0.45
    else:
        assert gaps.max() < 0.25


# INT8 on ONNX Runtime ----------------------------------------------------------------------------------
INT8 = "onnxruntime-int8"


def test_int8_profile_and_validate_build_an_int8_lut(config_file: str, tmp_path: Path) -> None:
    """Every layer of the space quantized and timed; the header names the runtime and the quantization,
    and --validate measures quantized whole models and stores their calibration."""
    cfg = load_config(config_file, [f"hardware.runtime={INT8}"])
    out = tmp_path / "int8.json"
    given = {"input_shapes": {"image": (1, 8, 8), "thumb": (12,)}, "num_classes": 3, "protocol": FAST}
    result = pipeline.profile(cfg, out=out, validate=6, **given)
    table = LookupTable.load(out)
    assert table.header.runtime == INT8 and table.header.layer_recipe == LAYER_RECIPE
    assert "cut to uint8 inputs and outputs" in LAYER_RECIPE  # each layer timed as inside a whole INT8 model
    assert result.layers == len(table) and table.missing(search_space_specs(cfg, given["input_shapes"], 3)) == []
    assert table.calibration is not None and table.calibration.runtime == INT8
    assert all(e.latency_ms > 0 for e in table.entries.values())
    # what ran in float is in each entry: HardSwish has no INT8 kernel, ORT fails on the LayerNorm over (C, L)
    float_ops: dict[str, set[str]] = {}
    for key, e in table.entries.items():
        float_ops.setdefault(key.split(":")[0], set()).update(e.float_ops or ())
    assert "HardSwish" in float_ops["conv_bn_act"] and float_ops["fusion_cell_norm"] == {"LayerNormalization"}
    assert all(e.float_ops is not None for e in table.entries.values())
    assert '"float_ops"' in out.read_text() and '"float_ops"' not in Path(tiny_torch_lut(tmp_path)).read_text()


def tiny_torch_lut(tmp_path: Path) -> Path:
    """A torch LUT of three layers: its entries have no float_ops."""
    path = tmp_path / "torch.json"
    profile(search_space_specs(tiny_config(), SHAPES, CLASSES)[:3], path,
            ProfileSettings(torch.device("cpu"), "cpu", protocol=FAST), EstimatedEnergy.for_cpu(1))
    return path


def test_int8_runner_runs_the_quantized_layer() -> None:
    """The runner's session holds a quantized graph and gives the layer's output shape."""
    import onnx

    from harmonic_nas.hardware.quantize import graph_inputs, quantize, random_calibration

    spec = next(s for s in search_space_specs(tiny_config(), SHAPES, CLASSES) if s.op == "mbconv")
    module, inputs = build_layer(spec)
    (out,) = timing.make_runner(module, inputs, INT8, torch.device("cpu"), 1)()
    assert out.shape == tuple(module.eval()(*inputs).shape)
    model = timing.onnx_bytes(module, inputs, ["input0"])
    quantized = quantize(model, random_calibration({n: inputs[0].numpy() for n in graph_inputs(model)}), "mbconv")
    ops = {n.op_type for n in onnx.load_from_string(quantized.model).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops


def _quantized_layer(op: str) -> tuple[bytes, dict[str, np.ndarray]]:
    """The first ``op`` layer of the tiny space, quantized, and its float feed by input name."""
    from harmonic_nas.hardware.quantize import graph_inputs, quantize, random_calibration

    spec = next(s for s in search_space_specs(tiny_config(), SHAPES, CLASSES) if s.op == op)
    module, inputs = build_layer(spec)
    names = [f"input{i}" for i in range(len(inputs))]
    model = timing.onnx_bytes(module, inputs, names)
    feed = {n: t.numpy() for n, t in zip(names, inputs) if n in graph_inputs(model)}
    return quantize(model, random_calibration(feed), op).model, feed


def _run(model: bytes, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)


def test_a_cut_int8_layer_takes_and_returns_uint8_and_computes_the_same() -> None:
    """Cut at its boundaries, an mbconv block reads its input already quantized (no QuantizeLinear of a graph
    input) and returns its output still quantized (no trailing DequantizeLinear); dequantized, that output
    is exactly the uncut layer's."""
    import onnx
    from onnx import TensorProto, numpy_helper

    from harmonic_nas.hardware.int8_boundaries import cut_boundaries

    model, feed = _quantized_layer("mbconv")
    cut = cut_boundaries(model, feed)
    graph = onnx.load_from_string(cut.model).graph
    ends = {v.name for v in graph.input} | {v.name for v in graph.output}
    assert all(v.type.tensor_type.elem_type == TensorProto.UINT8 for v in [*graph.input, *graph.output])
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in ends]
    assert not [n for n in graph.node if n.op_type == "DequantizeLinear" and n.output[0] in ends]
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= {n.op_type for n in graph.node}  # the inner QDQ stays
    (whole,), (quantized,) = _run(model, feed), _run(cut.model, cut.feed)
    assert quantized.dtype == np.uint8 and quantized.shape == whole.shape
    uncut = onnx.load_from_string(model).graph
    constants = {i.name: numpy_helper.to_array(i) for i in uncut.initializer}
    (dequantize,) = [n for n in uncut.node if n.output[0] == uncut.output[0].name]
    scale, zero_point = constants[dequantize.input[1]], constants[dequantize.input[2]].astype(np.float32)
    np.testing.assert_array_equal((quantized.astype(np.float32) - zero_point) * scale, whole)


@pytest.mark.parametrize(("op", "float_op", "edge"), [("conv_bn_act", "HardSwish", "output"),
                                                       ("fusion_proj", "MaxPool", "input")])
def test_a_float_op_at_a_cut_layer_edge_keeps_its_conversion(op: str, float_op: str, edge: str) -> None:
    """A float op at the layer's edge is fed by a DequantizeLinear of the uint8 input, or its output is
    quantized: mid-model those conversions are real, so the cut layer still pays them."""
    import onnx

    from harmonic_nas.hardware.int8_boundaries import cut_boundaries

    model, feed = _quantized_layer(op)
    cut = cut_boundaries(model, feed)
    graph = onnx.load_from_string(cut.model).graph
    nodes = {out: n for n in graph.node for out in n.output}
    if edge == "output":
        (out,) = graph.output
        conversion = nodes[out.name]
        assert conversion.op_type == "QuantizeLinear" and nodes[conversion.input[0]].op_type == float_op
    else:
        names = {v.name for v in graph.input}
        conversions = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in names]
        readers = [n.op_type for n in graph.node if set(n.input) & {c.output[0] for c in conversions}]
        assert len(conversions) == 1 and float_op in readers  # the pooling reads the dequantized input
    assert all(a.dtype == np.uint8 for a in [*cut.feed.values(), *_run(cut.model, cut.feed)])


def test_every_convolution_of_a_quantized_layer_runs_in_int8(tmp_path: Path) -> None:
    """The exporter merges the equal zero biases of an untrained layer's convolutions (Identity or one
    initializer read twice); quantized as one tensor, ORT ran the depthwise convolution in float. Each
    reader gets its own copy, the float model computes the same, and ORT fuses every convolution."""
    import onnx
    import onnxruntime as ort

    from harmonic_nas.hardware.quantize import own_parameters

    spec = next(s for s in search_space_specs(tiny_config(), SHAPES, CLASSES) if s.op == "mbconv")
    module, inputs = build_layer(spec)
    model = timing.onnx_bytes(module, inputs, ["input0"])

    def shared(graph: onnx.GraphProto) -> list[str]:
        constants = {i.name for i in graph.initializer}
        reads = Counter(name for n in graph.node for name in n.input if name in constants)
        return [name for name, count in reads.items() if count > 1]

    assert shared(onnx.load_from_string(model).graph)  # what the exporter does to zero biases
    owned = own_parameters(model)
    assert not shared(onnx.load_from_string(owned).graph)
    feed = {"input0": inputs[0].numpy()}
    np.testing.assert_array_equal(_run(owned, feed)[0], _run(model, feed)[0])
    quantized, _ = _quantized_layer("mbconv")
    options = timing.ort_options(1)
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3  # ORT warns that an NCHWc-optimised file is machine-specific
    ort.InferenceSession(quantized, options, providers=["CPUExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)
    assert ops["QLinearConv"] == 3 and ops["Conv"] == 0


def test_the_profiler_runs_int8_layers_cut_and_validation_whole_models() -> None:
    """A layer runner (``layer=True``) returns uint8 as inside a model; a whole-model runner stays float."""
    spec = next(s for s in search_space_specs(tiny_config(), SHAPES, CLASSES) if s.op == "mbconv")
    module, inputs = build_layer(spec)
    (layer,) = timing.make_runner(module, inputs, INT8, torch.device("cpu"), 1, layer=True)()
    (whole,) = timing.make_runner(module, inputs, INT8, torch.device("cpu"), 1)()
    assert layer.dtype == np.uint8 and whole.dtype == np.float32 and layer.shape == whole.shape


def test_an_op_ort_fails_to_quantize_stays_float_and_is_named() -> None:
    """ORT 1.32 fails on a LayerNorm over (C, L) with per-channel weights: it is left in float and recorded;
    an op without an INT8 kernel (HardSwish) is recorded as float too."""
    from harmonic_nas.hardware.quantize import quantize, random_calibration

    spec = next(s for s in search_space_specs(tiny_config(), SHAPES, CLASSES) if s.op == "fusion_cell_norm")
    module, inputs = build_layer(spec)
    names = [f"input{i}" for i in range(len(inputs))]
    model = timing.onnx_bytes(module, inputs, names)
    quantized = quantize(model, random_calibration({n: t.numpy() for n, t in zip(names, inputs)}), "cell norm")
    assert quantized.float_ops == ("LayerNormalization",)


def test_a_model_ort_cannot_quantize_is_one_line() -> None:
    from harmonic_nas.errors import UserError
    from harmonic_nas.hardware.quantize import quantize

    module, inputs = build_layer(search_space_specs(tiny_config(), SHAPES, CLASSES)[0])
    model = timing.onnx_bytes(module, inputs, ["input0"])
    wrong = [{"input0": np.zeros((1, 5, 2, 2), np.float32)}]  # calibration inputs of another shape
    with pytest.raises(UserError, match=r"^cannot quantize stem to INT8 \(\w+: [^\n]+\)$"):
        quantize(model, wrong, "stem")
    with pytest.raises(UserError, match="no calibration inputs"):
        quantize(model, [], "stem")
