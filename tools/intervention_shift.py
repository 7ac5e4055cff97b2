"""How far an SCM's hard intervention 3 context SDs above the mean moves each child of the target, against the
truth, on 3 fixed P_IN linear d = 10 SCMs (400 context rows; the issue's flattening check, also a test):
``python tools/intervention_shift.py [--weights FOLDER_OR_CHECKPOINT] [--mechanisms kernel|network]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import condfip
from shift_check import child_shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--mechanisms", default="kernel", choices=("kernel", "network"))
    args = parser.parse_args()
    model = condfip.load_pretrained(args.weights)
    rows = child_shifts(model, mechanisms=args.mechanisms)
    worst = 0.0
    for scm, target, child, predicted, true in rows:
        error = abs(predicted - true) / abs(true)
        worst = max(worst, error)
        print(f"SCM {scm} do({target}) -> {child}: predicted shift {predicted:+.3f}, true {true:+.3f}, "
              f"relative error {error:.2f}")
    print(f"worst relative error {worst:.2f} (target <= 0.25)")


if __name__ == "__main__":
    main()
