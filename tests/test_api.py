"""The Python API of docs/api.md: a light ``import harmonic_nas``, ``open_run`` and its ``Run`` on the session's
smoke run (front, evaluations, generations, DataFrame, a model's predictions, export, report), and the
walk-through of docs/api.md executed block by block so that it cannot drift from the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas
import pytest
import torch
from helpers import ROOT

import harmonic_nas
from harmonic_nas import pipeline
from harmonic_nas.data.val_parts import val_parts
from harmonic_nas.errors import UserError
from harmonic_nas.metrics import score
from harmonic_nas.search.store import RunStore

DOC = ROOT / "docs" / "api.md"


def test_import_and_the_api_names_load_no_torch() -> None:
    code = ("import sys, harmonic_nas; names = set(dir(harmonic_nas)); "
            "assert set(harmonic_nas.__all__) <= names, set(harmonic_nas.__all__) - names; "
            "harmonic_nas.load_config, harmonic_nas.open_run, harmonic_nas.Run; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_steps_are_the_pipeline_functions() -> None:
    assert harmonic_nas.run_search is pipeline.search and harmonic_nas.write_report is pipeline.report
    for name in ("prepare", "train_supernets", "profile", "export_model", "export_front"):
        assert getattr(harmonic_nas, name) is getattr(pipeline, name)
    assert set(harmonic_nas.__all__) == set(harmonic_nas._LAZY) | {"__version__"}
    with pytest.raises(AttributeError, match="no attribute 'searchh'"):
        harmonic_nas.searchh  # noqa: B018


def test_open_run_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"^{tmp_path}: not a harmonic-nas run of variant sb-sf-hw "
                                        rf"\(no search store {tmp_path}/run.sqlite\)"):
        harmonic_nas.open_run(tmp_path)
    with pytest.raises(UserError, match=r"not a harmonic-nas run of variant sb-sf-hw \(no such directory\)"):
        harmonic_nas.open_run(tmp_path / "missing")
    with pytest.raises(UserError, match="variant 'sbsf': expected one of"):
        harmonic_nas.open_run(tmp_path, variant="sbsf")
    (tmp_path / "run.sqlite").write_text("not a database")
    with pytest.raises(UserError, match="run.sqlite: damaged or not a harmonic-nas run store"):
        harmonic_nas.open_run(tmp_path)


# ---- on the smoke run (slow, with the e2e tests' timeout: the first user of smoke_run runs the job) -------

@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_front_evaluations_and_generations_are_the_store(smoke_run: Path) -> None:
    run = harmonic_nas.open_run(smoke_run)
    with RunStore.open(smoke_run) as store:
        assert [e.key for e in run.front()] == [e.key for e in store.pareto_front()]
        assert [e.key for e in run.evaluations()] == [e.key for e in store.evaluations("candidate")]
        assert len(run.evaluations(None)) == len(store.evaluations())
    assert {e.kind for e in run.evaluations("backbone")} == {"backbone"}
    generations = run.generations()
    assert [(g["generation"], g["finished"]) for g in generations] == [(0, True), (1, True)]
    assert generations[-1]["front_size"] == len(run.front())
    assert run.config.run_dir == smoke_run and run.config.name == "smoke"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_dataframe_has_a_row_per_evaluation(smoke_run: Path) -> None:
    run = harmonic_nas.open_run(smoke_run)
    df = run.to_dataframe()
    evaluations = run.evaluations()
    assert list(df.id) == [e.key for e in evaluations] and list(df.val) == [e.val_metric for e in evaluations]
    assert set(df.id[df.on_front]) == {e.key for e in run.front()}
    assert df.test[df.on_front].notna().all()  # the final front's test metric is measured
    for m in ("image", "audio"):  # and with each modality shuffled
        assert list(df[f"test_{m}_shuffled"][df.on_front]) == [e.test_shuffled[m] for e in evaluations if e.key in
                                                                set(df.id[df.on_front])]
    first = evaluations[0]
    row = df.iloc[0]
    assert (row.image_backbone, row.audio_backbone) == tuple(first.candidate.backbones[m].short_text()
                                                             for m in ("image", "audio"))
    assert (row.cells, row.nodes, row.generation) == (first.candidate.macro.cells, first.candidate.macro.nodes, 0)
    assert row.modalities == "+".join(first.modalities_used) and row.latency_ms == first.latency_ms
    both = run.to_dataframe(None)
    assert len(both) == len(run.evaluations(None)) and set(both.kind) == {"backbone", "candidate"}
    backbone = both[both.kind == "backbone"].iloc[0]
    assert pandas.isna(backbone.cells) and pandas.isna(backbone.image_backbone) != pandas.isna(backbone.audio_backbone)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_dataframe_without_pandas_names_the_extra(smoke_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import fails as if pandas were absent
    with pytest.raises(UserError, match=r"^Run.to_dataframe needs pandas: pip install harmonic-nas\[pandas\]$"):
        harmonic_nas.open_run(smoke_run).to_dataframe()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_model_predicts_what_the_search_measured(smoke_run: Path) -> None:
    run = harmonic_nas.open_run(smoke_run)
    front = run.front()
    model = run.model("best-acc")
    assert not model.training and model.evaluation.key == front[0].key
    cfg = run.config
    val = run.dataset.split("val")
    part = val.subset(val_parts(len(val), cfg.search.val_score_fraction, cfg.runtime.seed).score)
    with torch.no_grad():
        logits = model(part.inputs)
    assert logits.shape == (len(part), run.dataset.num_classes)
    assert score(logits, torch.as_tensor(part.targets), run.dataset.task) == pytest.approx(front[0].val_metric, abs=1e-6)
    fastest = min(front, key=lambda e: (e.latency_ms, -e.val_metric, e.key))
    assert run.model("fastest").evaluation.key == fastest.key
    assert run.model(fastest.key[:8]).evaluation.key == fastest.key
    with pytest.raises(UserError, match="model 'zzz': no Pareto model of .* has this id or id prefix"):
        run.model("zzz")
    with pytest.raises(UserError, match=f"the batch has no '{model.modalities[0]}' input"):
        model({})


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_export_and_report_write_where_asked(smoke_run: Path, tmp_path: Path) -> None:
    run = harmonic_nas.open_run(smoke_run)
    result = run.export("fastest", fmt="pt", out=tmp_path / "model", measure=False)
    assert result.key == run.model("fastest").evaluation.key and result.out_dir == tmp_path / "model"
    assert (tmp_path / "model" / "model.pt").is_file() and (tmp_path / "model" / "arch.json").is_file()
    index = run.report(tmp_path / "report")
    assert index == tmp_path / "report" / "index.html" and index.is_file()


# ---- docs/api.md ------------------------------------------------------------------------------------------


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_walk_through_of_docs_api_runs(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Every python block of docs/api.md in order, in one namespace: the finished run it reads is the session's
    smoke run, its new run goes to tmp_path. The new run starts with the smoke run's supernets and LUT (same
    config: those steps are skipped), so the test pays for the search, report and export alone."""
    new_run = tmp_path / "smoke-api"
    for part in ("supernets", "lut"):
        shutil.copytree(smoke_run / part, new_run / part)
    paths = {'"/tmp/smoke"': repr(str(smoke_run)), '"/tmp/smoke-api"': repr(str(new_run)),
             '"/tmp/smoke-api-fastest"': repr(str(tmp_path / "fastest"))}
    blocks = doc_blocks()
    for literal, path in paths.items():
        assert any(literal in block for block in blocks), f"docs/api.md no longer uses {literal}"
        blocks = [block.replace(literal, path) for block in blocks]
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "Run(" in out and "val accuracy" in out
    assert re.search(r"^generation 0: front \d+", out, re.M) and re.search(r"^generation 1: front \d+", out, re.M)
    assert out.count("  evaluated ") == len(harmonic_nas.open_run(new_run).evaluations())
    assert (tmp_path / "fastest" / "model.ts").is_file() and (new_run / "report" / "index.html").is_file()
