"""The shape of the package: one-way imports (docs/architecture.md states the rules this checks)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "condfip"

# built on an SCM (each takes one): inference.py imports them for its one-line conveniences, never the reverse
FEATURES = ("condfip.effects", "condfip.report", "condfip.saved", "condfip.interop_dowhy", "condfip.discover")


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file below ``package`` (a package is named by its folder)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(package: Path) -> nx.DiGraph:
    """The package's internal imports as a graph (an edge a -> b: module a imports b), from the AST of every
    module, so imports inside functions (lazy imports) count. ``from p import x`` is an edge to ``p.x`` when that
    is a module, else to ``p``; relative imports are resolved; imports of other packages are left out."""
    modules = module_names(package)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            graph.add_edges_from((name, target) for target in targets if target in modules and target != name)
    return graph


def import_cycles(graph: nx.DiGraph) -> list[list[str]]:
    return [sorted(cycle) for cycle in nx.simple_cycles(graph)]


def test_the_helper_sees_lazy_and_relative_imports_and_finds_a_cycle(tmp_path):
    """The check below can fail: a hand-made package whose cycle closes through an import inside a function."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n    return g\n")
    (package / "c.py").write_text("import os\n\ndef g():\n    import pkg.a\n")
    graph = import_graph(package)
    assert set(graph.edges) == {("pkg.a", "pkg.sub.b"), ("pkg.sub.b", "pkg.c"), ("pkg.c", "pkg.a")}
    assert import_cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    (package / "c.py").write_text("def g():\n    return 1\n")
    assert import_cycles(import_graph(package)) == []


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph(PACKAGE)
    assert graph.number_of_edges() > 50  # the parse saw the package's imports, lazy ones included
    assert ("condfip.inference", "condfip.effects") in graph.edges  # a lazy import inside a method
    assert import_cycles(graph) == []


def test_the_scm_interface_is_at_the_bottom():
    assert set(import_graph(PACKAGE).successors("condfip.scm")) <= {"condfip.errors", "condfip.memory"}


def test_the_network_and_the_simulator_never_import_each_other():
    graph = import_graph(PACKAGE)
    simulator = {m for m in graph if m == "condfip.simulate" or m.startswith("condfip.simulate.")}
    network = {"condfip.model", "condfip.pretrained"}
    for module in network:
        assert not nx.descendants(graph, module) & (simulator | {"condfip.scm", "condfip.inference"}), module
    for module in simulator:
        assert not nx.descendants(graph, module) & network, module


@pytest.mark.parametrize("feature", FEATURES)
def test_a_feature_never_imports_what_builds_on_it(feature):
    """A feature takes an SCM: it never imports ``condfip.inference`` (whose conveniences import it) nor the
    package's front door, and registers nothing back."""
    graph = import_graph(PACKAGE)
    assert not nx.descendants(graph, feature) & {"condfip", "condfip.inference", "condfip.cli", "condfip.commands"}
    tree = ast.parse(module_names(PACKAGE)[feature].read_text())
    attached = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in getattr(node, "targets", [getattr(node, "target", None)])
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                and target.value.id in {"SCM", "InferredSCM", "ZeroShotModel"}]
    assert not attached  # no methods attached to the classes from outside
    assert "setattr(" not in ast.unparse(tree)


# ---- docs/architecture.md -----------------------------------------------------------------------------------
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def named_in_architecture() -> tuple[set[str], set[str]]:
    """The repository paths (``src/...``, ``tests/...``, ``tools/``, ...) and the dotted ``condfip.`` names that
    docs/architecture.md puts in backticks."""
    spans = re.findall(r"`([^`]+)`", ARCHITECTURE.read_text())
    paths = {s for s in spans if re.fullmatch(r"(src|tests|tools|experiments|docs)(/[\w.-]+)*/?", s)}
    names = {s for s in spans if re.fullmatch(r"condfip(\.\w+)+", s)}
    return paths, names


def resolves(dotted: str) -> bool:
    """Whether ``condfip.a.b.c`` is a module, or an attribute path below the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_every_file_and_name_the_architecture_page_gives_exists():
    paths, names = named_in_architecture()
    assert len(paths) > 15 and len(names) > 15  # the page names its owners; the parse found them
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []
    assert [n for n in sorted(names) if not resolves(n)] == []
    assert not resolves("condfip.inference.InferredSCM.no_such_method")  # the check can fail
    assert not (ROOT / "src/condfip/no_such_module.py").exists()


def test_the_architecture_page_names_every_module_of_the_pipeline():
    paths, _ = named_in_architecture()
    for module in ("cli.py", "cli_options.py", "commands.py", "inputs.py", "memory.py", "pretrained.py",
                   "inference.py", "model.py", "scm.py", "atomic.py", "report.py", "saved.py",
                   "effects.py", "interop_dowhy.py", "discover.py"):
        assert f"src/condfip/{module}" in paths, module


def test_the_network_stores_no_graph_and_configs_go_through_from_dict():
    """Two of the page's rules: no module of the network keeps a mask or graph (``self.adj = ...``), and nothing
    builds a ``ModelConfig`` from a raw dict but ``ModelConfig.from_dict``."""
    model = ast.parse((PACKAGE / "model.py").read_text())
    stored = {target.attr for node in ast.walk(model) if isinstance(node, ast.Assign) for target in node.targets
              if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"}
    assert not stored & {"adj", "graph", "mask", "allowed", "parents"}
    for path in PACKAGE.rglob("*.py"):
        assert "ModelConfig(**" not in path.read_text(), path
