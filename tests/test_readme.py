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


# --------------------------------------------------------------------------------------------------
# the README's command-line examples run as written


def readme_cli_blocks() -> list[list[str]]:
    """The bash blocks of the README's "On the command line" section, as lists of command lines."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## On the command line", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [[line for line in block.strip().splitlines() if line.strip()] for block in blocks]


def test_readme_cli_examples_run_as_written(tmp_path, monkeypatch):
    import shlex

    import pandas as pd
    from typer.testing import CliRunner

    from condfip.cli import app

    examples = readme_cli_blocks()[0]
    assert examples[0].startswith("condfip simulate") and any(" effect " in line for line in examples)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for line in examples:
        argv = shlex.split(line)
        assert argv[0] == "condfip"
        if argv[1] == "effect":  # as written, but fewer replicates and rows: the default costs ~1 CPU-minute
            argv += ["--bootstrap", "20", "-n", "200"]
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
        assert "error:" not in result.output and "Traceback" not in result.output, line
    assert len(pd.read_csv(tmp_path / "samples.csv")) == 1000
    assert (pd.read_csv(tmp_path / "samples.csv")["X0"] == 1.5).all()
    assert len(pd.read_csv(tmp_path / "counterfactuals.csv")) == len(pd.read_csv(tmp_path / "sim" / "data.csv"))


def test_readme_long_running_examples_use_existing_options():
    import shlex

    from typer.testing import CliRunner

    from condfip.cli import app

    runner = CliRunner()
    for line in readme_cli_blocks()[1]:
        argv = shlex.split(line)
        help_text = runner.invoke(app, [argv[1], "--help"]).output
        for option in (arg for arg in argv[2:] if arg.startswith("--")):
            assert option in help_text, f"{line}: {option} is not an option of condfip {argv[1]}"
