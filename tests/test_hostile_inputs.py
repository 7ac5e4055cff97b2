"""The hostile tester's catalogue (issue 21): every bad input, through the API and through the CLI.

Each case is one bad input. Through the API it must raise one ``condfip.InputError`` whose one-line message
names the problem; through the CLI it must exit non-zero with exactly one ``error: ...`` line (other lines, if
any, are ``warning: ...`` lines), no traceback, and the same word. For the destructive cases (``-o`` targets
that are not regular files, or the wrong format) the target is unchanged afterwards. Cases that passed before
the issue are kept here so that they stay passing. A case without a CLI (or API) form has ``None`` there.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import condfip
from condfip import InputError
from condfip.atomic import STALE_TMP_SECONDS, atomic_write_text
from condfip.cli import app
from test_bad_inputs import edge_list, frame
from tiny_weights import make_weights

COLUMNS = ["a", "b", "c", "d"]
EDGES = [("a", "b"), ("b", "c"), ("a", "d")]
runner = CliRunner()


def make_frame(rows: int = 40, seed: int = 0) -> pd.DataFrame:
    return frame(rows, seed)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile")
    make_frame().to_csv(path / "data.csv", index=False)
    (path / "graph.csv").write_text(edge_list(EDGES))
    make_weights(path / "weights")
    return path


@pytest.fixture(scope="module")
def model(root):
    return condfip.load_pretrained(root / "weights")


@pytest.fixture(scope="module")
def scm(model, root):
    return model.infer(root / "data.csv", root / "graph.csv")


@dataclass
class Env:
    """What a case builds on: the shared files, the model and SCM, and a fresh folder for this case."""

    root: Path
    tmp: Path
    model: object
    scm: object

    @property
    def data(self) -> str:
        return str(self.root / "data.csv")

    @property
    def graph(self) -> str:
        return str(self.root / "graph.csv")

    def weights(self) -> list[str]:
        return ["--weights", str(self.root / "weights")]

    def sample(self, *args: str) -> list[str]:
        """``condfip sample DATA --graph GRAPH -n 5 ARGS --weights W``."""
        return ["sample", self.data, "--graph", self.graph, "-n", "5", *args, *self.weights()]

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return path


@dataclass
class Case:
    word: str  # the word (case-insensitive) that names the problem, in the API message and the CLI line
    api: Callable[[Env], object] | None = None  # must raise InputError
    cli: Callable[[Env], list[str]] | None = None  # the command line (must fail)
    target: Callable[[Env], Path] | None = None  # destructive case: builds the target that must stay unchanged
    env: dict[str, str] | None = None  # environment for the CLI run


# --------------------------------------------------------------------------------------------------
# targets that must survive a write attempt


def device(env: Env) -> Path:
    path = env.tmp / "device.csv"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what `mknod x c 1 3` makes: /dev/null's twin
    except (PermissionError, OSError):
        pytest.skip("creating a device node needs root")
    return path


def symlink_to_device(env: Env) -> Path:
    path = env.tmp / "link.csv"
    path.symlink_to(device(env))
    return path


def fifo(env: Env) -> Path:
    path = env.tmp / "pipe.csv"
    os.mkfifo(path)
    return path


def directory(env: Env) -> Path:
    path = env.tmp / "folder.csv"
    path.mkdir()
    (path / "keep.txt").write_text("precious")
    return path


def xlsx(env: Env) -> Path:
    return env.file("book.xlsx", b"PK\x03\x04 a real spreadsheet")


def state(path: Path):
    """Everything a write could change about ``path`` (content for regular files, never opening a FIFO)."""
    info = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    final = os.stat(path)
    content = path.read_bytes() if stat.S_ISREG(final.st_mode) else None
    listing = sorted(p.name for p in path.iterdir()) if stat.S_ISDIR(final.st_mode) else None
    return info.st_mode, link, final.st_mode, final.st_rdev, final.st_ino, content, listing


# --------------------------------------------------------------------------------------------------
# inputs


def bool_frame() -> pd.DataFrame:
    frame = make_frame()
    frame["d"] = frame["a"] > 0
    return frame


def tampered(env: Env, meta_edit=None, tensor_edit=None, rechecksum: bool = True) -> Path:
    """The module's SCM saved, then edited by hand: ``meta_edit(meta)`` / ``tensor_edit(tensors)`` in place;
    ``rechecksum``: with a valid checksum for the edited content (so the later checks are what refuses it)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from condfip.saved import METADATA_KEY, content_checksum

    path = env.scm.save(env.tmp / "scm.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()[METADATA_KEY])
        tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    if meta_edit:
        meta_edit(meta)
    if tensor_edit:
        tensor_edit(tensors)
    if rechecksum:
        meta["checksum"] = content_checksum(meta, tensors)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def load_tampered(env: Env, **edits):
    return condfip.load_scm(tampered(env, **edits), weights=env.root / "weights")


def shift_to_strings(x):
    return np.array(["high"] * len(x))


CASES: dict[str, Case] = {
    # destructive -o targets (API: scm.save writes through the same atomic path)
    "out-device-node": Case("character device", api=lambda e: e.scm.save(e.target),
                            cli=lambda e: e.sample("-o", str(e.target)), target=device),
    "out-symlink-to-device": Case("character device", api=lambda e: e.scm.save(e.target),
                                  cli=lambda e: e.sample("-o", str(e.target)), target=symlink_to_device),
    "out-fifo": Case("FIFO", api=lambda e: e.scm.save(e.target), cli=lambda e: e.sample("-o", str(e.target)),
                     target=fifo),
    "out-existing-directory": Case("directory", api=lambda e: e.scm.save(e.target),
                                   cli=lambda e: e.sample("-o", str(e.target)), target=directory),
    "out-wrong-extension-xlsx": Case(".xlsx", cli=lambda e: e.sample("-o", str(e.target)), target=xlsx),
    # seeds
    "seed-negative": Case("seed", api=lambda e: e.scm.sample(5, seed=-1), cli=lambda e: e.sample("--seed", "-1")),
    "seed-float": Case("seed", api=lambda e: e.scm.sample(5, seed=1.5), cli=lambda e: e.sample("--seed", "1.5")),
    "seed-string": Case("seed", api=lambda e: e.scm.sample(5, seed="a"), cli=lambda e: e.sample("--seed", "a")),
    # memory, before allocating
    "rows-too-many": Case("memory", api=lambda e: e.scm.sample(100_000_000_000),
                          cli=lambda e: ["sample", e.data, "--graph", e.graph, "-n", "100000000000",
                                         *e.weights()]),
    "simulate-100000-nodes": Case("memory", cli=lambda e: ["simulate", "--nodes", "100000",
                                                           "--out", str(e.tmp / "sim")]),
    "simulate-2000-nodes": Case("memory", cli=lambda e: ["simulate", "--nodes", "2000", "--samples", "10",
                                                         "--out", str(e.tmp / "sim")],
                                env={"CONDFIP_MEMORY_LIMIT": "1G"}),
    # non-finite results are errors, never NaN rows
    # (the largest float: do(a=1e300) now has a finite, linearly extrapolated answer, with the range warning)
    "do-1.7e308": Case("not finite", api=lambda e: e.scm.do({"a": 1.7e308}).sample(5),
                       cli=lambda e: e.sample("--do", "a=1.7e308")),
    "data-scaled-1e200": Case("standardised", api=lambda e: e.model.infer(make_frame() * 1e200, e.graph),
                              cli=lambda e: ["sample", str(e.file("big.csv", (make_frame() * 1e200).to_csv(
                                  index=False))), "--graph", e.graph, *e.weights()]),
    "unknown-mechanisms": Case("mechanisms must be one of", api=lambda e: e.model.infer(e.data, e.graph,
                                                                                     mechanisms="gp"),
                               cli=lambda e: e.sample("--mechanisms", "gp")),
    "shift-returns-strings": Case("not numbers", api=lambda e: e.scm.do({"a": shift_to_strings}).sample(5)),
    # graphs: a column no edge mentions is an error unless declared isolated, whatever the graph's form
    "edge-list-omits-a-column": Case("not graph nodes", api=lambda e: e.model.infer(
        e.data, e.file("g.csv", edge_list(EDGES[:2]))),
        cli=lambda e: ["noise", e.data, "-g", str(e.file("g.csv", edge_list(EDGES[:2]))), *e.weights()]),
    "edge-list-header-only": Case("no nodes", api=lambda e: e.model.infer(e.data, e.file("g.csv", edge_list([]))),
                                  cli=lambda e: ["noise", e.data, "-g", str(e.file("g.csv", edge_list([]))),
                                                 *e.weights()]),
    "digraph-omits-a-column": Case("not graph nodes", api=lambda e: e.model.infer(e.data, nx.DiGraph(EDGES[:2]))),
    "isolated-node-with-edges": Case("declared isolated", api=lambda e: e.model.infer(
        e.data, e.graph, isolated=["d"]), cli=lambda e: e.sample("--isolated", "d")),
    # booleans: one rule for a DataFrame and a file
    "boolean-column": Case("boolean", api=lambda e: e.model.infer(bool_frame(), e.graph),
                           cli=lambda e: ["noise", str(e.file("b.csv", bool_frame().to_csv(index=False))),
                                          "-g", e.graph, *e.weights()]),
    "json-as-data": Case("JSON", api=lambda e: e.model.infer(e.file("d.json", make_frame().to_json()), e.graph),
                         cli=lambda e: ["noise", str(e.file("d.json", make_frame().to_json())), "-g", e.graph,
                                        *e.weights()]),
    # saved SCMs (no CLI command loads one)
    "saved-scm-edited-edge": Case("checksum", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edges"].append(["d", "c"]), rechecksum=False)),
    "saved-scm-edited-tensor": Case("checksum", api=lambda e: load_tampered(
        e, tensor_edit=lambda t: t["context"].mul_(2.0), rechecksum=False)),
    "saved-scm-cyclic": Case("cyclic", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edges"].append(["c", "a"]))),
    "saved-scm-nan-context": Case("NaN", api=lambda e: load_tampered(
        e, tensor_edit=lambda t: t["context"].__setitem__((0, 1), float("nan")))),
    "saved-scm-missing-columns-key": Case("lacks the key", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m.pop("columns"))),
    "saved-scm-unknown-edge-node": Case("not among its columns", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edges"].append(["a", "zz"]))),
    "saved-scm-edited-confidence": Case("checksum", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edge_confidence"].append(["a", "b", 0.1]), rechecksum=False)),
    "saved-scm-confidence-off-the-graph": Case("not an edge of its graph", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edge_confidence"].append(["b", "a", 0.5]))),
    "saved-scm-confidence-out-of-range": Case("not a number in [0, 1]", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m["edge_confidence"].append(["a", "b", 1.5]))),
    "saved-scm-format-3-without-confidences": Case("lacks the key", api=lambda e: load_tampered(
        e, meta_edit=lambda m: m.pop("edge_confidence"))),
    # effect: an interval from a handful of replicates is refused
    "effect-too-few-replicates": Case("too few", api=lambda e: e.scm.effect("c", {"a": 1.0}, bootstrap=3),
                                      cli=lambda e: ["effect", e.data, "-g", e.graph, "-t", "c", "--do", "a=1",
                                                     "--bootstrap", "3", *e.weights()]),
    # cases that already passed before issue 21
    "cyclic-graph": Case("cycle", api=lambda e: e.model.infer(e.data, e.file("g.csv", edge_list(
        [*EDGES, ("c", "a")]))), cli=lambda e: ["noise", e.data, "-g", str(e.file("g.csv", edge_list(
            [*EDGES, ("c", "a")]))), *e.weights()]),
    "nan-in-data": Case("missing or infinite", api=lambda e: e.model.infer(
        make_frame().assign(b=lambda f: f.b.where(f.index != 3)), e.graph)),
    "non-numeric-column": Case("not numeric", api=lambda e: e.model.infer(
        e.file("t.csv", make_frame().astype(object).assign(c="x").to_csv(index=False)), e.graph),
        cli=lambda e: ["noise", str(e.file("t.csv", make_frame().astype(object).assign(c="x").to_csv(
            index=False))), "-g", e.graph, *e.weights()]),
    "missing-data-file": Case("does not exist", api=lambda e: e.model.infer(e.tmp / "none.csv", e.graph),
                              cli=lambda e: ["noise", str(e.tmp / "none.csv"), "-g", e.graph, *e.weights()]),
    "unknown-do-node": Case("unknown", api=lambda e: e.scm.do({"zz": 1.0}), cli=lambda e: e.sample("--do", "zz=1")),
    "do-nan": Case("finite", api=lambda e: e.scm.do({"a": float("nan")}), cli=lambda e: e.sample("--do", "a=nan")),
    "n-zero": Case("positive", api=lambda e: e.scm.sample(0), cli=lambda e: ["sample", e.data, "--graph", e.graph,
                                                                           "-n", "0", *e.weights()]),
}


@pytest.fixture
def env(root, model, scm, tmp_path) -> Env:
    return Env(root=root, tmp=tmp_path, model=model, scm=scm)


def _run_case(case: Case, env: Env, surface: str) -> None:
    env.target = case.target(env) if case.target else None
    before = state(env.target) if env.target else None
    if surface == "api":
        with pytest.raises(InputError) as err:
            case.api(env)
        message = str(err.value)
        assert "\n" not in message, message
        assert case.word.lower() in message.lower(), message
    else:
        result = runner.invoke(app, case.cli(env), env=case.env)
        output = result.output
        assert result.exit_code != 0, output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in output, output
        lines = output.strip().splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, output
        assert all(line.startswith(("error: ", "warning: ")) for line in lines), output
        assert case.word.lower() in errors[0].lower(), output
    if env.target:
        assert state(env.target) == before


API_CASES = [name for name, case in CASES.items() if case.api]
CLI_CASES = [name for name, case in CASES.items() if case.cli]


@pytest.mark.parametrize("name", API_CASES)
def test_api(name, env):
    _run_case(CASES[name], env, "api")


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli(name, env):
    _run_case(CASES[name], env, "cli")


# --------------------------------------------------------------------------------------------------
# what is not an error, but must not destroy anything either


def test_a_symlink_is_written_through_and_stays_a_link(env):
    real = env.file("real.csv", "old\n")
    link = env.tmp / "link.csv"
    link.symlink_to(real)
    result = runner.invoke(app, env.sample("-o", str(link)))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert list(pd.read_csv(real).columns) == COLUMNS and len(pd.read_csv(real)) == 5


def test_stale_temporaries_of_our_naming_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "out.csv"
    stale = tmp_path / ".out.csv.ab12cd_9.tmp"  # what a SIGKILL during a write leaves behind
    fresh = tmp_path / ".out.csv.zz99zz99.tmp"  # a write in progress right now: kept
    foreign = tmp_path / ".out.csv.notours-at-all.tmp"  # not our naming: kept
    for path in (stale, fresh, foreign):
        path.write_text("x" * 100)
    old = os.path.getmtime(stale) - 10 * STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    os.utime(foreign, (old, old))
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert not stale.exists() and fresh.exists() and foreign.exists()


def test_declared_isolated_columns_are_accepted_in_every_form(env):
    two_edges = edge_list(EDGES[:2])
    by_flag = env.model.infer(env.data, env.file("g.csv", two_edges), isolated=["d"])
    by_row = env.model.infer(env.data, env.file("rows.csv", two_edges + "d\n"))
    by_graph = env.model.infer(env.data, nx.DiGraph(EDGES[:2]), isolated=["d"])
    for scm in (by_flag, by_row, by_graph):
        assert set(scm.graph.nodes) == set(COLUMNS) and scm.graph.degree("d") == 0
    result = runner.invoke(app, ["noise", env.data, "-g", str(env.tmp / "g.csv"), "--isolated", "d",
                                 *env.weights()])
    assert result.exit_code == 0, result.output


def test_catalogue_covers_both_surfaces():
    assert len(API_CASES) >= 20 and len(CLI_CASES) >= 20
