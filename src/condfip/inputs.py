"""condfip's input layer: a user's table and causal graph in, a validated ``(DataFrame, DiGraph)`` pair out.

Public functions:

- :func:`read_data`: a DataFrame, a CSV/Parquet path or a 2-D numpy array -> a float64 DataFrame;
- :func:`read_graph`: a DiGraph, an adjacency matrix/DataFrame or a GML/GraphML/CSV path -> a DAG;
- :func:`validate`: checks that the graph's nodes are exactly the data's columns;
- :func:`load_inputs`: all three in a row.

Every bad input raises :class:`~condfip.errors.InputError` with a one-line message that names the
offending file, column or node and says how to fix it; no pandas/numpy/networkx/OS error escapes.
Messages have the shape ``"<what is wrong>; fix: <what to do>"``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from condfip.errors import InputError, InputWarning

__all__ = ["MIN_ROWS", "InputWarning", "load_inputs", "read_data", "read_graph", "validate"]

MIN_ROWS: int = 20
"""Fewest data rows accepted."""

_FEW_DISTINCT = 5  # a column with at most this many distinct values gets an InputWarning
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})  # CSV cells read as NaN
_EDGE_LIST_HEADER = ["cause", "effect"]
_CONFIDENCE_EDGE_LIST_HEADER = ["cause", "effect", "confidence"]  # as `condfip discover` writes it
_SHOWN_NAMES = 10  # at most this many names are listed in one message


# --------------------------------------------------------------------------------------------------
# message helpers


def _q(name: Any, limit: int = 120) -> str:
    """A name quoted for a message (``repr`` keeps control characters on one line), cut in the middle."""
    text = repr(str(name)) if isinstance(name, str) else repr(name)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def _names(names: Iterable[Any]) -> str:
    """Several quoted names, comma separated, cut after ``_SHOWN_NAMES``."""
    names = list(names)
    shown = ", ".join(_q(name) for name in names[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _plain(name: str) -> str:
    """A node name unquoted when it prints on one line, else quoted."""
    return name if name.isprintable() else repr(name)


def _one_line(text: Any, limit: int = 200) -> str:
    """Any text squeezed onto one line and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """A short one-line description of a caught exception."""
    if isinstance(exc, OSError) and exc.strerror:
        return _one_line(exc.strerror)
    return _one_line(f"{type(exc).__name__}: {exc}")


def _show(value: Any) -> str:
    """A cell value for a message: its repr (numpy scalars as plain Python values), kept short."""
    if isinstance(value, np.generic):
        value = value.item()
    return _one_line(repr(value), 40)


def _type_name(value: Any) -> str:
    """The qualified type name of ``value``, for 'unsupported type' messages."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


# --------------------------------------------------------------------------------------------------
# shared checks


def _name_list(names: Any, what: str) -> list[str]:
    """``names`` (a list of labels) as a list of str; a lone string or a non-iterable is an error."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InputError(
            f"{what} must be a list of names, got {_type_name(names)}; fix: pass e.g. ['x', 'y']"
        )
    return [str(name) for name in names]


def _check_names(names: list[str], where: str, kind: str = "column") -> None:
    """Names must be non-empty and unique."""
    blank = [position for position, name in enumerate(names) if not name.strip()]
    if blank:
        raise InputError(
            f"{kind} number {blank[0] + 1} in {where} has an empty name; fix: give every {kind} a name"
        )
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise InputError(
            f"{kind} names {_names(repeated)} appear more than once in {where}; "
            f"fix: rename or drop the duplicates"
        )


def _to_float(value: Any) -> float:
    """One cell as a float, NaN for a missing value; raises TypeError/ValueError when it is no number."""
    if value is None or value is pd.NA:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        return math.nan if text.lower() in _MISSING_TOKENS else float(text)
    return float(value)


def _float_or_nan(value: Any) -> float:
    """Like :func:`_to_float`, NaN for anything that is no number."""
    try:
        return _to_float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


# --------------------------------------------------------------------------------------------------
# files


