"""The benchmark: its metrics on hand-made arrays, the reference estimators, every method on a tiny suite,
the records and files it promises, resuming, the Sachs loader and the DoWhy wrapper (never skipped in CI)."""

from __future__ import annotations

import json
import math
import os
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from condfip.baselines import DoWhyWorker, FitTimeout, OLSParentsSCM, ZeroNoiseSCM
from condfip.bench.methods import METHODS
from condfip.bench.report import mean_se
from condfip.bench.run import BenchConfig, run_bench
from condfip.bench.sachs_mmd import (
    SACHS_COLUMNS,
    SACHS_EDGES,
    SachsDataMissing,
    load_sachs,
    median_bandwidth,
    mmd2_unbiased,
    split,
)
from condfip.bench.suites import BENCH_SEED, Cell, Problem, full_cells, quick_cells, select_cells
from condfip.bench.tasks import TASKS, rmse_per_node, score
from condfip.errors import ExtrapolationWarning
from condfip.metrics import rmse_per_sample
from condfip.train import VALIDATION_SEED

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def needs_dowhy():
    """DoWhy is a dev dependency: in CI a missing dowhy is a failure, not a skip."""
    if IN_CI:
        import dowhy  # noqa: F401
    else:
        pytest.importorskip("dowhy")


# ---- metrics on hand-made arrays --------------------------------------------------------------------
def test_rmse_per_sample_and_per_node_by_hand():
    truth = np.zeros((2, 3))
    est = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    # row 0: sqrt((9 + 16 + 0) / 3), row 1: 0
    assert rmse_per_sample(truth, est) == pytest.approx(math.sqrt(25 / 3) / 2)
    assert rmse_per_sample(truth, est, np.array([True, True, False])) == pytest.approx(math.sqrt(12.5) / 2)
    np.testing.assert_allclose(rmse_per_node(truth, est), [math.sqrt(4.5), math.sqrt(8.0), 0.0])


def test_mmd_by_hand():
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    # k(a, b) = exp(-(a - b)^2 / 2): xx off-diagonal e^-1/2, yy e^-2, xy {1, e^-2, e^-1/2, e^-1/2}
    expected = math.exp(-0.5) + math.exp(-2) - 0.5 * (1 + math.exp(-2) + 2 * math.exp(-0.5))
    assert expected == pytest.approx(0.5 * math.exp(-2) - 0.5)
    assert mmd2_unbiased(x, y, bandwidth=1.0) == pytest.approx(expected)
    # pooled distances {1, 0, 2, 1, 1, 2}: median 1, so the median heuristic gives the same number
    assert median_bandwidth(x, y) == pytest.approx(1.0)
    assert mmd2_unbiased(x, y) == pytest.approx(expected)
    assert expected < 0  # the unbiased estimator can be negative


def test_mmd_of_identical_and_of_different_samples():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    same = mmd2_unbiased(x, x.copy())
    assert -2 / len(x) <= same < 0  # (2/m)(mean off-diagonal kernel - 1): tiny and negative
    other = rng.standard_normal((200, 3))
    shifted = other + np.array([1.0, 0.0, 0.0])
    assert abs(mmd2_unbiased(x, other)) < 0.02
    assert mmd2_unbiased(x, shifted) > 5 * abs(mmd2_unbiased(x, other))
    with pytest.raises(ValueError):
        mmd2_unbiased(x[:1], other)


def test_mean_se():
    assert mean_se([1.0, 3.0]) == pytest.approx((2.0, 1.0))
    mean, se = mean_se([2.0, None, float("nan")])
    assert mean == 2.0 and math.isnan(se)


def test_score_uses_nodes_with_parents_and_noise_scale():
    graph = nx.DiGraph([("a", "b")])
    graph.add_node("c")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.standard_normal((50, 3)), columns=["a", "b", "c"])
    noise = pd.DataFrame(rng.standard_normal((50, 3)) * [1.0, 2.0, 1.0], columns=["a", "b", "c"])
    problem = Problem(cell="hand", index=0, context=frame, query=frame, true_noise=noise, truth=None,
                      graph=graph, target="a", value=0.0, truth_do=frame)
    estimate = noise + np.array([5.0, 0.5, 7.0])  # only b is scored (a is a root, c has no parents)
    value, scaled = score("noise", estimate, problem)
    assert value == pytest.approx(0.5)
    assert scaled == pytest.approx(0.5 / noise["b"].std(ddof=0))


