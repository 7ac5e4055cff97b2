"""The README's results are a generated benchmark file, not hand-typed numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from condfip.bench.report import render
from condfip.bench.run import SYNTH_METHODS_ORDER

ROOT = Path(__file__).resolve().parents[1]
START = re.compile(r"<!-- results:start \(generated: (?P<path>docs/results/[\w.-]+/results\.md)\) -->")
END = "<!-- results:end -->"


def readme_block() -> tuple[Path, str]:
    readme = (ROOT / "README.md").read_text()
    starts = START.findall(readme)
    assert len(starts) == 1 and readme.count(END) == 1, "README needs one results start marker and one end marker"
    block = START.split(readme, 1)[2].split(END, 1)[0]
    return ROOT / starts[0], block


def test_readme_results_block_is_the_generated_results_file():
    results_md, block = readme_block()
    generated = results_md.read_text()
    # the README demotes the file's headings by one level; nothing else may differ
    assert block.strip() == "\n".join("#" + line if line.startswith("#") else line
                                      for line in generated.strip().splitlines())


def test_results_file_renders_from_the_recorded_results():
    results_md, _ = readme_block()
    records = json.loads((results_md.parent / "results.json").read_text())
    meta = json.loads((results_md.parent / "meta.json").read_text())
    assert results_md.read_text() == render(records, meta, SYNTH_METHODS_ORDER) + "\n"
    assert {"method", "task", "cell", "d", "n_context", "value", "seconds"} <= set(records[0])


def test_readme_results_come_from_the_shipped_weights():
    from condfip.pretrained import read_weights

    results_md, _ = readme_block()
    meta = json.loads((results_md.parent / "meta.json").read_text())
    assert meta["weights_sha256"] == read_weights(None)[1]["sha256"]
