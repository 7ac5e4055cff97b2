"""Say when the answer is a guess: a request beyond the context's range warns (``condfip.ExtrapolationWarning``,
naming the node and how far beyond the range it is in context SDs), through every command of the SCM
interface and as one ``warning: ...`` line on the CLI; a request inside the range warns nothing. And the trust
report's warnings (only those with a measured accuracy loss behind them) reach the CLI."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import condfip
from condfip import ExtrapolationWarning
from condfip.cli import app
from tiny_weights import make_weights

EDGES = [("a", "b"), ("b", "c")]
runner = CliRunner()


def make_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    b = a + rng.normal(size=rows)
    return pd.DataFrame({"a": a, "b": b, "c": b + rng.normal(size=rows)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("range")
    make_frame().to_csv(root / "data.csv", index=False)
    (root / "graph.csv").write_text("cause,effect\n" + "".join(f"{x},{y}\n" for x, y in EDGES))
    return {"data": root / "data.csv", "graph": root / "graph.csv", "weights": make_weights(root / "weights"),
            "root": root}


@pytest.fixture(scope="module")
def scm(files):
    return condfip.load_pretrained(files["weights"]).infer(files["data"], files["graph"])


def beyond(scm, node: str, sds: float) -> float:
    """A value ``sds`` context SDs above the context's largest value of ``node``."""
    j = scm.columns.index(node)
    return float(scm.context[node].max() + sds * scm.std[j])


def caught(action) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in seen if issubclass(w.category, ExtrapolationWarning)]


def test_hard_intervention_beyond_the_range_warns_with_node_and_distance(scm):
    messages = caught(lambda: scm.do({"a": beyond(scm, "a", 3.0)}).sample(20, seed=0))
    assert len(messages) == 1
    assert messages[0].startswith("do(a=") and "3.0 context SDs above its largest context value" in messages[0]
    below = float(scm.context["b"].min() - 2.5 * scm.std[1])
    (message,) = caught(lambda: scm.do({"b": below}))
    assert "do(b=" in message and "2.5 context SDs below its smallest" in message


def test_shift_result_beyond_the_range_warns(scm):
    messages = caught(lambda: scm.do({"a": lambda x: x + 10 * scm.std[0]}).sample(50, seed=0))
    assert len(messages) == 1 and "shift of 'a'" in messages[0] and "context SDs above" in messages[0]
    far = float(re.search(r"up to ([\d.]+) context SDs", messages[0]).group(1))
    assert 0 < far <= 10.0


def test_query_rows_beyond_the_range_warn_for_noise_and_counterfactuals(scm):
    rows = make_frame(rows=20, seed=1)
    rows.loc[3, "c"] = beyond(scm, "c", 4.0)
    for action in (lambda: scm.noise(rows), lambda: scm.counterfactual(rows, {"a": 0.0})):
        messages = caught(action)
        assert any("(20 in all)" in m and "'c' (1 row(s), up to 4.0 context SDs above" in m
                   for m in messages), messages


def test_requests_inside_the_range_warn_nothing(scm):
    inside = float(scm.context["a"].median())
    assert caught(lambda: scm.do({"a": inside}).sample(50, seed=0)) == []
    assert caught(lambda: scm.do({"a": lambda x: np.clip(x + 0.1, None, scm.context["a"].max())}).sample(20)) == []
    assert caught(lambda: scm.noise(scm.context)) == []
    assert caught(lambda: scm.counterfactual(scm.context, {"b": inside})) == []


def test_cli_prints_one_warning_line_for_a_request_beyond_the_range(files, scm):
    value = beyond(scm, "a", 3.0)
    args = ["sample", str(files["data"]), "-g", str(files["graph"]), "-n", "5", "--weights", str(files["weights"])]
    result = runner.invoke(app, [*args, "--do", f"a={value!r}"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: do(a=")]
    assert len(warned) == 1 and "3.0 context SDs" in warned[0]
    assert "ExtrapolationWarning" not in result.stderr and ".py:" not in result.stderr  # not Python's format
    inside = runner.invoke(app, [*args, "--do", f"a={float(scm.context['a'].median())!r}"])
    assert inside.exit_code == 0 and "context SDs" not in inside.stderr


def test_trust_report_warnings_reach_the_cli_and_name_the_measurement(files, tmp_path):
    small = tmp_path / "small.csv"
    make_frame(rows=30).to_csv(small, index=False)  # fewer than the tiny model's smallest training context (50)
    result = runner.invoke(app, ["noise", str(small), "-g", str(files["graph"]), "--weights", str(files["weights"])])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "smallest training context" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: the context has 30 rows")
    assert "n = 50 is a median" in lines[0]  # the measured accuracy loss behind it
    assert len(pd.read_csv(io.StringIO(result.stdout))) == 30
