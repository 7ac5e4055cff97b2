"""Bad input: one clear InputError naming the culprit in Python, and one line ``error: ...`` with a non-zero
exit code and no traceback on the CLI. Plus hypothesis fuzzing of the ``--do`` parser."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import condfip
from condfip import InputError
from condfip.cli import app
from condfip.commands import parse_assignments
from condfip.memory import MEMORY_ENV, check_memory
from condfip.pretrained import WEIGHTS_DIR
from tiny_weights import make_weights

COLUMNS = ["a", "b", "c", "d"]
EDGES = [("a", "b"), ("b", "c"), ("a", "d")]
runner = CliRunner()

# the edge list shipped in cdt 0.6.0 (cyto_full_target.csv): it has the cycle plcg -> PIP2 -> PIP3 -> plcg
CDT_TARGET = """"Cause","Effect"
"PIP2","PKC"
"plcg","PIP2"
"PIP3","plcg"
"PIP2","PIP3"
"plcg","PKC"
"PKC","pjnk"
"PKC","P38"
"PKA","P38"
"PKC","praf"
"PKA","praf"
"praf","pmek"
"pmek","p44/42"
"PKC","pmek"
"PKA","pakts473"
"PIP3","pakts473"
"PKA","pmek"
"PKA","p44/42"
"PKA","pjnk"
"""


def frame(rows: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    b = a + rng.normal(size=rows)
    return pd.DataFrame({"a": a, "b": b, "c": b + rng.normal(size=rows), "d": -a + rng.normal(size=rows)})


def edge_list(edges) -> str:
    return "cause,effect\n" + "".join(f"{x},{y}\n" for x, y in edges)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad")
    frame().to_csv(path / "data.csv", index=False)
    (path / "graph.csv").write_text(edge_list(EDGES))
    make_weights(path / "weights")
    return path


@pytest.fixture(scope="module")
def model(root):
    return condfip.load_pretrained(root / "weights")


@pytest.fixture(scope="module")
def scm(model, root):
    return model.infer(root / "data.csv", root / "graph.csv")


def cli_error(root: Path, *args: str, weights: Path | None = None) -> str:
    """Run the CLI, assert one line 'error: ...', non-zero exit, no traceback; return the line."""
    result = runner.invoke(app, [*args, "--weights", str(weights or root / "weights")])
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def python_error(fn, *args, one_line: bool = True, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert not one_line or "\n" not in message, message
    return message


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# graphs


def test_cyclic_graph_prints_the_cycle(tmp_path, model):
    sachs = pd.read_csv(Path(condfip.__file__).parent / "data" / "sachs.csv").iloc[:40]
    data = tmp_path / "sachs.csv"
    sachs.to_csv(data, index=False)
    graph = write(tmp_path / "cyto_full_target.csv", CDT_TARGET)
    cycle = re.compile(r"cycle (plcg -> PIP2 -> PIP3 -> plcg|PIP2 -> PIP3 -> plcg -> PIP2|PIP3 -> plcg -> PIP2 -> PIP3)")
    assert cycle.search(python_error(model.infer, data, graph))
    line = cli_error(tmp_path, "sample", str(data), "--graph", str(graph), weights=WEIGHTS_DIR)
    assert cycle.search(line) and "cyto_full_target.csv" in line


def test_self_loop(root, model, tmp_path):
    graph = write(tmp_path / "loop.csv", edge_list([*EDGES, ("c", "c")]))
    assert "self-loop on node(s) 'c'" in python_error(model.infer, root / "data.csv", graph)
    assert "self-loop on node(s) 'c'" in cli_error(root, "noise", str(root / "data.csv"), "-g", str(graph))


def test_graph_node_missing_from_data(root, model, tmp_path):
    graph = write(tmp_path / "extra.csv", edge_list([*EDGES, ("c", "zeta")]))
    assert "graph node(s) 'zeta' have no data column" in python_error(model.infer, root / "data.csv", graph)
    assert "'zeta'" in cli_error(root, "sample", str(root / "data.csv"), "-g", str(graph))


def test_data_column_missing_from_graph(root, model, tmp_path):
    # an adjacency table carries its own node set: 'd' is not in it
    names = ["a", "b", "c"]
    text = "," + ",".join(names) + "\n" + "a,0,1,0\nb,0,0,1\nc,0,0,0\n"
    graph = write(tmp_path / "adjacency.csv", text)
    assert "data column(s) 'd' are not graph nodes" in python_error(model.infer, root / "data.csv", graph)
    assert "'d'" in cli_error(root, "sample", str(root / "data.csv"), "-g", str(graph))


# --------------------------------------------------------------------------------------------------
# data


def data_case(tmp_path: Path, name: str, content: str | bytes) -> Path:
    return write(tmp_path / name, content)


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def _bad_frames():
    f = frame()
    nan = f.copy()
    nan.loc[[2, 5], "b"] = np.nan
    nan.loc[7, "b"] = np.inf
    text = f.astype(object)
    text.loc[3, "c"] = "abc"
    const = f.copy()
    const["d"] = 1.0
    dup = _csv(f).replace("a,b,c,d", "a,b,c,a", 1)
    return {
        "duplicate": (dup, "'a' appear more than once"),
        "nan": (_csv(nan), "'b' (3)"),
        "non-numeric": (_csv(text), "column 'c'"),
        "constant": (_csv(const), "'d' in"),
        "few-rows": (_csv(f.iloc[:10]), "10 row(s)"),
        "empty": ("", "is empty"),
        "not-utf8": (b"\xff\xfe\x00garbage\x81", "not UTF-8"),
    }


@pytest.mark.parametrize("case", list(_bad_frames()))
def test_bad_data_files(case, root, model, tmp_path):
    content, expected = _bad_frames()[case]
    data = data_case(tmp_path, f"{case}.csv", content)
    message = python_error(model.infer, data, root / "graph.csv")
    assert expected in message and f"{case}.csv" in message
    line = cli_error(root, "sample", str(data), "--graph", str(root / "graph.csv"))
    assert expected in line and f"{case}.csv" in line


def test_missing_and_unreadable_files(root, model, tmp_path):
    missing = tmp_path / "nope.csv"
    assert "does not exist" in python_error(model.infer, missing, root / "graph.csv")
    assert "nope.csv" in cli_error(root, "noise", str(missing), "-g", str(root / "graph.csv"))
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert "is a directory" in python_error(model.infer, folder, root / "graph.csv")
    assert "is a directory" in cli_error(root, "noise", str(folder), "-g", str(root / "graph.csv"))
    broken = write(tmp_path / "broken.parquet", b"PAR1 this is not parquet")
    assert "broken.parquet" in python_error(model.infer, broken, root / "graph.csv")
    assert "broken.parquet" in cli_error(root, "noise", str(broken), "-g", str(root / "graph.csv"))


# --------------------------------------------------------------------------------------------------
# interventions


def test_unknown_intervention_node(root, scm):
    assert "unknown intervention node 'zz'" in python_error(scm.do, {"zz": 1.0})
    line = cli_error(root, "sample", str(root / "data.csv"), "-g", str(root / "graph.csv"), "--do", "zz=1")
    assert "'zz'" in line and "--do" in line
    line = cli_error(root, "effect", str(root / "data.csv"), "-g", str(root / "graph.csv"), "-t", "c",
                     "--do", "a=1", "--versus", "q=0")
    assert "'q'" in line and "--versus" in line
    line = cli_error(root, "effect", str(root / "data.csv"), "-g", str(root / "graph.csv"), "-t", "zz",
                     "--do", "a=1")
    assert "--target 'zz'" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_intervention_value(value, root, scm):
    assert "'a' must be a finite number" in python_error(scm.do, {"a": float(value)})
    line = cli_error(root, "counterfactual", str(root / "data.csv"), "-g", str(root / "graph.csv"),
                     "--do", f"a={value}")
    assert "finite" in line and f"a={value}" in line


@pytest.mark.parametrize("arg, expected", [("a", "malformed"), ("=1", "no node name"), ("a=", "not a number"),
                                           ("a=x", "'x' is not a number"), ("a=1,5", "not a number")])
def test_malformed_do(arg, expected, root):
    message = python_error(parse_assignments, [arg], "--do", COLUMNS)
    assert expected in message and "--do" in message
    line = cli_error(root, "sample", str(root / "data.csv"), "-g", str(root / "graph.csv"), "--do", arg)
    assert expected in line and repr(arg) in line


def test_same_node_twice_and_do_with_shift(root):
    line = cli_error(root, "sample", str(root / "data.csv"), "-g", str(root / "graph.csv"), "--do", "a=1",
                     "--do", "a=2")
    assert "'a' twice" in line
    line = cli_error(root, "sample", str(root / "data.csv"), "-g", str(root / "graph.csv"), "--do", "a=1",
                     "--shift", "a=2")
    assert "both --do and --shift" in line


# --------------------------------------------------------------------------------------------------
# weights


@pytest.fixture
def weights_copy(tmp_path) -> Path:
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, folder)
    (folder / "condfip.safetensors").chmod(0o644)
    return folder


@pytest.mark.parametrize("recorded_sha256, message", [(True, "corrupt"), (False, "truncated or corrupt")],
                         ids=["with-sha256", "without-sha256"])
def test_truncated_weights(root, weights_copy, recorded_sha256, message):
    if not recorded_sha256:
        card_path = weights_copy / "condfip.json"
        card = json.loads(card_path.read_text())
        card_path.write_text(json.dumps({k: v for k, v in card.items() if k != "sha256"}))
    path = weights_copy / "condfip.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert message in python_error(condfip.load_pretrained, weights_copy)
    line = cli_error(root, "noise", str(root / "data.csv"), "-g", str(root / "graph.csv"), weights=weights_copy)
    assert message in line and "condfip.safetensors" in line


def test_corrupt_weights(root, weights_copy):
    path = weights_copy / "condfip.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "corrupt" in python_error(condfip.load_pretrained, weights_copy)
    assert "corrupt" in cli_error(root, "noise", str(root / "data.csv"), "-g", str(root / "graph.csv"),
                                  weights=weights_copy)


def test_weights_from_an_incompatible_version(root, weights_copy):
    card_path = weights_copy / "condfip.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "format_version": 99}))
    assert "format version 99" in python_error(condfip.load_pretrained, weights_copy)
    assert "format version 99" in cli_error(root, "noise", str(root / "data.csv"), "-g", str(root / "graph.csv"),
                                            weights=weights_copy)
    card_path.write_text(json.dumps({**card, "model": {**card["model"], "width": 32}}))
    # pretrained.build_network quotes torch's multi-line load_state_dict error (the CLI flattens it)
    assert "do not fit this version's network" in python_error(condfip.load_pretrained, weights_copy,
                                                              one_line=False)
    assert "do not fit" in cli_error(root, "noise", str(root / "data.csv"), "-g", str(root / "graph.csv"),
                                     weights=weights_copy)


def test_missing_weights_folder(root, tmp_path):
    assert "does not exist" in python_error(condfip.load_pretrained, tmp_path / "none")
    assert "does not exist" in cli_error(root, "noise", str(root / "data.csv"), "-g", str(root / "graph.csv"),
                                         weights=tmp_path / "none")


# --------------------------------------------------------------------------------------------------
# memory


def test_too_large_for_memory(root, model, monkeypatch):
    config = model.network.config
    message = python_error(check_memory, 30, 4, config, available=1000)
    assert "too large for memory" in message and "4 nodes" in message and "30 context rows" in message
    assert "fix:" in message and MEMORY_ENV in message
    monkeypatch.setenv(MEMORY_ENV, "1K")
    assert "1.0 KiB is available" in python_error(check_memory, 30, 4, config)
    line = cli_error(root, "sample", str(root / "data.csv"), "-g", str(root / "graph.csv"))
    assert "too large for memory" in line and "4 nodes" in line
    monkeypatch.setenv(MEMORY_ENV, "lots")
    assert MEMORY_ENV in python_error(check_memory, 30, 4, config)


def test_infer_itself_refuses_too_large_problems(root, model, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "1K")
    assert "too large for memory" in python_error(model.infer, root / "data.csv", root / "graph.csv")


# --------------------------------------------------------------------------------------------------
# fuzzing the --do parser


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=3), st.sampled_from([None, COLUMNS]))
def test_do_parser_raises_only_input_errors(values, columns):
    try:
        parsed = parse_assignments(values, "--do", columns)
    except InputError as err:
        assert "--do" in str(err)
        return
    for node, value in parsed.items():
        assert math.isfinite(value) and isinstance(node, str)
        assert columns is None or node in columns


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(COLUMNS + ["x=y", " a "]), st.floats(allow_nan=False, allow_infinity=False))
def test_do_parser_round_trips_finite_values(node, value):
    columns = COLUMNS + ["x=y"]
    parsed = parse_assignments([f"{node}={value!r}"], "--do", columns)
    assert parsed == {node.strip(): value}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=10), st.sampled_from(["a=1", "a=nan", "b=", "=", "a==1", "c=1e400"])))
def test_cli_do_fuzz_never_escapes(text, root):
    result = runner.invoke(app, ["sample", str(root / "data.csv"), "-g", str(root / "graph.csv"), "-n", "3",
                                 f"--do={text}", "--weights", str(root / "weights")])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code != 0:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
