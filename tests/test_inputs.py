"""Tests for condfip.inputs: every bad input raises InputError naming the culprit, and nothing else escapes."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from condfip.errors import InputError
from condfip.inputs import MIN_ROWS, InputWarning, load_inputs, read_data, read_graph, validate

# awkward but legal names: a slash, a comma (quoted in CSV), a space, unicode
NAMES = ["p44/42", "a,b", "x y", "ünï"]
EDGES = [("p44/42", "a,b"), ("a,b", "x y"), ("p44/42", "ünï")]


def _frame(rows: int = 30, names: list[str] = NAMES, seed: int = 0) -> pd.DataFrame:
    """A continuous data table with the given column names."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(names))), columns=names)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _raises(pattern: str):
    """pytest.raises(InputError) matching ``pattern`` literally."""
    return pytest.raises(InputError, match=re.escape(pattern))


def _graph_edges(graph: nx.DiGraph) -> set[tuple[str, str]]:
    return set(graph.edges())


# --------------------------------------------------------------------------------------------------
# read_data: accepted sources


def test_min_rows_is_twenty():
    assert MIN_ROWS == 20


def test_read_data_dataframe_keeps_index_and_makes_float_str_columns():
    frame = pd.DataFrame({0: np.arange(30), "b": np.linspace(0, 1, 30)}, index=[f"r{i}" for i in range(30)])
    data = read_data(frame)
    assert list(data.columns) == ["0", "b"]
    assert all(dtype == np.float64 for dtype in data.dtypes)
    assert list(data.index) == list(frame.index)
    assert frame[0].dtype != np.float64  # the input is not modified


def test_read_data_csv_round_trip_with_awkward_names(tmp_path):
    frame = _frame()
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    data = read_data(path)
    assert list(data.columns) == NAMES
    np.testing.assert_allclose(data.to_numpy(), frame.to_numpy())


def test_read_data_csv_with_index_column(tmp_path):
    frame = _frame()
    path = tmp_path / "data.csv"
    frame.to_csv(path)  # first header cell is empty: the index
    data = read_data(str(path))
    assert list(data.columns) == NAMES
    assert list(data.index) == list(range(30))


def test_read_data_parquet_round_trip(tmp_path):
    frame = _frame()
    frame.index = [f"row{i}" for i in range(len(frame))]
    for suffix in (".parquet", ".pq"):
        path = tmp_path / f"data{suffix}"
        frame.to_parquet(path)
        data = read_data(path)
        pd.testing.assert_frame_equal(data, frame, check_column_type=False, check_index_type=False)


def test_read_data_numpy_array_with_columns():
    array = np.random.default_rng(1).normal(size=(25, 2))
    data = read_data(array, columns=["u", "v"])
    assert list(data.columns) == ["u", "v"]
    np.testing.assert_array_equal(data.to_numpy(), array)


def test_read_data_columns_selects_and_orders():
    frame = _frame().assign(label=["x"] * 30)  # a text column that is dropped by the selection
    data = read_data(frame, columns=["x y", "p44/42"])
    assert list(data.columns) == ["x y", "p44/42"]


def test_read_data_warns_on_binary_column():
    frame = _frame().assign(treated=np.arange(30) % 2)
    with pytest.warns(InputWarning, match=re.escape("'treated'")) as record:
        read_data(frame)
    assert len(record) == 1
    assert "continuous" in str(record[0].message)


def test_read_data_continuous_columns_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_data(_frame())


# --------------------------------------------------------------------------------------------------
# read_data: errors


def test_read_data_missing_file(tmp_path):
    with _raises("'" + str(tmp_path / "nope.csv") + "' does not exist"):
        read_data(tmp_path / "nope.csv")


def test_read_data_empty_file(tmp_path):
    path = _write(tmp_path / "empty.csv", "")
    with _raises("empty.csv' is empty"):
        read_data(path)


def test_read_data_blank_file(tmp_path):
    path = _write(tmp_path / "blank.csv", "\n  \n")
    with _raises("blank.csv"):
        read_data(path)


def test_read_data_directory(tmp_path):
    with _raises("is a directory"):
        read_data(tmp_path)


def test_read_data_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("caf\xe9\n1\n".encode("latin-1"))
    with _raises("latin.csv' is not UTF-8"):
        read_data(path)


def test_read_data_duplicate_csv_header(tmp_path):
    path = _write(tmp_path / "dup.csv", "a,b,a\n" + "1,2,3\n" * 30)
    with _raises("'a' appear more than once"):
        read_data(path)


def test_read_data_duplicate_dataframe_columns():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 2)), columns=["q", "q"])
    with _raises("'q' appear more than once"):
        read_data(frame)