def _check_file(path: Path, where: str) -> None:
    """The file must exist, be a regular file and not be empty."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{where} does not exist; fix: check the path and the working directory") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot open {where} ({_reason(exc)}); fix: check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{where} is a directory; fix: pass the path of a file")
    if info.st_size == 0:
        raise InputError(f"{where} is empty; fix: pass a file that holds the table")


def _read_text(path: Path, where: str) -> str:
    """The whole file decoded as UTF-8 (a byte-order mark is dropped)."""
    _check_file(path, where)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {where} ({_reason(exc)}); fix: check its permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} is not UTF-8 text (bad byte at offset {exc.start}); fix: save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise InputError(f"{where} holds only blank space; fix: pass a file that holds the table")
    return text


def _csv_rows(text: str, where: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows as ``(line number, cells)``; the first is the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            if len(row) > 1 or (row and row[0].strip()):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise InputError(
            f"{where} is not valid CSV (line {reader.line_num}: {_one_line(exc)}); "
            f"fix: repair or re-export it"
        ) from None
    if not rows:
        raise InputError(f"{where} has no rows; fix: pass a file that holds the table")
    return rows


def _check_row_lengths(body: list[tuple[int, list[str]]], width: int, where: str) -> None:
    """Every CSV row must have as many cells as the header."""
    for line, row in body:
        if len(row) != width:
            raise InputError(
                f"line {line} of {where} has {len(row)} fields but the header has {width}; "
                f"fix: give every row exactly one value per column (quote names that contain commas)"
            )


# --------------------------------------------------------------------------------------------------
# read_data


def read_data(source: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """Read and check a data table.

    Args:
        source: a DataFrame (its index is kept), a path to a CSV file or to a Parquet file (suffix
            ``.parquet``/``.pq``), or a 2-D numpy array.
        columns: for an array, the column names (required); for a table, the columns to keep, in order.

    Returns:
        A float64 DataFrame with str column names.

    Raises:
        InputError: missing/empty/unreadable file, duplicate or missing column names, a non-numeric,
            constant or NaN/inf column, or fewer than :data:`MIN_ROWS` rows.

    Warns:
        InputWarning: for each column with at most 5 distinct values (binary/categorical data).
    """
    if isinstance(source, np.ndarray):
        frame, where = _frame_from_array(source, columns), "the data array"
    else:
        frame, where = _load_table(source)
        if columns is not None:
            frame = _select_columns(frame, _name_list(columns, "columns"), where)
    return _clean_frame(frame, where)


def _load_table(source: Any) -> tuple[pd.DataFrame, str]:
    """A DataFrame or a table file as a raw DataFrame, plus a description of where it came from."""
    if isinstance(source, pd.DataFrame):  # read_data's own result keeps the name of the file it came from
        return source, source.attrs.get("source", "the data DataFrame")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = f"data file {_q(str(path))}"
        if path.suffix.lower() in _PARQUET_SUFFIXES:
            return _read_parquet(path, where), where
        return _read_csv_table(path, where), where
    raise InputError(
        f"cannot read data from a {_type_name(source)}; "
        f"fix: pass a pandas DataFrame, a CSV/Parquet path or a 2-D numpy array with columns=[...]"
    )


def _frame_from_array(array: np.ndarray, columns: Any) -> pd.DataFrame:
    """A 2-D array plus its column names as a DataFrame."""
    if array.ndim != 2:
        raise InputError(
            f"the data array has {array.ndim} dimension(s) (shape {array.shape}); "
            f"fix: pass a 2-D array of shape (rows, columns)"
        )
    if columns is None:
        raise InputError(
            f"the data array has no column names; fix: pass columns=[...] with {array.shape[1]} names"
        )
    names = _name_list(columns, "columns")
    if len(names) != array.shape[1]:
        raise InputError(
            f"the data array has {array.shape[1]} columns but {len(names)} names were given; "
            f"fix: pass exactly one name per column"
        )
    _check_names(names, "the data array")
    if array.dtype.kind not in "biufOUS":  # datetimes, complex, structured: not numbers
        raise InputError(
            f"the data array has dtype {array.dtype}, not numbers; fix: convert it (e.g. array.astype(float))"
        )
    return pd.DataFrame(array, columns=names)


def _read_parquet(path: Path, where: str) -> pd.DataFrame:
    """A Parquet file as a DataFrame (needs pyarrow)."""
    _check_file(path, where)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(
            f"reading {where} needs pyarrow, which is not installed; fix: pip install 'condfip[parquet]'"
        ) from None
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many unrelated types on bad files
        raise InputError(
            f"cannot read {where} as Parquet ({_reason(exc)}); fix: check that it is a valid Parquet file"
        ) from None


def _read_csv_table(path: Path, where: str) -> pd.DataFrame:
    """A CSV file as a DataFrame of strings; an unnamed first column is the index (as DataFrame.to_csv)."""
    text = _read_text(path, where)
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        raise InputError(
            f"{where} is JSON, not a table; fix: convert it to CSV with one column per variable, e.g. "
            f"pandas.read_json({_q(str(path))}).to_csv('data.csv', index=False)"
        )
    rows = _csv_rows(text, where)
    header, body = rows[0][1], rows[1:]
    _check_row_lengths(body, len(header), where)
    has_index = len(header) > 1 and not header[0].strip()
    names = header[1:] if has_index else header
    _check_names(names, where)
    cells = [row[1:] if has_index else row for _, row in body]
    frame = pd.DataFrame(cells, columns=names, dtype=object)
    if has_index:
        frame.index = _index_from_strings([row[0] for _, row in body])
    return frame


def _index_from_strings(labels: list[str]) -> pd.Index:
    """Index labels read from a CSV: integers when they all are, else the strings."""
    try:
        return pd.Index([int(label) for label in labels])
    except ValueError:
        return pd.Index(labels, dtype=object)


def _select_columns(frame: pd.DataFrame, wanted: list[str], where: str) -> pd.DataFrame:
    """The named columns of ``frame``, in the order asked for."""
    names = [str(column) for column in frame.columns]
    _check_names(names, where)
    absent = [name for name in wanted if name not in names]
    if absent:
        raise InputError(
            f"columns {_names(absent)} are not in {where}; fix: choose columns from {_names(names)}"
        )
    _check_names(wanted, "columns=[...]")
    selected = frame.iloc[:, [names.index(name) for name in wanted]]
    selected.columns = wanted
    return selected


def _clean_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check a raw table and return it as float64 with str column names."""
    names = [str(column) for column in frame.columns]
    if not names:
        raise InputError(f"{where} has no columns; fix: pass a table with one column per variable")
    _check_names(names, where)
    arrays = {name: _float_column(frame.iloc[:, i], name, where) for i, name in enumerate(names)}
    data = pd.DataFrame(arrays, index=frame.index, columns=names)
    _check_finite(data, where)
    _check_row_count(data, where)
    _check_not_constant(data, where)
    _check_scale(data, where)
    _warn_few_values(data, where)
    data.attrs["source"] = where
    return data


