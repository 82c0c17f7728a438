"""A finished run's results beside the paper's Table 4 (AV-MNIST): the best stage-1 backbone of each modality
and every model of the final Pareto front (val and test accuracy, the test points it loses with each modality's
features shuffled across samples, the LUT's latency and energy, the modalities it reads), with the LUT's
device, runtime and energy source named, then the paper's rows as published.
Prints JSON and a Markdown table (and writes --out, the JSON).

    python benchmarks/paper_table.py --run-dir runs/avmnist-cpu

The numbers are the run's own records (the search stores test accuracy for the final front and the best
backbones); nothing is measured here. The paper's latencies and energies are of Jetson AGX (A) and TX2 (T)
GPUs, ours of the LUT's device: compare accuracies directly, costs only in rank.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchjson import emit, machine

from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.report.format import shuffled_text
from harmonic_nas.search.runner import best_backbones, run_config
from harmonic_nas.search.store import Evaluation, RunStore

# Harmonic-NAS (ACML 2023), Table 4, AV-MNIST: (work, modality, accuracy %, latency ms, energy mJ).
PAPER_TABLE_4 = [
    ("MVAE", "image", 65.10, "A:1.35, T:2.62", "A:4.82, T:2.71"),
    ("MFAS", "image", 74.52, "A:1.03, T:1.93", "A:3.78, T:2.11"),
    ("Harmonic-NAS (TX2)", "image", 88.00, "4.97", "7.54"),
    ("Harmonic-NAS (AGX)", "image", 87.55, "3.91", "18.26"),
    ("MVAE", "audio", 42.00, "A:1.92, T:4.12", "A:9.73, T:11.71"),
    ("MFAS", "audio", 66.06, "A:1.78, T:2.92", "A:6.98, T:5.50"),
    ("Harmonic-NAS (TX2)", "audio", 88.44, "4.97", "7.18"),
    ("Harmonic-NAS (AGX)", "audio", 88.44, "3.74", "18.99"),
    ("MVAE", "image+audio", 72.30, "A:4.40, T:8.53", "A:15.64, T:15.67"),
    ("MFAS", "image+audio", 88.38, "A:4.37, T:6.41", "A:10.76, T:10.67"),
    ("BM-NAS", "image+audio", 91.11, "A:3.26, T:5.41", "A:14.17, T:8.60"),
    ("Harmonic-NAS (TX2)", "image+audio", 92.88, "8.96", "13.93"),
    ("Harmonic-NAS (TX2)", "image+audio", 95.55, "14.41", "25.49"),
    ("Harmonic-NAS (TX2)", "image+audio", 95.33, "9.11", "13.88"),
    ("Harmonic-NAS (AGX)", "image+audio", 94.22, "6.95", "37.17"),
    ("Harmonic-NAS (AGX)", "image+audio", 95.33, "7.26", "38.24"),
    ("Harmonic-NAS (AGX)", "image+audio", 95.11, "7.19", "38.14"),
]


def row(e: Evaluation, kind: str) -> dict[str, Any]:
    return {"kind": kind, "key": e.key, "modalities": "+".join(e.modalities_used), "val": round(e.val_metric, 4),
            "test": None if e.test_metric is None else round(e.test_metric, 4),
            "shuffled": shuffled_text(e) if e.kind == "candidate" else "",
            "latency_ms": round(e.latency_ms, 3), "energy_mj": round(e.energy_mj, 3)}


def ours(run_dir: Path) -> dict[str, Any]:
    cfg = run_config(run_dir)  # its paths where the run is now, whatever the directory it ran from
    header = LookupTable.load(cfg.lut_path).header
    with RunStore.open(run_dir) as store:
        backbones = sorted(best_backbones(store), key=lambda e: e.modality or "")
        front = sorted(store.pareto_front(), key=lambda e: e.latency_ms)
    rows = [row(e, "best backbone") for e in backbones] + [row(e, "Pareto model") for e in front]
    return {"run_dir": str(run_dir), "config": cfg.name,
            "lut": {"device": header.device, "host_cpu": header.host_cpu, "runtime": header.runtime,
                    "threads": header.threads, "batch_size": header.batch_size, "energy": header.energy_source},
            "front_reads_every_modality": all(len(e.modalities_used) == len(cfg.modalities) for e in front),
            "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lut = result["lut"]
    device = f"{lut['device']} ({lut['host_cpu']}, {lut['runtime']}, {lut['threads']} thread(s), batch {lut['batch_size']})"
    lines = ["| work | what | modality | val % | test % | test, a modality shuffled (points) | latency ms | energy mJ |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        test = "-" if r["test"] is None else f"{100 * r['test']:.2f}"
        lines.append(f"| ours ({result['config']}) | {r['kind']} {r['key']} | {r['modalities']} | {100 * r['val']:.2f} "
                     f"| {test} | {r['shuffled']} | {r['latency_ms']:.3f} | {r['energy_mj']:.3f} |")
    for work, modality, accuracy, latency, energy in PAPER_TABLE_4:
        lines.append(f"| {work} (paper) | | {modality} | | {accuracy:.2f} | | {latency} | {energy} |")
    lines.append(f"\nOurs: latency and energy from the LUT of {device}; energy {lut['energy']}. "
                 "Paper: Jetson AGX (A) and TX2 (T), measured.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    result = machine("paper_table")
    result.update(ours(args.run_dir))
    result["markdown"] = markdown(result)
    emit(result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