def test_read_data_ragged_csv_row(tmp_path):
    path = _write(tmp_path / "ragged.csv", "a,b\n1,2\n3\n")
    with _raises("line 3 of data file"):
        read_data(path)


def test_read_data_non_numeric_csv_column(tmp_path):
    frame = _frame().assign(city=["Oslo"] * 30)
    path = tmp_path / "text.csv"
    frame.to_csv(path, index=False)
    with _raises("column 'city'"):
        read_data(path)


def test_read_data_non_numeric_dataframe_column():
    with _raises("column 'when' in the data DataFrame is not numeric"):
        read_data(_frame().assign(when=pd.Timestamp("2020-01-01")))


def test_read_data_nan_and_inf_named_with_counts():
    frame = _frame()
    frame.iloc[[1, 2, 3], 0] = np.nan
    frame.iloc[5, 2] = np.inf
    with pytest.raises(InputError, match=r"'p44/42' \(3\).*'x y' \(1\)"):
        read_data(frame)


def test_read_data_missing_csv_cells_are_nan(tmp_path):
    path = _write(tmp_path / "gaps.csv", "a,b\n" + "1,2\n2,3\n" * 14 + ",4\nNA,5\n")
    with _raises("'a' (2)"):
        read_data(path)


def test_read_data_constant_column():
    with _raises("'flat'"):
        read_data(_frame().assign(flat=3.0))


def test_read_data_too_few_rows():
    with _raises(f"has 5 row(s) but condfip needs at least MIN_ROWS={MIN_ROWS}"):
        read_data(_frame(rows=5))


def test_read_data_no_columns():
    with _raises("has no columns"):
        read_data(pd.DataFrame(index=range(30)))


def test_read_data_array_needs_columns():
    with _raises("pass columns=[...] with 3 names"):
        read_data(np.zeros((30, 3)))


def test_read_data_array_wrong_column_count():
    with _raises("has 3 columns but 2 names"):
        read_data(np.zeros((30, 3)), columns=["a", "b"])


def test_read_data_array_must_be_2d():
    with _raises("1 dimension(s)"):
        read_data(np.zeros(30), columns=["a"])


def test_read_data_unknown_column_selected():
    with _raises("columns 'nope' are not in the data DataFrame"):
        read_data(_frame(), columns=["nope"])


def test_read_data_unsupported_type():
    with _raises("cannot read data from a builtins.list"):
        read_data([[1.0, 2.0]])


def test_read_data_corrupt_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with _raises("bad.parquet' as Parquet"):
        read_data(path)