def _float_column(series: pd.Series, name: str, where: str) -> np.ndarray:
    """One column as float64 (missing values become NaN); text, dates etc. are an error."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or _is_boolean(series):
        raise InputError(
            f"column {_q(name)} in {where} is boolean (True/False); condfip models continuous variables, the "
            f"same rule for a DataFrame and a file; fix: encode it as numbers if you accept that "
            f"(data[{_q(name)}].astype(float) or 0/1 in the file) or drop the column"
        )
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = series.to_numpy(dtype=object)
    try:
        return values.astype(np.float64)  # fast path: numbers, or numeric strings
    except (TypeError, ValueError, OverflowError):
        pass
    result = np.empty(len(values), dtype=np.float64)
    for position, value in enumerate(values):
        try:
            result[position] = _to_float(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(
                f"column {_q(name)} in {where} is not numeric (row {_q(series.index[position])} holds "
                f"{_show(value)}); fix: encode it as numbers or drop the column"
            ) from None
    return result


_BOOLEAN_TOKENS = frozenset({"true", "false"})


def _is_boolean(series: pd.Series) -> bool:
    """An object column whose values (missing ones aside) are all bools or the words true/false."""
    if series.dtype != object:
        return False
    present = [v for v in series.to_numpy() if not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                                                   or (isinstance(v, str) and v.strip().lower() in _MISSING_TOKENS))]
    return bool(present) and all(
        isinstance(v, (bool, np.bool_)) or (isinstance(v, str) and v.strip().lower() in _BOOLEAN_TOKENS)
        for v in present
    )


def _check_finite(data: pd.DataFrame, where: str) -> None:
    """No NaN or infinite values; the message counts them per column."""
    bad = (~np.isfinite(data.to_numpy())).sum(axis=0)
    counts = [f"{_q(name)} ({count})" for name, count in zip(data.columns, bad, strict=True) if count]
    if counts:
        raise InputError(
            f"{where} has missing or infinite values in column(s) {', '.join(counts)}; "
            f"fix: drop or impute those rows (e.g. data.dropna()) or drop the columns"
        )


def _check_row_count(data: pd.DataFrame, where: str) -> None:
    """At least ``MIN_ROWS`` rows."""
    if len(data) < MIN_ROWS:
        raise InputError(
            f"{where} has {len(data)} row(s) but condfip needs at least MIN_ROWS={MIN_ROWS}; "
            f"fix: supply more rows"
        )


def _check_not_constant(data: pd.DataFrame, where: str) -> None:
    """No column may hold a single value."""
    constant = [name for name, count in data.nunique().items() if count <= 1]
    if constant:
        value = data[constant[0]].iloc[0]
        raise InputError(
            f"column(s) {_names(constant)} in {where} are constant ({_q(constant[0])} is always {value:g}); "
            f"fix: drop them, a constant carries no causal signal"
        )


def _check_scale(data: pd.DataFrame, where: str) -> None:
    """Every column must be standardisable in float64: a finite, non-zero standard deviation (values near
    1e200 overflow its square, values near 1e-200 underflow it)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        std = data.to_numpy().std(axis=0, ddof=1)
    for name, value in zip(data.columns, std, strict=True):
        if not np.isfinite(value) or value <= 0 or not np.isfinite(1.0 / value):
            size = float(np.abs(data[name].to_numpy()).max())
            raise InputError(
                f"column {_q(name)} in {where} cannot be standardised: its values (up to {size:.3g} in magnitude) "
                f"are so far from 1 that its variance {'overflows' if not np.isfinite(value) else 'underflows'} "
                f"in float64; fix: rescale the column (e.g. divide by {size:.0e}) or log-transform it"
            )


