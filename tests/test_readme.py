"""The README's results are a generated benchmark file, not hand-typed numbers."""

from __future__ import annotations

import json
from pathlib import Path

from condfip.bench.report import render
from condfip.bench.run import SYNTH_METHODS_ORDER

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "quick"
START, END = "<!-- results:start (generated: docs/results/quick/results.md) -->", "<!-- results:end -->"


def test_readme_results_block_is_the_generated_results_file():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(START) == 1 and readme.count(END) == 1
    block = readme.split(START, 1)[1].split(END, 1)[0]
    generated = (RESULTS / "results.md").read_text()
    # the README demotes the file's headings by one level; nothing else may differ
    assert block.strip() == "\n".join("#" + line if line.startswith("#") else line
                                      for line in generated.strip().splitlines())


def test_results_file_renders_from_the_recorded_results():
    records = json.loads((RESULTS / "results.json").read_text())
    meta = json.loads((RESULTS / "meta.json").read_text())
    assert (RESULTS / "results.md").read_text() == render(records, meta, SYNTH_METHODS_ORDER) + "\n"
    assert {"method", "task", "cell", "d", "n_context", "value", "seconds"} <= set(records[0])
