"""Exact digests of model results, to check that a speed or memory change keeps them bit for bit.

Runs the default world under six schemes (seed 3), the small world (seed 2) and, with
``--big``, 15 steps of a 300,000-patient world, and writes a SHA-256 digest of each run's
time series, summary, records and end state. Write digests before a change, again after
it, and compare: any differing digest names the run that moved (a script, not a test).

Usage::

    .venv/bin/python benchmarks/fingerprint.py before.pkl --big
    .venv/bin/python benchmarks/fingerprint.py after.pkl --big
    .venv/bin/python benchmarks/fingerprint.py --compare before.pkl after.pkl
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from typing import Any

import numpy as np

SCHEMES = ("ffs", "capitation", "per_case", "capitation+p4p", "mixed", "per_period")


def digest(value: Any) -> str:
    """SHA-256 of a value's pickle (floats compare by their bits)."""
    return hashlib.sha256(pickle.dumps(value)).hexdigest()


def digests(big: bool) -> dict[str, str]:
    """The digests of every run."""
    import vbpsim

    out = {}
    for scheme in SCHEMES:
        result = vbpsim.run(scheme=scheme, seed=3)
        out[f"default/{scheme}/timeseries"] = digest(result.timeseries.to_dict("list"))
        out[f"default/{scheme}/summary"] = digest(result.summary)
    out["small/ffs/summary"] = digest(vbpsim.run(scheme="ffs", scenario="small", seed=2).summary)
    if big:
        sizes = {"n_patients": 300_000, "n_gp": 72, "n_hospital": 18, "n_rehab": 15, "n_nursing": 15}
        model = vbpsim.build_model(scheme="ffs", scenario="default", seed=1, years=2, **sizes)
        for _ in range(15):
            model.step()
        rows = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in model.records]
        out["300k/records"] = digest(rows)
        state = {
            "state": model.population.state,
            "provider": model.population.provider.astype(np.int64),
            "reserves": model.providers.reserves,
            "cell_means": model.risk_model.cell_means,
            "edges": model.risk_model.edges,
        }
        for name, array in state.items():
            out[f"300k/{name}"] = digest(np.ascontiguousarray(array).tobytes())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="where to write the digests, or with --compare the two files")
    parser.add_argument("--big", action="store_true", help="also a 300,000-patient world (about a minute)")
    parser.add_argument("--compare", action="store_true", help="compare two digest files")
    args = parser.parse_args()
    if args.compare:
        before, after = (pickle.load(open(path, "rb")) for path in args.paths[:2])
        moved = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        print("identical" if not moved else "differ: " + ", ".join(moved))
        return 1 if moved else 0
    with open(args.paths[0], "wb") as file:
        pickle.dump(digests(args.big), file)
    print(f"digests written to {args.paths[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