def _warn_few_values(data: pd.DataFrame, where: str) -> None:
    """Warn about each column with very few distinct values (binary/categorical data)."""
    for name, count in data.nunique().items():
        if count <= _FEW_DISTINCT:
            warnings.warn(
                f"column {_q(name)} in {where} has only {count} distinct values; condfip assumes continuous "
                f"variables with additive noise, so results involving it may be unreliable",
                InputWarning,
                stacklevel=4,
            )


# --------------------------------------------------------------------------------------------------
# read_graph


def read_graph(source: Any, nodes: list[str] | None = None, isolated: list[str] | None = None) -> nx.DiGraph:
    """Read and check a causal DAG.

    Args:
        source: an ``nx.DiGraph``; an adjacency matrix as a square numpy array (``A[i, j] = 1`` means
            ``i -> j``) or as a DataFrame (index and columns are the node names); or a path to a
            ``.gml`` or ``.graphml`` file or to a CSV file holding either an edge list (two columns,
            header e.g. ``cause,effect``; a row with one name, ``NAME`` or ``NAME,``, declares a node
            without edges) or a square adjacency table (header after the first cell repeats the first
            column).
        nodes: for a numpy matrix, the node names (required); other sources carry their own node set
            and ignore it.
        isolated: nodes without edges to add, whatever the source. One rule for every graph form: a
            data column that the graph does not name is an error (:func:`validate`), never silently an
            independent root; say that a column is isolated here or as a node row of an edge list.

    Returns:
        A DiGraph with str node names, no self-loops and no cycles.

    Raises:
        InputError: an undirected graph, a missing/empty/unreadable file, a malformed matrix,
            a self-loop, a cycle, or an ``isolated`` node that has edges.
    """
    names = None if nodes is None else _name_list(nodes, "nodes")
    graph, where = _load_graph(source, names)
    if isolated is not None:
        lonely = _name_list(isolated, "isolated")
        connected = [name for name in lonely if name in graph and graph.degree(name) > 0]
        if connected:
            raise InputError(
                f"node(s) {_names(connected)} are declared isolated but have edges in {where}; "
                f"fix: drop them from the isolated nodes or remove their edges"
            )
        graph.add_nodes_from(lonely)
    if graph.number_of_nodes() == 0:
        raise InputError(f"{where} has no nodes; fix: pass a graph with one node per data column")
    _check_dag(graph, where)
    return graph


