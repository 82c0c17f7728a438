"""Is the prepared av-digits (recipe avmnist) the data sitting 1 trained on? The spectrograms are not
bit-reproducible (two preparations on one machine differ by up to 2.4e-7, float32 rounding), so each array
of numbers is compared by its float64 sums of absolute values and of squares and first row, to a relative 1e-5.

    python paper-run/data_check.py write   # sitting 1: record data.json
    python paper-run/data_check.py         # later sittings: exit 1 and name the arrays that differ
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(".cache/harmonic-nas/data/av-digits-7a115d999ba6")
RECORD = Path(__file__).with_name("data.json")


def summary(path: Path) -> dict:
    a = np.load(path, mmap_mode="r")
    if not np.issubdtype(a.dtype, np.number):  # names (voices, noise clips): exact
        return {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": hashlib.sha256(np.asarray(a).tobytes()).hexdigest()}
    rows = a.reshape(len(a), -1)
    total = squares = 0.0
    for start in range(0, len(rows), 4096):
        block = np.asarray(rows[start:start + 4096], dtype=np.float64)
        total, squares = total + np.abs(block).sum(), squares + (block * block).sum()
    return {"shape": list(a.shape), "dtype": str(a.dtype), "abs_sum": total, "squares": squares,
            "first_row": np.asarray(rows[0], dtype=np.float64)[::97].tolist()}


def _numbers(s: dict) -> list:
    return [s["abs_sum"], s["squares"], *s["first_row"]]


def main() -> int:
    found = {str(p.relative_to(DATA)): summary(p) for p in sorted(DATA.glob("*/*.npy"))}
    if sys.argv[1:] == ["write"]:
        RECORD.write_text(json.dumps(found, indent=1) + "\n")
        return 0
    recorded = json.loads(RECORD.read_text())
    bad = [name for name, want in recorded.items()
           if name not in found or found[name]["shape"] != want["shape"] or found[name]["dtype"] != want["dtype"]
           or found[name].get("sha256") != want.get("sha256")
           or "abs_sum" in want and not np.allclose(_numbers(found[name]), _numbers(want), rtol=1e-5, atol=1e-6)]
    print("the same data" if not bad else f"differ: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
