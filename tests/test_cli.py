"""The users' CLI commands: sample, noise, counterfactual, effect (and the help texts). Tiny live weights,
d = 4, n = 40; node names with '=' and '/' on purpose."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import condfip
from condfip.cli import app
from tiny_weights import make_weights

COLUMNS = ["a", "b=1", "p44/42", "d"]
EDGES = [("a", "b=1"), ("b=1", "p44/42"), ("a", "d")]
ROWS = 40
runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    a = rng.normal(size=ROWS)
    b = 2.0 * a + 0.5 * rng.normal(size=ROWS)
    c = np.sin(b) + 0.3 * rng.normal(size=ROWS)
    d = -a + 0.4 * rng.normal(size=ROWS)
    frame = pd.DataFrame(np.column_stack([a, b, c, d]), columns=COLUMNS)
    frame.to_csv(root / "data.csv", index=False)
    frame.to_parquet(root / "data.parquet")
    (root / "graph.csv").write_text("cause,effect\n" + "".join(f"{x},{y}\n" for x, y in EDGES))
    return {"data": root / "data.csv", "parquet": root / "data.parquet", "graph": root / "graph.csv",
            "weights": make_weights(root / "weights"), "root": root}


def cli(files, *args: str):
    result = runner.invoke(app, [*args, "--weights", str(files["weights"])])
    assert result.exit_code == 0, result.output
    return result


def table(result) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(result.stdout))


def python_scm(files):
    return condfip.load_pretrained(files["weights"]).infer(files["data"], files["graph"])


@pytest.mark.parametrize("command", ["sample", "noise", "counterfactual", "effect", "demo"])
def test_help_explains_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: condfip " + command in " ".join(result.output.split())


def test_every_command_has_a_help_and_a_shared_option_reads_the_same_everywhere():
    """``condfip --help`` and every command's help work; the options several commands take are declared once
    (``condfip.cli_options``), so each reads the same in every command."""
    import typer

    assert runner.invoke(app, ["--help"]).exit_code == 0
    helps: dict[str, set] = {}
    for name, command in typer.main.get_command(app).commands.items():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        # train's options override a config file's fields; bench's and simulate's --graph choose graphs of the
        # benchmark and of the prior, not a data table's DAG
        for param in command.params if name != "train" else ():
            if param.opts[0] != "--graph" or name not in ("bench", "simulate"):
                helps.setdefault(param.opts[0], set()).add(param.help)
    for option in ("--weights", "--seed", "--graph", "--mechanisms", "--do", "--shift",
                   "--isolated"):
        assert len(helps[option]) == 1, (option, helps[option])


def test_sample_defaults_to_the_data_rows_and_is_reproducible(files):
    first = table(cli(files, "sample", str(files["data"]), "--graph", str(files["graph"])))
    assert list(first.columns) == COLUMNS and len(first) == ROWS
    again = table(cli(files, "sample", str(files["data"]), "--graph", str(files["graph"])))
    pd.testing.assert_frame_equal(first, again)
    expected = python_scm(files).sample(ROWS, seed=0)
    np.testing.assert_allclose(first.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_sample_interventions_split_at_the_last_equals_sign(files):
    out = table(cli(files, "sample", str(files["data"]), "-g", str(files["graph"]), "--do", "b=1=0.5",
                    "--shift", "d=-2", "-n", "7", "--seed", "3"))
    assert len(out) == 7 and (out["b=1"] == 0.5).all()
    scm = python_scm(files).do({"b=1": 0.5, "d": lambda x: x - 2.0})
    np.testing.assert_allclose(out.to_numpy(), scm.sample(7, seed=3).to_numpy(), rtol=1e-12)


def test_outputs_written_atomically_as_csv_or_parquet(files, tmp_path):
    cli(files, "sample", str(files["parquet"]), "--graph", str(files["graph"]), "-n", "5",
        "-o", str(tmp_path / "s.csv"))
    cli(files, "noise", str(files["data"]), "--graph", str(files["graph"]), "-o", str(tmp_path / "n.parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.parquet", "s.csv"]  # no temporary files left
    assert len(pd.read_csv(tmp_path / "s.csv")) == 5
    noise = pd.read_parquet(tmp_path / "n.parquet")
    np.testing.assert_allclose(noise.to_numpy(), python_scm(files).noise(pd.read_csv(files["data"])).to_numpy())


def test_noise_and_counterfactual_one_row_per_data_row(files):
    noise = table(cli(files, "noise", str(files["data"]), "--graph", str(files["graph"])))
    assert noise.shape == (ROWS, 4)
    cf = table(cli(files, "counterfactual", str(files["data"]), "--graph", str(files["graph"]), "--do", "a=1.25"))
    assert cf.shape == (ROWS, 4) and (cf["a"] == 1.25).all()
    data = pd.read_csv(files["data"])
    expected = python_scm(files).counterfactual(data, {"a": 1.25})
    np.testing.assert_allclose(cf.to_numpy(), expected.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("command", ["sample", "counterfactual"])
def test_mechanisms_option_chooses_what_generates(files, command):
    args = [command, str(files["data"]), "--graph", str(files["graph"]), "--do", "a=1.25"]
    default, network = table(cli(files, *args)), table(cli(files, *args, "--mechanisms", "network"))
    model, data = condfip.load_pretrained(files["weights"]), pd.read_csv(files["data"])
    for mechanisms, got in (("kernel", default), ("network", network)):
        scm = model.infer(files["data"], files["graph"], mechanisms=mechanisms)
        expected = (scm.do({"a": 1.25}).sample(ROWS, seed=0) if command == "sample"
                    else scm.counterfactual(data, {"a": 1.25}))
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert not np.allclose(default.to_numpy(), network.to_numpy())


def test_effect_prints_one_csv_row_with_interval(files):
    out = table(cli(files, "effect", str(files["data"]), "--graph", str(files["graph"]), "--target", "p44/42",
                    "--do", "a=1", "--versus", "a=-1", "-n", "100", "--bootstrap", "20"))
    assert len(out) == 1
    row = out.iloc[0]
    assert row["target"] == "p44/42" and row["intervention"] == "do(a=1)" and row["reference"] == "do(a=-1)"
    assert row["low"] <= row["effect"] <= row["high"] and row["replicates"] == 20
    assert row["interval_covers"].startswith("resampling of the context rows only, not the model's own error")
    assert row["model_error"] == 0.0 and row["resampling_sd"] > 0  # the tiny test weights have no calibration
    plain = cli(files, "effect", str(files["data"]), "--graph", str(files["graph"]), "-t", "d",
                "--do", "b=1=3", "-n", "50", "--bootstrap", "20")
    assert "] 3/3 " in plain.stderr and "note: the 95% interval covers resampling" in plain.stderr  # progress
    plain = table(plain)
    assert plain.iloc[0]["reference"] == "no intervention" and plain.iloc[0]["effect"] == 0.0


def test_console_entry_prints_one_error_line(files, monkeypatch, capsys):
    from condfip.cli import run

    monkeypatch.setattr("sys.argv", ["condfip", "sample", str(files["data"]), "--graph", str(files["graph"]),
                                     "--do", "zz=1"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'zz'" in err[0]