def _load_graph(source: Any, nodes: list[str] | None) -> tuple[nx.DiGraph, str]:
    """Any supported graph source as a DiGraph with str nodes, plus a description of where it came from."""
    if isinstance(source, nx.Graph):
        return _graph_from_networkx(source, "the graph"), "the graph"
    if isinstance(source, pd.DataFrame):
        where = "the adjacency DataFrame"
        return _graph_from_adjacency_frame(source, where), where
    if isinstance(source, np.ndarray):
        return _graph_from_array(source, nodes), "the adjacency array"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = f"graph file {_q(str(path))}"
        return _read_graph_file(path, where), where
    raise InputError(
        f"cannot read a graph from a {_type_name(source)}; fix: pass an nx.DiGraph, an adjacency matrix "
        f"(numpy array with nodes=[...] or DataFrame) or a .gml/.graphml/.csv path"
    )


def _graph_from_networkx(graph: nx.Graph, where: str) -> nx.DiGraph:
    """A directed networkx graph as a plain DiGraph with str node names (edge attributes: only a discovered
    graph's confidence and given)."""
    if not graph.is_directed():
        raise InputError(
            f"{where} is undirected ({type(graph).__name__}); "
            f"fix: pass an nx.DiGraph whose edges point from cause to effect"
        )
    names = {node: str(node) for node in graph.nodes}
    _check_names(list(names.values()), where, kind="node")
    result = nx.DiGraph()
    result.add_nodes_from(names.values())
    kept = ("confidence", "given")  # the edge attributes of a graph from condfip.discover
    result.add_edges_from((names[cause], names[effect], {k: attrs[k] for k in kept if k in attrs})
                          for cause, effect, attrs in graph.edges(data=True))
    return result


def _graph_from_array(array: np.ndarray, nodes: list[str] | None) -> nx.DiGraph:
    """A square numpy adjacency matrix plus its node names as a DiGraph."""
    where = "the adjacency array"
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise InputError(
            f"{where} has shape {array.shape} but an adjacency matrix must be square; "
            f"fix: pass an n x n array with A[i, j] = 1 for an edge i -> j"
        )
    if nodes is None:
        raise InputError(f"{where} has no node names; fix: pass nodes=[...] with {array.shape[0]} names")
    if len(nodes) != array.shape[0]:
        raise InputError(
            f"{where} is {array.shape[0]} x {array.shape[0]} but {len(nodes)} node names were given; "
            f"fix: pass exactly one name per row"
        )
    _check_names(nodes, where, kind="node")
    return _graph_from_matrix(array, nodes, where)


def _graph_from_adjacency_frame(frame: pd.DataFrame, where: str) -> nx.DiGraph:
    """An adjacency DataFrame (index = columns = node names) as a DiGraph."""
    rows = [str(label) for label in frame.index]
    columns = [str(label) for label in frame.columns]
    _check_names(rows, where, kind="row")
    _check_names(columns, where, kind="column")
    if set(rows) != set(columns):
        only_rows = _names(name for name in rows if name not in set(columns)) or "-"
        only_columns = _names(name for name in columns if name not in set(rows)) or "-"
        raise InputError(
            f"{where} names different nodes in its rows and columns (only in rows: {only_rows}; "
            f"only in columns: {only_columns}); fix: use the same node names for index and columns"
        )
    position = {name: i for i, name in enumerate(columns)}
    aligned = frame.iloc[:, [position[name] for name in rows]].to_numpy()
    return _graph_from_matrix(aligned, rows, where)


