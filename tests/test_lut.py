"""Layer-spec keys, the LUT file format, lookups, merging, importing and resumable writing."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from helpers import conv_spec, lut_entry, lut_header

from harmonic_nas.config.schema import HardwareConfig
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.int8_recipe import LAYER_RECIPE
from harmonic_nas.hardware.lut import (
    KEY_PATTERN,
    LookupTable,
    MissingLutEntryError,
    import_lut,
)
from harmonic_nas.hardware.lut_writer import LutWriter
from harmonic_nas.hardware.specs import LayerSpec, lut_key

MBCONV = LayerSpec("mbconv", (24, 14, 14), out=40, mid=96, kernel=5, stride=2, se=False, act="relu")


# ---- keys -------------------------------------------------------------------------------------------


def test_key_is_readable_and_stable() -> None:
    assert lut_key(MBCONV) == "mbconv:in=24x14x14:out=40:mid=96:k=5:s=2:se=0:act=relu"
    assert lut_key(LayerSpec("linear", (256,), out=10)) == "linear:in=256:out=10"
    assert lut_key(LayerSpec("mbconv", (16, 28, 28), expand=4.5)) == "mbconv:in=16x28x28:e=4.5"
    assert lut_key(LayerSpec("mbconv", (16, 28, 28), expand=4)) == "mbconv:in=16x28x28:e=4"


def test_fusion_ops_and_projections_are_expressible() -> None:
    op = LayerSpec("attention", (192, 16), extra={"inputs": 2})
    proj = LayerSpec("fusion_proj", (40, 7, 7), out=192, act="relu", extra=(("L", 16),))
    assert lut_key(op) == "attention:in=192x16:inputs=2"
    assert lut_key(proj) == "fusion_proj:in=40x7x7:out=192:act=relu:L=16"
    for key in (lut_key(op), lut_key(proj), lut_key(MBCONV)):
        assert re.match(KEY_PATTERN, key)


def test_extra_order_does_not_matter_and_specs_hash() -> None:
    a = LayerSpec("maxout", (128,), out=64, extra={"factor": 2, "pieces": "x2"})
    b = LayerSpec("maxout", (128,), out=64, extra=(("pieces", "x2"), ("factor", 2)))
    assert a == b and hash(a) == hash(b) and lut_key(a) == lut_key(b)


def test_distinct_specs_give_distinct_keys() -> None:
    specs = {
        LayerSpec("mbconv", (c, h, h), out=o, mid=m, kernel=k, stride=s, se=se, act=act)
        for c, h, o, m, k, s, se, act in itertools.product(
            (16, 24), (7, 14), (24, 40), (48, 96), (3, 5, 7), (1, 2), (False, True), ("relu", "hswish")
        )
    }
    specs |= {LayerSpec("mbconv", (16, 7, 7)), LayerSpec("mbconv", (16, 7, 7), se=False)}
    specs |= {LayerSpec("mbconv", (16, 7), out=24), LayerSpec("mbconv", (16, 7, 7), out=24)}
    assert len({lut_key(s) for s in specs}) == len(specs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(op="MBConv", input_shape=(3, 8, 8)),
        dict(op="conv:x", input_shape=(3, 8, 8)),
        dict(op="conv", input_shape=()),
        dict(op="conv", input_shape=(0, 8)),
        dict(op="conv", input_shape=(3, 8, 8, 8)),
        dict(op="conv", input_shape=(3,), kernel=2.5),
        dict(op="conv", input_shape=(3,), se=1),
        dict(op="conv", input_shape=(3,), extra={"k": 3}),
        dict(op="conv", input_shape=(3,), extra={"mode": "a:b"}),
        dict(op="conv", input_shape=(3,), extra={"mode": [1]}),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LayerSpec(**kwargs)


# ---- file format --------------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    table = LookupTable(lut_header(), {lut_key(conv_spec(i)): lut_entry(0.1 * (i + 1), 0.5 * i) for i in range(3)})
    table.add(MBCONV, lut_entry(0.7))
    path = table.save(tmp_path / "lut" / "cpu.json")
    loaded = LookupTable.load(path)
    assert loaded.header == table.header and dict(loaded.entries) == dict(table.entries)
    assert loaded.header.units.latency == "ms" and loaded.header.units.energy == "mJ"
    assert {"python", "torch", "numpy"} <= set(loaded.header.versions)
    assert loaded.lookup(MBCONV).latency_ms == 0.7 and MBCONV in loaded and conv_spec(9) not in loaded
    text = path.read_text()
    assert sum(1 for line in text.splitlines() if '"latency_ms"' in line) == 4  # one entry per line
    assert [p.name for p in path.parent.iterdir()] == ["cpu.json"]  # no temporary file left behind
    LookupTable(lut_header()).save(tmp_path / "empty.json")
    assert len(LookupTable.load(tmp_path / "empty.json")) == 0


def _valid_raw(tmp_path: Path) -> dict:
    path = LookupTable(lut_header(), {lut_key(MBCONV): lut_entry(0.5)}).save(tmp_path / "good.json")
    return json.loads(path.read_text())


def _edit(raw: dict, change: str) -> dict:
    key = lut_key(MBCONV)
    if change == "negative":
        raw["entries"][key]["latency_ms"] = -1.0
    elif change == "nan":
        raw["entries"][key]["energy_mj"] = float("nan")
    elif change == "no_device":
        del raw["header"]["device"]
    elif change == "typo":
        raw["entries"][key]["latency"] = raw["entries"][key].pop("latency_ms")
    elif change == "bad_key":
        raw["entries"]["not a key"] = raw["entries"].pop(key)
    elif change == "runtime":
        raw["header"]["runtime"] = "tensorflow"
    elif change == "source":
        raw["header"]["energy_source"] = "rapl"
    elif change == "units":
        raw["header"]["units"]["latency"] = "us"
    return raw


@pytest.mark.parametrize(
    "change, expected",
    [
        ("negative", r"entries\['mbconv:in=24x14x14:.*'\]\.latency_ms: .*greater than or equal to 0.*found -1"),
        ("nan", r"entries\['mbconv:.*'\]\.energy_mj: .*finite"),
        ("no_device", r"header\.device: Field required"),
        ("typo", r"entries\['mbconv:.*'\]\.latency: Extra inputs are not permitted \(and 1 more\)"),
        ("bad_key", r"entries\['not a key'\] \(key\): not a LUT key, expected op:name=value"),
        ("runtime", r"header\.runtime: .*'torch', 'onnxruntime' or 'onnxruntime-int8'.*found 'tensorflow'"),
        ("source", r"header\.energy_source: expected measured:<meter> or estimated:<model>, found 'rapl'"),
        ("units", r"header\.units\.latency: .*'ms'"),
    ],
)
def test_invalid_file_gives_one_line_naming_file_and_field(tmp_path: Path, change: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_edit(_valid_raw(tmp_path), change)))
    with pytest.raises(UserError) as info:
        LookupTable.load(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert re.search(expected, message), message


def test_corrupt_and_absent_files(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.json"
    whole = LookupTable(lut_header(), {lut_key(MBCONV): lut_entry(0.5)}).save(tmp_path / "x.json").read_text()
    truncated.write_text(whole[:80])
    with pytest.raises(UserError, match=rf"^{re.escape(str(truncated))}: not valid JSON: .* at line \d+ column \d+$"):
        LookupTable.load(truncated)
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    with pytest.raises(UserError, match=r"list.json: <top level>: Input should be"):
        LookupTable.load(listing)
    with pytest.raises(UserError, match=r"nope.json: LUT file not found; create it with: harmonic-nas profile"):
        LookupTable.load(tmp_path / "nope.json")


# ---- lookups ------------------------------------------------------------------------------------------


def test_missing_entry_names_key_and_profile_command(tmp_path: Path) -> None:
    table = LookupTable(lut_header(), {lut_key(conv_spec(0)): lut_entry(0.1)})
    table.save(tmp_path / "cpu.json")
    with pytest.raises(MissingLutEntryError) as info:
        table.lookup(MBCONV)
    message = str(info.value)
    assert isinstance(info.value, UserError) and info.value.key == lut_key(MBCONV)
    assert lut_key(MBCONV) in message and "device cpu" in message
    assert f"harmonic-nas profile --config CONFIG --out {tmp_path / 'cpu.json'}" in message and "\n" not in message


def test_missing_lists_each_absent_key_once_in_order() -> None:
    table = LookupTable(lut_header(), {lut_key(conv_spec(0)): lut_entry(0.1)})
    wanted = [conv_spec(2), conv_spec(0), MBCONV, conv_spec(2), lut_key(MBCONV)]
    assert table.missing(wanted) == [lut_key(conv_spec(2)), lut_key(MBCONV)]
    assert table.missing([conv_spec(0)]) == []


def test_ranges_over_a_subset() -> None:
    table = LookupTable(lut_header(), {lut_key(conv_spec(i)): lut_entry(float(i + 1), mj=10.0 - i) for i in range(5)})
    assert table.latency_range([conv_spec(1), conv_spec(3)]) == (2.0, 4.0)
    assert table.energy_range([conv_spec(0), conv_spec(4), conv_spec(2)]) == (6.0, 10.0)
    with pytest.raises(MissingLutEntryError):
        table.latency_range([MBCONV])
    with pytest.raises(ValueError):
        table.energy_range([])


# ---- merge, compatibility, import ---------------------------------------------------------------------


def test_merge_combines_and_later_table_wins() -> None:
    a = LookupTable(lut_header(), {lut_key(conv_spec(0)): lut_entry(1.0), lut_key(conv_spec(1)): lut_entry(1.0)})
    b = LookupTable(lut_header(), {lut_key(conv_spec(1)): lut_entry(2.0), lut_key(conv_spec(2)): lut_entry(2.0)})
    merged = a.merge(b)
    assert len(merged) == 3 and merged.lookup(conv_spec(1)).latency_ms == 2.0 and len(a) == 2
    assert merged.header == a.header


@pytest.mark.parametrize(
    "field, value", [("device", "jetson-tx2"), ("runtime", "onnxruntime"), ("batch_size", 8), ("threads", 2)]
)
def test_merge_refuses_different_measurements_unless_forced(field: str, value: object) -> None:
    a = LookupTable(lut_header(), {lut_key(conv_spec(0)): lut_entry(1.0)})
    b = LookupTable(lut_header(**{field: value}), {lut_key(conv_spec(1)): lut_entry(2.0)})
    with pytest.raises(UserError, match=rf"cannot merge .*different {field} .*\(--force to merge them anyway\)"):
        a.merge(b)
    merged = a.merge(b, force=True)
    assert len(merged) == 2 and "forced merge" in merged.header.method and field in merged.header.method


def test_forced_merge_of_energy_sources_stays_visibly_estimated() -> None:
    measured = LookupTable(lut_header(energy_source="measured:rapl"))
    estimated = LookupTable(lut_header())
    with pytest.raises(UserError, match="energy_source"):
        measured.merge(estimated)
    source = measured.merge(estimated, force=True).header.energy_source
    assert source.startswith("estimated:mixed(") and "measured:rapl" in source


def test_require_compatible_with_config() -> None:
    table = LookupTable(lut_header())
    table.require_compatible(HardwareConfig())
    with pytest.raises(UserError, match=r"runtime='torch' \(config: 'onnxruntime'\).*threads=1 \(config: 2\)"):
        table.require_compatible(HardwareConfig(runtime="onnxruntime", threads=2))


def test_an_int8_table_of_an_earlier_layer_recipe_is_refused(tmp_path: Path) -> None:
    """INT8 layers used to be timed with float boundaries (a different meaning): such a table is neither
    searched with nor resumed; a float table has no recipe and still loads and passes."""
    int8 = HardwareConfig(runtime="onnxruntime-int8")
    LookupTable(lut_header(runtime=int8.runtime, layer_recipe=LAYER_RECIPE)).require_compatible(int8)
    old = LookupTable(lut_header(runtime=int8.runtime), path=tmp_path / "old.json")
    with pytest.raises(UserError, match=r"^\S*old.json: its onnxruntime-int8 layers were profiled with layer_recipe "
                       r"None \(an earlier release\).*profile again with harmonic-nas profile"):
        old.require_compatible(int8)
    old.save()
    with pytest.raises(UserError, match=r"cannot resume.*layer_recipe \(None vs 'static post-training"):
        LutWriter(old.path, lut_header(runtime=int8.runtime, layer_recipe=LAYER_RECIPE))
    plain = LookupTable(lut_header()).save(tmp_path / "torch.json")
    assert "layer_recipe" not in plain.read_text()
    LookupTable.load(plain).require_compatible(HardwareConfig())


def test_import_validates_and_copies(tmp_path: Path) -> None:
    source = LookupTable(lut_header(device="jetson/tx2"), {lut_key(MBCONV): lut_entry(3.0)}).save(tmp_path / "from_user.json")
    imported = import_lut(source, tmp_path / "luts")
    assert imported.path == tmp_path / "luts" / "jetson_tx2.json" and imported.lookup(MBCONV).latency_ms == 3.0
    assert LookupTable.load(imported.path).header.device == "jetson/tx2"
    with pytest.raises(UserError, match="exists already"):
        import_lut(source, tmp_path / "luts")
    import_lut(source, tmp_path / "luts", overwrite=True)
    broken = tmp_path / "broken.json"
    broken.write_text('{"header": {}, "entries": {}}')
    with pytest.raises(UserError, match=r"broken.json: header\.device"):
        import_lut(broken, tmp_path / "luts")


# ---- incremental writing --------------------------------------------------------------------------------


def test_killed_writer_keeps_flushed_entries_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    writer = LutWriter(path, lut_header(), every=10, seconds=3600)
    for i in range(25):
        writer.add(conv_spec(i), lut_entry(0.1))
    del writer  # killed: never flushed the last 5, never closed
    (tmp_path / ".cpu.json.stale.tmp").write_text("{half")  # debris of a kill during a write
    assert len(LookupTable.load(path)) == 20
    with LutWriter(path, lut_header(), every=10, seconds=3600) as resumed:
        todo = [conv_spec(i) for i in range(25) if conv_spec(i) not in resumed]
        assert todo == [conv_spec(i) for i in range(20, 25)]
        for s in todo:
            resumed.add(s, lut_entry(0.2))
    assert len(LookupTable.load(path)) == 25


def test_writer_flushes_on_time_and_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    writer = LutWriter(path, lut_header(), every=1000, seconds=0.0)
    writer.add(conv_spec(0), lut_entry(0.1))
    assert len(LookupTable.load(path)) == 1
    with pytest.raises(KeyboardInterrupt):
        with LutWriter(path, lut_header(), every=1000, seconds=3600) as w:
            w.add(conv_spec(1), lut_entry(0.1))
            raise KeyboardInterrupt
    assert len(LookupTable.load(path)) == 2


def test_writer_refuses_to_resume_a_different_measurement(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    with LutWriter(path, lut_header()) as writer:
        writer.add(conv_spec(0), lut_entry(0.1))
    with pytest.raises(UserError, match=r"cannot resume.*threads \(1 vs 2\)"):
        LutWriter(path, lut_header(threads=2))


def test_lut_commands_import_info_and_merge(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harmonic_nas.cli import main

    jetson = LookupTable(lut_header(device="jetson-orin"), {lut_key(conv_spec(0)): lut_entry(2.0)})
    jetson.save(tmp_path / "measured.json")
    other = LookupTable(lut_header(device="jetson-orin", threads=4), {lut_key(conv_spec(1)): lut_entry(3.0)})
    other.save(tmp_path / "other.json")
    runner = CliRunner()

    result = runner.invoke(main, ["lut", "import", str(tmp_path / "measured.json"), "--into", str(tmp_path / "lut")])
    assert result.exit_code == 0, result.stderr
    assert LookupTable.load(tmp_path / "lut" / "jetson-orin.json").entries == jetson.entries
    again = runner.invoke(main, ["lut", "import", str(tmp_path / "measured.json"), "--into", str(tmp_path / "lut")])
    assert again.exit_code == 2 and "exists already (--overwrite to replace it" in again.stderr

    result = runner.invoke(main, ["lut", "info", str(tmp_path / "measured.json")])
    assert result.exit_code == 0 and "1 entries" in result.stdout and "device: jetson-orin" in result.stdout

    args = ["lut", "merge", str(tmp_path / "measured.json"), str(tmp_path / "other.json"), "--out", str(tmp_path / "m.json")]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1 and not (tmp_path / "m.json").exists()
    assert runner.invoke(main, [*args, "--force"]).exit_code == 0
    assert len(LookupTable.load(tmp_path / "m.json")) == 2