# ---- suites and seeds --------------------------------------------------------------------------------
def test_suites():
    assert BENCH_SEED != VALIDATION_SEED
    full, quick = full_cells(), quick_cells()
    assert len(full) == 2 * 2 * 4 * 4 and len(quick) == 8
    assert all(c.count == 9 for c in full if c.d <= 20 and c.n_context == 400)
    assert {c.d for c in quick} == {10, 20} and {c.n_context for c in quick} == {400}
    picked = select_cells(full, ["paper-in/linear/*/n400"])
    assert [c.name for c in picked] == [f"paper-in/linear/d{d}/n400" for d in (10, 20, 50, 100)]


# ---- reference estimators ----------------------------------------------------------------------------
def linear_data(n: int = 60, noise: float = 1.0, seed: int = 0) -> tuple[pd.DataFrame, nx.DiGraph]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = 2.0 * a + 1.0 + noise * rng.standard_normal(n)
    c = -a + 0.5 * b + noise * rng.standard_normal(n)
    return pd.DataFrame({"a": a, "b": b, "c": c}), nx.DiGraph([("a", "b"), ("a", "c"), ("b", "c")])


def test_ols_parents_recovers_noiseless_linear_mechanisms():
    data, graph = linear_data(noise=0.0)
    scm = OLSParentsSCM.fit(data, graph)
    np.testing.assert_allclose(scm.noise(data)[["b", "c"]].to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(scm.sample(noise=scm.noise(data)).to_numpy(), data.to_numpy(), atol=1e-9)
    drawn = scm.sample(5, seed=0)
    assert drawn.shape == (5, 3)


def test_zero_noise_claims_noiseless_data():
    data, graph = linear_data(noise=1.0)
    scm = ZeroNoiseSCM.fit(data, graph)
    noise = scm.noise(data)
    assert (noise[["b", "c"]].to_numpy() == 0).all() and np.abs(noise["a"].to_numpy()).max() > 0
    ols = OLSParentsSCM.fit(data, graph)
    # whatever noise it is handed, nodes with parents get the least-squares prediction
    out = scm.sample(noise=ols.noise(data))
    np.testing.assert_allclose(out["a"], data["a"], atol=1e-9)
    np.testing.assert_allclose(out["b"], ols.intercept[1] + ols.coef[0, 1] * data["a"], atol=1e-9)
    assert (scm.draw_noise_array(4, np.random.default_rng(0))[:, 1:] == 0).all()


# ---- DoWhy --------------------------------------------------------------------------------------------
def test_dowhy_scm_matches_dowhy_itself():
    needs_dowhy()
    from dowhy import gcm

    from condfip.baselines import DoWhySCM

    data, graph = linear_data(n=50)
    scm = DoWhySCM.fit(data, graph)
    assert scm.roots_as_values
    np.testing.assert_allclose(scm.noise(data)["a"], data["a"])  # a root's noise is its value
    np.testing.assert_allclose(scm.sample(noise=scm.noise(data)).to_numpy(), data.to_numpy(), atol=1e-9)
    ours = scm.counterfactual(data, {"a": 0.5})
    theirs = gcm.counterfactual_samples(scm.model, {"a": lambda x: 0.5}, observed_data=data)
    np.testing.assert_allclose(ours.to_numpy(), theirs[scm.columns].to_numpy(), atol=1e-9)
    theirs = gcm.counterfactual_samples(scm.model, {"b": lambda x: x + 1.0}, noise_data=scm.noise(data))
    ours = scm.do({"b": lambda x: x + 1.0}).sample(noise=scm.noise(data))
    np.testing.assert_allclose(ours.to_numpy(), theirs[scm.columns].to_numpy(), atol=1e-9)
    assert scm.sample(7, seed=3).equals(scm.sample(7, seed=3))


def test_dowhy_worker_fits_and_times_out():
    needs_dowhy()
    data, graph = linear_data(n=50)
    with DoWhyWorker() as worker:
        scm = worker.fit(data, graph, timeout=300)
        np.testing.assert_allclose(scm.sample(noise=scm.noise(data)).to_numpy(), data.to_numpy(), atol=1e-9)
        with pytest.raises(FitTimeout):
            worker.fit(data, graph, timeout=0.0)
        assert worker._proc is None  # killed


# ---- the whole pipeline on a tiny suite -----------------------------------------------------------------
TINY = [Cell("paper-in", "linear", 4, 50, 1), Cell("paper-out", "rff", 5, 50, 1)]
FIELDS = {"part", "method", "task", "cell", "d", "n_context", "value", "seconds", "status", "load1"}


def fake_sachs(folder) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame(np.exp(rng.standard_normal((853, 11))), columns=SACHS_COLUMNS).to_csv(folder / "sachs.csv",
                                                                                         index=False)
    pd.DataFrame(SACHS_EDGES, columns=["cause", "effect"]).to_csv(folder / "sachs-graph.csv", index=False)


def test_every_method_is_handed_the_true_root_values():
    """Pushed through, the true query noise gives every method the query's root values exactly (each in its own
    root convention: a context mean, the truth's constant); before, only DoWhy's roots were right."""
    from condfip.bench.methods import Methods
    from condfip.bench.suites import make_problem
    from condfip.bench.tasks import noise_for

    problem = make_problem("paper-in", "linear", 6, 60, 0, query_rows=30)
    roots = [c for c in problem.columns if problem.graph.in_degree(c) == 0]
    methods = Methods()
    for name in ("condfip", "condfip-network", "ols-parents", "zero-noise", "oracle"):
        scm, _ = methods.fit(name, problem.context, problem.graph, truth=problem.truth)
        noise = noise_for(scm, problem)
        assert np.abs(noise.drop(columns=roots).to_numpy() - problem.true_noise.drop(columns=roots).to_numpy()).max() == 0
        sampled = scm.sample(noise=noise)
        np.testing.assert_allclose(sampled[roots].to_numpy(), problem.query[roots].to_numpy(), atol=1e-9)
        if name != "oracle":  # the simulator's root noise is off the context mean's convention
            assert np.abs(noise[roots].to_numpy() - problem.true_noise[roots].to_numpy()).max() > 1e-6
    methods.close()


def test_every_method_on_a_tiny_suite(tmp_path):
    needs_dowhy()
    out = tmp_path / "bench"
    cfg = BenchConfig(out=out, suite=TINY, query_rows=50, dowhy_timeout=None, parts=("synthetic", "scale"),
                      scale_grid=[(4, 60)], quiet=True, plots=False, command="pytest")
    with warnings.catch_warnings(record=True) as caught:  # the tasks extrapolate on purpose: no warning per dataset
        warnings.simplefilter("always", ExtrapolationWarning)
        run_bench(cfg)
    assert not [w for w in caught if issubclass(w.category, ExtrapolationWarning)]
    records = json.loads((out / "results.json").read_text())
    assert all(FIELDS <= set(r) for r in records)
    synth = [r for r in records if r["part"] == "synthetic"]
    methods = METHODS
    assert {(r["method"], r["task"], r["cell"]) for r in synth} == {
        (m, t, c.name) for m in methods for t in TASKS for c in TINY}
    for r in synth:
        assert r["status"] == "ok", r
        assert r["value"] >= 0 and r["value_scaled"] >= 0 and r["seconds"] >= 0 and r["n_query"] == 50
    oracle = [r for r in synth if r["method"] == "oracle"]
    assert all(r["value"] < 1e-8 for r in oracle if r["task"] == "sample")
    assert all(r["value"] < 1e-6 for r in oracle)
    zero = {r["cell"]: r for r in synth if r["method"] == "zero-noise" and r["task"] == "noise"}
    # predicting 0 is about one noise std off
    assert all(1.0 - 1e-9 <= r["value_scaled"] < 1.5 for r in zero.values())
    assert all(r["weights_sha256"] for r in synth if r["method"] == "condfip")
    scale = [r for r in records if r["part"] == "scale"]
    assert len(scale) == 1 and scale[0]["status"] == "ok", scale
    assert scale[0]["peak_rss_mb"] >= scale[0]["base_rss_mb"] > 0 and scale[0]["context_used"] == 60

    # Sachs (a fake table of the right shape; the cheap methods) into the same folder, with the plots
    fake_sachs(tmp_path)
    md = run_bench(BenchConfig(out=out, parts=("sachs",), methods=("ols-parents", "zero-noise", "oracle"),
                               sachs_dir=str(tmp_path), sachs_splits=2, quiet=True, command="pytest"))
    records = json.loads((out / "results.json").read_text())
    sachs = [r for r in records if r["part"] == "sachs"]
    assert {(r["method"], r["index"]) for r in sachs} == {
        (m, k) for m in ("real", "ols-parents", "zero-noise") for k in (0, 1)}
    assert all(r["status"] == "ok" and math.isfinite(r["value"]) for r in sachs)
    assert all(r["value"] > 0.05 for r in sachs if r["method"] == "zero-noise")  # noiseless rows are far off

    text = md.read_text()
    for heading in ("## noise", "## sample", "## intervention", "## counterfactual", "## Sachs", "## scale"):
        assert heading in text
    assert "condfip/dowhy" in text and "weights_sha256" in text and "| command | pytest |" in text
    for name in (*TASKS, "sachs_mmd", "scale"):
        assert (out / f"{name}.png").stat().st_size > 1000
    assert json.loads((out / "meta.json").read_text())["cpu_count"] == os.cpu_count()

    # resume: records already present are kept, missing ones are computed again
    kept = [r for r in records if not (r["method"] == "ols-parents" and r["part"] == "synthetic")]
    (out / "results.json").write_text(json.dumps(kept))
    run_bench(BenchConfig(out=out, suite=TINY, query_rows=50, methods=("ols-parents", "oracle"),
                          parts=("synthetic",), quiet=True, plots=False))
    again = json.loads((out / "results.json").read_text())
    assert len(again) == len(records)
    by_key = {(r["part"], r["method"], r["task"], r["cell"], r["index"]): r for r in again}
    for r in records:
        if r["method"] != "ols-parents":  # untouched, including the time and load it recorded
            assert by_key[(r["part"], r["method"], r["task"], r["cell"], r["index"])] == r


def test_failures_are_recorded(tmp_path, monkeypatch):
    cfg = BenchConfig(out=tmp_path, suite=[Cell("paper-in", "linear", 3, 50, 1)], query_rows=50,
                      methods=("ols-parents",), parts=("synthetic", "sachs"), quiet=True, plots=False,
                      sachs_dir=str(tmp_path / "nowhere"))
    from condfip.bench import run as run_module

    class Broken(run_module.Methods):
        def fit(self, name, *args, **kwargs):
            raise np.linalg.LinAlgError("singular")

    monkeypatch.setattr(run_module, "Methods", Broken)
    md = run_bench(cfg)
    records = json.loads((tmp_path / "results.json").read_text())
    assert len(records) == len(TASKS)
    assert all(r["status"] == "failed" and r["value"] is None and "singular" in r["error"] for r in records)
    text = md.read_text()
    assert "[1 failed]" in text and "Sachs not run" in text


# ---- Sachs loader ----------------------------------------------------------------------------------------
def test_sachs_loader(tmp_path):
    with pytest.raises(SachsDataMissing, match="sachs.csv"):
        load_sachs(tmp_path)
    fake_sachs(tmp_path)
    data, graph = load_sachs(tmp_path)
    assert data.shape == (853, 11) and list(data.columns) == list(SACHS_COLUMNS)
    np.testing.assert_allclose(data.mean().to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(data.std(ddof=0).to_numpy(), 1.0, atol=1e-9)
    assert graph.number_of_edges() == 17 and nx.is_directed_acyclic_graph(graph)
    context, held = split(data, 0)
    assert len(context) == len(held) == 400 and not set(context.index) & set(held.index)
    # the package data, once shipped, load the same way; until then the error says what is missing
    try:
        shipped, shipped_graph = load_sachs()
    except SachsDataMissing as err:
        assert "condfip/data/sachs.csv" in str(err)
    else:
        assert shipped.shape == (853, 11) and shipped_graph.number_of_edges() == 17


# ---- the command ------------------------------------------------------------------------------------------
def test_bench_command_options(tmp_path):
    from typer.testing import CliRunner

    from condfip.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    for option in ("--quick", "--out", "--methods", "--cells", "--dowhy-timeout", "--retry-failed"):
        assert option in result.output
    result = runner.invoke(app, ["bench", "--out", str(tmp_path), "--methods", "nope"])
    assert result.exit_code != 0 and not (tmp_path / "results.json").exists()
    result = runner.invoke(app, ["bench", "--out", str(tmp_path), "--methods", "ols-parents,zero-noise",
                                 "--cells", "paper-in/linear/d10/n50", "--parts", "synthetic"])
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "results.json").read_text())
    assert len(records) == 5 * 2 * len(TASKS) and all(r["status"] == "ok" for r in records)
    assert "| command | condfip bench --out" in (tmp_path / "results.md").read_text()