def _graph_from_matrix(values: np.ndarray, names: list[str], where: str) -> nx.DiGraph:
    """A square matrix of 0/1 entries (numbers or numeric strings) as a DiGraph over ``names``."""
    if values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
    else:
        numbers = np.vectorize(_float_or_nan, otypes=[np.float64])(values)
    bad = np.argwhere((numbers != 0) & (numbers != 1))
    if bad.size:
        row, column = bad[0]
        raise InputError(
            f"{where} has entry {_show(values[row, column])} at row {_q(names[row])}, "
            f"column {_q(names[column])}; fix: use 1 for an edge row -> column and 0 for no edge"
        )
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    causes, effects = np.nonzero(numbers == 1)
    graph.add_edges_from((names[cause], names[effect]) for cause, effect in zip(causes, effects, strict=True))
    return graph


def _read_graph_file(path: Path, where: str) -> nx.DiGraph:
    """A graph file, by suffix: ``.gml``, ``.graphml``, anything else as CSV."""
    suffix = path.suffix.lower()
    if suffix == ".gml":
        return _graph_from_networkx(_parse_graph_file(nx.read_gml, path, where, "GML"), where)
    if suffix == ".graphml":
        return _graph_from_networkx(_parse_graph_file(nx.read_graphml, path, where, "GraphML"), where)
    return _graph_from_csv(path, where)


def _parse_graph_file(reader: Callable[[Path], nx.Graph], path: Path, where: str, kind: str) -> nx.Graph:
    """Run a networkx file reader, turning any failure into an InputError."""
    _check_file(path, where)
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001 - parsers raise many unrelated types on bad files
        raise InputError(
            f"cannot read {where} as {kind} ({_reason(exc)}); "
            f"fix: check that it is valid {kind} (e.g. written by networkx.write_{kind.lower()})"
        ) from None


def _graph_from_csv(path: Path, where: str) -> nx.DiGraph:
    """A CSV edge list (two columns) or square adjacency table (header repeats the first column)."""
    rows = _csv_rows(_read_text(path, where), where)
    header, body = rows[0][1], rows[1:]
    if _is_adjacency_table(header, body):
        _check_row_lengths(body, len(header), where)
        names = header[1:]
        _check_names(names, where, kind="node")
        return _graph_from_matrix(np.array([row[1:] for _, row in body], dtype=object), names, where)
    if len(header) == 2:
        return _graph_from_edge_rows(body, where)
    if [cell.strip().lower() for cell in header] == _CONFIDENCE_EDGE_LIST_HEADER:
        return _graph_from_confidence_rows(body, where)
    raise InputError(
        f"{where} is neither an edge list (2 columns, header cause,effect) nor a square adjacency table "
        f"(its header has {len(header)} cells and must repeat the first column's node names after the "
        f"first cell); fix: write one edge per line as cause,effect"
    )


def _is_adjacency_table(header: list[str], body: list[tuple[int, list[str]]]) -> bool:
    """Whether a CSV's header (after its first cell) names the same nodes, in order, as its first column."""
    if [cell.strip().lower() for cell in header] == _EDGE_LIST_HEADER:
        return False
    return len(header) >= 2 and [row[0] for _, row in body] == header[1:]


def _graph_from_edge_rows(body: list[tuple[int, list[str]]], where: str) -> nx.DiGraph:
    """Edge-list rows ``cause,effect`` as a DiGraph; a row ``NAME`` or ``NAME,`` declares a node without edges."""
    graph = nx.DiGraph()
    for line, row in body:
        if len(row) == 1 or (len(row) == 2 and row[0].strip() and not row[1].strip()):
            graph.add_node(row[0])
            continue
        if len(row) != 2:
            raise InputError(
                f"line {line} of {where} has {len(row)} fields; fix: write one edge per line as cause,effect "
                f"(or one node name alone for a node without edges; quote names that contain commas)"
            )
        cause, effect = row
        if not cause.strip() or not effect.strip():
            raise InputError(
                f"line {line} of {where} has an empty node name; fix: write every edge as cause,effect"
            )
        graph.add_edge(cause, effect)
    return graph