def test_read_data_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    _frame().to_parquet(path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with _raises("pip install 'condfip[parquet]'"):
        read_data(path)


# --------------------------------------------------------------------------------------------------
# read_graph: round trips of every format


def _dag() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(NAMES)
    graph.add_edges_from(EDGES)
    return graph


def _adjacency() -> np.ndarray:
    matrix = np.zeros((len(NAMES), len(NAMES)), dtype=int)
    for cause, effect in EDGES:
        matrix[NAMES.index(cause), NAMES.index(effect)] = 1
    return matrix


def test_read_graph_digraph():
    graph = read_graph(_dag())
    assert list(graph.nodes) == NAMES
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_relabels_int_nodes_to_str():
    graph = read_graph(nx.DiGraph([(0, 1)]))
    assert list(graph.edges) == [("0", "1")]


def test_read_graph_edge_list_csv(tmp_path):
    path = tmp_path / "edges.csv"
    pd.DataFrame(EDGES, columns=["cause", "effect"]).to_csv(path, index=False)
    graph = read_graph(path)
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_edge_list_any_header_and_isolated_nodes(tmp_path):
    path = _write(tmp_path / "edges.csv", 'from,to\np44/42,"a,b"\n')
    # nodes=... no longer turns unmentioned names into isolated nodes: only a declaration does
    assert set(read_graph(path, nodes=["lonely", "p44/42", "a,b"]).nodes) == {"p44/42", "a,b"}
    graph = read_graph(path, isolated=["lonely"])
    assert set(graph.nodes) == {"lonely", "p44/42", "a,b"}
    assert _graph_edges(graph) == {("p44/42", "a,b")}
    rows = _write(tmp_path / "rows.csv", 'from,to\np44/42,"a,b"\nlonely\nalso,\n')
    assert set(read_graph(rows).nodes) == {"lonely", "also", "p44/42", "a,b"}
    with _raises("declared isolated but have edges"):
        read_graph(path, isolated=["p44/42"])


def test_read_graph_adjacency_csv(tmp_path):
    path = tmp_path / "adjacency.csv"
    pd.DataFrame(_adjacency(), index=NAMES, columns=NAMES).to_csv(path)
    graph = read_graph(path)
    assert list(graph.nodes) == NAMES
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_gml(tmp_path):
    path = tmp_path / "graph.gml"
    nx.write_gml(_dag(), path)
    graph = read_graph(path)
    assert set(graph.nodes) == set(NAMES)
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_graphml(tmp_path):
    path = tmp_path / "graph.graphml"
    nx.write_graphml(_dag(), path)
    graph = read_graph(path)
    assert set(graph.nodes) == set(NAMES)
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_numpy_adjacency():
    graph = read_graph(_adjacency(), nodes=NAMES)
    assert list(graph.nodes) == NAMES
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_dataframe_adjacency_with_reordered_columns():
    frame = pd.DataFrame(_adjacency(), index=NAMES, columns=NAMES)
    graph = read_graph(frame[NAMES[::-1]])
    assert list(graph.nodes) == NAMES
    assert _graph_edges(graph) == set(EDGES)


def test_read_graph_adjacency_keeps_isolated_nodes():
    graph = read_graph(np.zeros((3, 3)), nodes=["a", "b", "c"])
    assert list(graph.nodes) == ["a", "b", "c"]
    assert graph.number_of_edges() == 0


# --------------------------------------------------------------------------------------------------
# read_graph: errors


def test_read_graph_undirected():
    with _raises("is undirected (Graph)"):
        read_graph(nx.Graph([("a", "b")]))


def test_read_graph_self_loop():
    with _raises("self-loop on node(s) 'p44/42'"):
        read_graph(nx.DiGraph([("p44/42", "p44/42")]))


def test_read_graph_self_loop_on_adjacency_diagonal():
    with _raises("self-loop on node(s) 'b'"):
        read_graph(np.array([[0, 0], [0, 1]]), nodes=["a", "b"])


def test_read_graph_cycle_is_printed():
    with _raises("a -> b -> c -> a"):
        read_graph(nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")]))


def test_read_graph_cycle_in_csv(tmp_path):
    path = _write(tmp_path / "cycle.csv", "cause,effect\nx y,p44/42\np44/42,x y\n")
    with pytest.raises(
        InputError, match=r"cycle\.csv' has a cycle (x y -> p44/42 -> x y|p44/42 -> x y -> p44/42)"
    ):
        read_graph(path)


def test_read_graph_numpy_needs_nodes():
    with _raises("pass nodes=[...] with 2 names"):
        read_graph(np.zeros((2, 2)))


def test_read_graph_numpy_not_square():
    with _raises("has shape (2, 3)"):
        read_graph(np.zeros((2, 3)), nodes=["a", "b"])


def test_read_graph_numpy_wrong_node_count():
    with _raises("2 x 2 but 3 node names"):
        read_graph(np.zeros((2, 2)), nodes=["a", "b", "c"])


def test_read_graph_entry_not_zero_one():
    with _raises("entry 0.5 at row 'a', column 'b'"):
        read_graph(np.array([[0, 0.5], [0, 0]]), nodes=["a", "b"])


def test_read_graph_nan_entry():
    with _raises("row 'b', column 'a'"):
        read_graph(np.array([[0, 0], [np.nan, 0]]), nodes=["a", "b"])


def test_read_graph_dataframe_rows_and_columns_differ():
    frame = pd.DataFrame(np.zeros((2, 2)), index=["a", "b"], columns=["a", "c"])
    with _raises("only in rows: 'b'; only in columns: 'c'"):
        read_graph(frame)


def test_read_graph_adjacency_csv_bad_entry(tmp_path):
    path = _write(tmp_path / "adj.csv", ",a,b\na,0,yes\nb,0,0\n")
    with _raises("entry 'yes' at row 'a', column 'b'"):
        read_graph(path)


def test_read_graph_csv_neither_format(tmp_path):
    path = _write(tmp_path / "odd.csv", "a,b,c\n1,2,3\n")
    with _raises("odd.csv' is neither an edge list"):
        read_graph(path)


def test_read_graph_edge_list_bad_row(tmp_path):
    path = _write(tmp_path / "edges.csv", "cause,effect\na,b\na,b,c\n")
    with _raises("line 3 of graph file"):
        read_graph(path)


def test_read_graph_edge_list_empty_name(tmp_path):
    path = _write(tmp_path / "edges.csv", "cause,effect\n,a\n")  # "a," alone declares an isolated node
    with _raises("line 2 of graph file"):
        read_graph(path)


def test_read_graph_missing_file(tmp_path):
    with _raises("missing.gml' does not exist"):
        read_graph(tmp_path / "missing.gml")


def test_read_graph_empty_file(tmp_path):
    path = _write(tmp_path / "empty.graphml", "")
    with _raises("empty.graphml' is empty"):
        read_graph(path)


@pytest.mark.parametrize("name", ["bad.gml", "bad.graphml"])
def test_read_graph_unreadable_file(tmp_path, name):
    path = _write(tmp_path / name, "this is not a graph <<<")
    with _raises(f"{name}' as"):
        read_graph(path)


def test_read_graph_no_nodes(tmp_path):
    path = _write(tmp_path / "header_only.csv", "cause,effect\n")
    with _raises("header_only.csv' has no nodes"):
        read_graph(path)


def test_read_graph_unsupported_type():
    with _raises("cannot read a graph from a builtins.list"):
        read_graph([("a", "b")])


# --------------------------------------------------------------------------------------------------
# validate and load_inputs


def test_validate_orders_nodes_like_the_columns():
    data = _frame()
    graph = nx.DiGraph()
    graph.add_edges_from(EDGES, weight=2.0)
    graph.add_nodes_from(reversed(NAMES))
    out_data, out_graph = validate(data, graph)
    assert out_data is data
    assert list(out_graph.nodes) == NAMES
    assert _graph_edges(out_graph) == set(EDGES)
    assert out_graph.edges["p44/42", "a,b"]["weight"] == 2.0


def test_validate_graph_node_without_column():
    graph = _dag()
    graph.add_edge("ghost", "p44/42")
    with _raises("graph node(s) 'ghost' have no data column"):
        validate(_frame(), graph)


def test_validate_column_without_node():
    graph = _dag()
    graph.remove_node("ünï")
    with _raises("data column(s) 'ünï' are not graph nodes (no edge mentions them); fix: add their edges, or"):
        validate(_frame(), graph)


def test_validate_rejects_cycles_and_wrong_types():
    with _raises("a -> b -> a"):
        validate(_frame(names=["a", "b"]), nx.DiGraph([("a", "b"), ("b", "a")]))
    with _raises("load it with read_graph()"):
        validate(_frame(), nx.Graph())
    with _raises("load it with read_data()"):
        validate(np.zeros((30, 4)), _dag())


def test_load_inputs_csv_pair_with_isolated_column(tmp_path):
    data_path = tmp_path / "data.csv"
    _frame().assign(extra=np.linspace(0, 1, 30)).to_csv(data_path, index=False)
    graph_path = tmp_path / "edges.csv"
    pd.DataFrame(EDGES, columns=["cause", "effect"]).to_csv(graph_path, index=False)
    with _raises("data column(s) 'extra' are not graph nodes (no edge mentions them)"):
        load_inputs(data_path, graph_path)
    data, graph = load_inputs(data_path, graph_path, isolated=["extra"])
    assert list(graph.nodes) == [*NAMES, "extra"]
    assert list(data.columns) == list(graph.nodes)
    assert _graph_edges(graph) == set(EDGES)


def test_load_inputs_numpy_adjacency_uses_data_columns():
    _, graph = load_inputs(_frame(), _adjacency())
    assert list(graph.nodes) == NAMES
    assert _graph_edges(graph) == set(EDGES)


def test_load_inputs_graph_file_with_unknown_node(tmp_path):
    graph = _dag()
    graph.add_edge("p44/42", "unmeasured")
    path = tmp_path / "graph.gml"
    nx.write_gml(graph, path)
    with _raises("'unmeasured' have no data column"):
        load_inputs(_frame(), path)


# --------------------------------------------------------------------------------------------------
# fuzzing: only InputError may escape


def _only_input_error(call) -> None:
    """Run ``call``; success and InputError are fine, InputWarning is ignored, anything else fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        try:
            call()
        except InputError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=60, deadline=None)
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".parquet", ".gml", ".graphml"]))
def test_fuzz_random_bytes(tmp_path_factory, content, suffix):
    path = tmp_path_factory.getbasetemp() / f"fuzz_bytes{suffix}"
    path.write_bytes(content)
    _only_input_error(lambda: read_data(path))
    _only_input_error(lambda: read_graph(path, nodes=["a", "b"]))


_CSV_ALPHABET = st.sampled_from(list(',;"\n\r \t.-+eE0123456789abcnaifNAIF/\x00é'))


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.text(alphabet=_CSV_ALPHABET, max_size=300)))
def test_fuzz_random_text_csv(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz_text.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_input_error(lambda: read_data(path))
    _only_input_error(lambda: read_graph(path))
    _only_input_error(lambda: read_graph(path, nodes=["a", "b"]))


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, 1.0])


@settings(max_examples=60, deadline=None)
@given(array=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=25), elements=_FLOATS))
def test_fuzz_random_float_arrays(array):
    columns = [f"c{i}" for i in range(array.shape[-1])] if array.ndim else []
    _only_input_error(lambda: read_data(array, columns=columns))
    if array.ndim == 2:
        _only_input_error(lambda: read_data(pd.DataFrame(array, columns=columns)))
        _only_input_error(lambda: read_graph(array, nodes=columns))