def _graph_from_confidence_rows(body: list[tuple[int, list[str]]], where: str) -> nx.DiGraph:
    """Edge-list rows ``cause,effect,confidence`` (confidence in [0, 1] or empty) as a DiGraph whose edges
    carry a ``confidence`` attribute; a row ``NAME,,`` declares a node without edges."""
    _check_row_lengths(body, 3, where)
    graph = _graph_from_edge_rows([(line, row[:2]) for line, row in body], where)
    for line, (cause, effect, text) in body:
        if not effect.strip():
            continue  # a node row
        confidence = _float_or_nan(text) if text.strip() else None
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise InputError(f"line {line} of {where} has confidence {_show(text)}; fix: write a number between "
                             f"0 and 1, or leave the cell empty")
        graph.edges[cause, effect]["confidence"] = confidence
    return graph


def _check_dag(graph: nx.DiGraph, where: str) -> None:
    """No self-loops and no cycles."""
    loops = list(nx.nodes_with_selfloops(graph))
    if loops:
        raise InputError(
            f"{where} has a self-loop on node(s) {_names(loops)}; "
            f"fix: remove the edge {_plain(loops[0])} -> {_plain(loops[0])}, a variable cannot cause itself"
        )
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    path = [_plain(edge[0]) for edge in cycle] + [_plain(cycle[0][0])]
    raise InputError(
        f"{where} has a cycle {' -> '.join(path)}; fix: remove one of these edges, condfip needs a DAG"
    )


# --------------------------------------------------------------------------------------------------
# validate / load_inputs


def validate(data: pd.DataFrame, graph: nx.DiGraph) -> tuple[pd.DataFrame, nx.DiGraph]:
    """Check that the graph's nodes are exactly the data's columns.

    Returns:
        ``data`` unchanged, and a new DiGraph whose nodes are the data's columns in the data's order,
        with the graph's edges (and edge attributes) copied.

    Raises:
        InputError: a graph node without a data column, a data column without a graph node,
            duplicate column names, or a graph with a self-loop or a cycle.
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"validate() got data of type {_type_name(data)}; fix: load it with read_data()")
    if not isinstance(graph, nx.DiGraph):
        raise InputError(
            f"validate() got a graph of type {_type_name(graph)}; fix: load it with read_graph()"
        )
    columns = list(data.columns)
    _check_names([str(column) for column in columns], "the data")
    _check_dag(graph, "the graph")
    _check_same_names(columns, graph)
    result = nx.DiGraph()
    result.add_nodes_from(columns)
    result.add_edges_from(graph.edges(data=True))
    return data, result


def _check_same_names(columns: list[Any], graph: nx.DiGraph) -> None:
    """Every graph node has a data column and every data column is a graph node."""
    column_set = set(columns)
    no_column = [node for node in graph.nodes if node not in column_set]
    no_node = [column for column in columns if column not in graph]
    problems = []
    if no_column:
        problems.append(
            f"graph node(s) {_names(no_column)} have no data column; "
            f"fix: add the column(s) to the data or drop the node(s) from the graph"
        )
    if no_node:
        first = _plain(str(no_node[0]))
        problems.append(
            f"data column(s) {_names(no_node)} are not graph nodes (no edge mentions them); "
            f"fix: add their edges, or, if they have no causes and no effects, declare them isolated (a line "
            f"{first} alone in an edge-list CSV, isolated=[...] in Python, --isolated {first} on the command "
            f"line), or drop the column(s) from the data"
        )
    if problems:
        raise InputError(" | ".join(problems))


def load_inputs(data_source: Any, graph_source: Any,
                isolated: list[str] | None = None) -> tuple[pd.DataFrame, nx.DiGraph]:
    """Read the data, read the graph (a numpy matrix named by the data's columns; ``isolated``: columns
    without edges) and validate the pair.

    See :func:`read_data`, :func:`read_graph` and :func:`validate` for the accepted sources.
    """
    data = read_data(data_source)
    graph = read_graph(graph_source, nodes=list(data.columns), isolated=isolated)
    return validate(data, graph)
