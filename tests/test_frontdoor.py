"""The users' front door in Python: the demo, effects, the report, saved SCMs and the DoWhy-gcm interop.

Most tests use tiny "live" weights (width 16, random with non-zero decoder gates, so that every mechanism
depends on its parents); the demo uses the shipped weights. Small data: d = 4, n = 60.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import condfip
from condfip import InputError, load_scm
from condfip.effects import Effect, average_effect
from condfip.memory import check_memory, estimate_infer_memory
from condfip.report import Report, report
from condfip.scm import SCM
from tiny_weights import make_weights

COLUMNS = ["a", "b=1", "p44/42", "d"]
EDGES = [("a", "b=1"), ("b=1", "p44/42"), ("a", "d")]


def make_data(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 2.0 * a + 0.5 * rng.normal(size=n)
    c = np.sin(b) + 0.3 * rng.normal(size=n)
    d = -a + 0.4 * rng.normal(size=n)
    return pd.DataFrame(np.column_stack([a, b, c, d]), columns=COLUMNS)


def make_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(COLUMNS)
    graph.add_edges_from(EDGES)
    return graph


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights") / "live")


@pytest.fixture(scope="module")
def model(weights):
    return condfip.load_pretrained(weights)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_data()


@pytest.fixture(scope="module")
def scm(model, data):
    return model.infer(data, make_graph())


# --------------------------------------------------------------------------------------------------
# the demo


def test_demo_runs_offline_and_writes_plots(tmp_path):
    from condfip.cli import app

    out = tmp_path / "demo out"
    start = time.perf_counter()
    refused = CliRunner().invoke(app, ["demo", "--out", str(out), "--bootstrap", "2"])
    assert refused.exit_code != 0 and ">= 20" in refused.output and not out.exists()
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--bootstrap", "20", "--samples", "200"])
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    text = result.output
    for node in ["praf", "pmek", "PIP2", "PIP3", "p44/42", "pakts473", "PKA", "P38", "pjnk"]:
        assert re.search(rf"^\s*{re.escape(node)}\s+R\^2 [+-]\d", text, re.MULTILINE), node
    assert "root" in text and "do(PKC" in text
    for name in ["graph.png", "marginals.png", "intervention-PKC.png", "effects-PKC.png", "report.csv",
                 "effects.csv", "samples-observational.csv", "samples-do-PKC-low.csv", "README.txt"]:
        assert (out / name).stat().st_size > 0, name
    shifted = sorted(p.name for p in (out / "do-PKC").iterdir())
    assert "p44_42.png" in shifted and len(shifted) == 7  # the seven proteins downstream of PKC
    for png in out.rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "report.csv", index_col=0)
    from condfip.demo import sachs_data

    assert list(table.index) == list(sachs_data().columns)
    print(f"demo (reduced: 20 bootstrap replicates, 200 samples) took {elapsed:.1f} s")


def test_shipped_sachs_data_and_graph():
    from condfip.demo import sachs_data, sachs_graph, sanitise

    data, graph = sachs_data(), sachs_graph()
    assert data.shape == (853, 11) and (data.to_numpy() > 0).all()
    assert graph.number_of_edges() == 17 and nx.is_directed_acyclic_graph(graph)
    assert set(graph.successors("PKC")) == {"praf", "pmek", "PKA", "pjnk", "P38"}
    taken: set[str] = set()
    assert sanitise("p44/42", taken) == "p44_42"
    assert sanitise("p44:42", taken) == "p44_42-2"  # collisions get a suffix
    assert sanitise("../..", set()) == "node"


# --------------------------------------------------------------------------------------------------
# effects


def test_effect_interval_and_exact_zero_for_non_descendants(scm):
    eff = scm.effect("p44/42", {"a": 1.0}, {"a": -1.0}, n=200, bootstrap=20, seed=1)
    assert isinstance(eff, Effect) and len(eff.replicates) == 20
    assert eff.low < eff.estimate < eff.high and np.isfinite([eff.estimate, eff.low, eff.high]).all()
    assert eff.estimate != 0.0  # the live network's mechanisms depend on their parents
    assert "do(a=1)" in str(eff) and "p44/42" in str(eff) and "not the model's own error" in str(eff)
    assert not eff.calibrated and eff.model_error == 0.0  # the tiny test weights have no calibration
    assert eff.as_row()["interval_covers"] == eff.covers
    # the interval is estimate +- z * SD(replicates): it contains its estimate, symmetric
    assert eff.high - eff.estimate == pytest.approx(1.959964 * eff.replicates.std(ddof=1))
    # a node that is no descendant of the intervened node keeps its value row by row: exactly 0
    zero = scm.effect("d", {"b=1": 3.0}, n=100, bootstrap=20, seed=1)
    assert zero.estimate == 0.0 and zero.low == 0.0 and zero.high == 0.0
    # reproducible with a seed
    again = scm.effect("p44/42", {"a": 1.0}, {"a": -1.0}, n=200, bootstrap=20, seed=1)
    assert again.estimate == eff.estimate and np.array_equal(again.replicates, eff.replicates)


def test_effect_refuses_too_few_replicates(scm):
    with pytest.raises(InputError, match="too few"):
        scm.effect("p44/42", {"a": 1.0}, bootstrap=5)


def test_conformal_quantile_is_the_split_conformal_order_statistic():
    from condfip.effects import conformal_quantile

    rows = [[err, 0.0, 2.0] for err in np.arange(1.0, 20.0)]  # 19 rows, scores err / 2
    assert conformal_quantile(rows, 0.9) == pytest.approx(9.0)  # ceil(20 * 0.9) = 18th smallest of 0.5 .. 9.5
    assert conformal_quantile(rows, 0.5) == pytest.approx(5.0)
    # the resampling part is taken off first: rows covered by z * SD alone score 0
    assert conformal_quantile([[1.0, 1.0, 1.0]] * 19, 0.9) == 0.0
    with pytest.raises(InputError, match="more than the model-error calibration supports"):
        conformal_quantile(rows, 0.99)
    # the guarantee: on fresh draws from the calibration's distribution, coverage >= the level
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        err, size = np.abs(rng.standard_t(3, size=60)), rng.uniform(0.5, 2.0, size=60)
        cal = np.column_stack([err[:59] * size[:59], np.zeros(59), size[:59]])
        hits.append(err[59] * size[59] <= conformal_quantile(cal, 0.8) * size[59])
    assert np.mean(hits) >= 0.75


def test_model_scale_counts_intervened_ancestors_only(scm):
    from condfip.effects import effect_table, model_scale

    sd = scm.context.std()
    estimate, _ = effect_table(scm, {"a": 1.0}, {"a": -1.0}, n=50, bootstrap=0)
    assert estimate[0] == pytest.approx(2.0)
    # a's child on the path (b=1) has no other parent: a's own SD
    assert model_scale(scm, "p44/42", estimate, ["a"]) == pytest.approx(sd["p44/42"] * 2.0 / sd["a"])
    estimate, _ = effect_table(scm, {"b=1": 3.0}, n=50, bootstrap=0)
    assert model_scale(scm, "d", estimate, ["b=1"]) == 0.0  # b=1 is no ancestor of d: no model error


def test_model_scale_grows_where_the_intervened_node_is_nearly_collinear_with_a_co_parent(model):
    """Setting x apart from w, which it nearly equals in the context, leaves the rows the mechanism of y was
    read from: the size is |delta| over x's residual SD given w, not over x's SD."""
    from condfip.effects import effect_table, model_scale

    rng = np.random.default_rng(0)
    w = rng.normal(size=200)
    x = w + 0.05 * rng.normal(size=200)
    y = x - w + 0.1 * rng.normal(size=200)
    frame = pd.DataFrame({"w": w, "x": x, "y": y})
    scm = model.infer(frame, nx.DiGraph([("w", "x"), ("w", "y"), ("x", "y")]))
    estimate, _ = effect_table(scm, {"x": 1.0}, {"x": -1.0}, n=50, bootstrap=0)
    residual = x - np.polyval(np.polyfit(w, x, 1), w)
    expected = frame["y"].std() * 2.0 / residual.std(ddof=2)
    assert model_scale(scm, "y", estimate, ["x"]) == pytest.approx(expected, rel=1e-6)
    assert expected > 10 * frame["y"].std() * 2.0 / frame["x"].std()


def test_effect_adds_the_calibrated_model_error_for_its_weights_only(scm, monkeypatch, tmp_path):
    import json

    from condfip import effects

    rows = [[float(err), 0.01, 1.0] for err in np.linspace(0.0, 1.0, 39)]
    calibration = tmp_path / "effect.json"
    calibration.write_text(json.dumps({"weights_sha256": scm.card["sha256"], "rows": rows, "command": "test",
                                       "mechanisms": "network"}))
    monkeypatch.setattr(effects, "CALIBRATION_FILE", calibration)
    assert scm.mechanisms == "kernel"  # calibrated on the other mechanisms: the resampling part alone
    assert not scm.effect("p44/42", {"a": 1.0}, {"a": -1.0}, n=200, bootstrap=20, seed=1).calibrated
    calibration.write_text(json.dumps({"weights_sha256": scm.card["sha256"], "rows": rows, "command": "test",
                                       "mechanisms": "kernel"}))
    eff = scm.effect("p44/42", {"a": 1.0}, {"a": -1.0}, n=200, bootstrap=20, seed=1)
    c = effects.conformal_quantile(rows, 0.95)
    size = effects.model_scale(scm, "p44/42", np.array([2.0, 0, 0, 0]), ["a"])
    assert eff.calibrated and eff.model_error == pytest.approx(c * size) and eff.model_error > 0
    assert eff.high - eff.estimate == pytest.approx(1.959964 * eff.resampling_sd + c * size)
    assert eff.estimate - eff.low == pytest.approx(eff.high - eff.estimate)
    assert "calibrated on simulated SCMs" in eff.covers and eff.as_row()["model_error"] == eff.model_error
    with pytest.raises(InputError, match="fix: pass a lower level"):
        scm.effect("p44/42", {"a": 1.0}, n=50, bootstrap=20, level=0.99)
    # other weights: the resampling part alone, and the words say so
    calibration.write_text(json.dumps({"weights_sha256": "0" * 64, "rows": rows, "command": "test"}))
    other = scm.effect("p44/42", {"a": 1.0}, {"a": -1.0}, n=200, bootstrap=20, seed=1)
    assert not other.calibrated and other.model_error == 0.0 and "no model-error calibration" in other.covers
    assert other.estimate == eff.estimate and other.high < eff.high


def test_shipped_effect_calibration_belongs_to_the_shipped_weights():
    from condfip.effects import CALIBRATION_FILE, conformal_quantile, load_calibration
    from condfip.inference import DEFAULT_MECHANISMS
    from condfip.pretrained import WEIGHTS_DIR, WEIGHTS_FILE, sha256

    calibration = load_calibration(CALIBRATION_FILE)
    assert calibration is not None and calibration["weights_sha256"] == sha256(WEIGHTS_DIR / WEIGHTS_FILE)
    assert calibration.get("mechanisms", "network") == DEFAULT_MECHANISMS
    assert len(calibration["rows"]) >= 60 and conformal_quantile(calibration["rows"], 0.95) > 0


def test_batched_replicates_equal_one_by_one_reinference(scm):
    """With network mechanisms, the batched bootstrap gives what re-inferring each resampled context alone gives,
    on the same draws (kernel replicates: tests/test_kernel_mechanisms.py)."""
    from condfip.effects import _resample_rows, bootstrap_replicates
    from condfip.inference import InferredSCM

    scm = InferredSCM(scm.network, scm.card, scm.context, scm._graph, mechanisms="network")
    n, count = 50, 20
    batched = bootstrap_replicates(scm, {"a": 1.0}, {"a": -1.0}, n=n, bootstrap=count,
                                   rng=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    context = scm.context.to_numpy()
    rows = [_resample_rows(context, rng) for _ in range(count)]
    u = rng.random((n, len(COLUMNS)))
    for b in range(count):
        alone = InferredSCM(scm.network, scm.card, scm.context.iloc[rows[b]], scm._graph, mechanisms="network")
        pool = alone.context_noise()
        eps = np.stack([np.quantile(pool[:, j], u[:, j]) for j in range(len(COLUMNS))], axis=1)
        expected = alone.do({"a": 1.0}).solve(eps).mean(axis=0) - alone.do({"a": -1.0}).solve(eps).mean(axis=0)
        np.testing.assert_allclose(batched[b], expected, rtol=1e-4, atol=1e-4)


def test_replicates_for_targets_settle_their_ancestors_only_and_agree(scm, monkeypatch):
    """targets=[...] settles only the targets' ancestors (fewer decoder columns) and gives the same replicates
    as the full solve; the context bootstrap uses REPLICATE_DRAWS draws whatever n is."""
    from condfip.effects import REPLICATE_DRAWS, _Replicates, ancestral_columns, bootstrap_replicates

    assert list(ancestral_columns(scm, ["b=1"])) == [COLUMNS.index("a"), COLUMNS.index("b=1")]
    full = bootstrap_replicates(scm, {"a": 1.0}, {"a": -1.0}, n=40, bootstrap=20, rng=np.random.default_rng(2))
    settled, draws = [], []
    solve = _Replicates.solve

    def spy(self, eps, interventions, needed=None):
        settled.append(None if needed is None else list(needed))
        draws.append(eps.shape[1])
        return solve(self, eps, interventions, needed)

    monkeypatch.setattr(_Replicates, "solve", spy)
    some = bootstrap_replicates(scm, {"a": 1.0}, {"a": -1.0}, n=40, bootstrap=20, rng=np.random.default_rng(2),
                                targets=["b=1", "d"])
    np.testing.assert_allclose(some, full[:, [1, 3]], rtol=1e-6, atol=1e-9)
    assert settled[-1] == list(ancestral_columns(scm, ["b=1", "d"]))
    bootstrap_replicates(scm, {"a": 1.0}, None, n=5 * REPLICATE_DRAWS, bootstrap=20,
                         rng=np.random.default_rng(2), targets=["b=1"])
    assert settled[-1] == [0, 1] and draws[-1] == REPLICATE_DRAWS


def test_effect_reference_none_is_observational_and_shift_works(scm):
    rng_seed = 3
    eff = scm.effect("d", {"a": lambda x: x + 1.0}, n=300, bootstrap=0, seed=rng_seed)
    eps = scm.draw_noise_array(300, np.random.default_rng(rng_seed))
    expected = scm.do({"a": lambda x: x + 1.0}).solve(eps)[:, 3].mean() - scm.solve(eps)[:, 3].mean()
    assert eff.estimate == pytest.approx(expected)
    assert np.isnan(eff.low)  # no replicates, no interval


def test_effect_noise_method_for_any_scm_and_bad_arguments(scm):
    eff = average_effect(scm, "p44/42", {"a": 1.0}, n=100, bootstrap=20, seed=0, method="noise")
    assert eff.method == "noise draws"
    with pytest.raises(InputError, match="unknown target node 'zz'"):
        scm.effect("zz", {"a": 1.0})
    with pytest.raises(InputError, match="unknown intervention node 'q'"):
        scm.effect("d", {"q": 1.0}, bootstrap=0)
    with pytest.raises(InputError, match="level"):
        scm.effect("d", {"a": 1.0}, level=1.5)


# --------------------------------------------------------------------------------------------------
# report


def test_report_table_and_warnings(scm, data):
    rep = scm.report()
    assert isinstance(rep, Report)
    assert list(rep.table.index) == COLUMNS
    assert {"r2", "noise_std", "dependence", "p_value", "independent", "max_abs_z"} <= set(rep.table.columns)
    assert np.isnan(rep.table.loc["a", "r2"]) and rep.table.loc["a", "parents"] == 0
    assert np.isfinite(rep.table.loc[["b=1", "p44/42", "d"], "r2"]).all()
    # 4 nodes (below the training prior's 5-30) earns no warning: d = 50 and 100 measure as accurate as d = 20
    assert not any("nodes but the model was trained" in w for w in rep.warnings)
    assert "p44/42" in str(rep)
    held_out = make_data(40, seed=5) * 3.0  # far outside the context's range
    rep2 = scm.report(held_out)
    assert rep2.source == "given rows" and rep2.rows == 40
    assert any("outside the context's range" in w for w in rep2.warnings)


class _ZeroSCM(SCM):
    """Mechanisms f = 0: the 'noise' is the data itself, so it depends on the parents."""

    def mechanism_array(self, x):
        return np.zeros_like(x)

    def draw_noise_array(self, n, rng):
        return rng.normal(size=(n, len(self.columns)))


def test_report_flags_noise_that_depends_on_parents(data):
    rep = report(_ZeroSCM(make_graph(), COLUMNS), data)
    assert not rep.table.loc["b=1", "independent"]
    assert rep.table.loc["b=1", "most_dependent_parent"] == "a"
    assert any("'b=1' depends on its parent 'a'" in w for w in rep.warnings)


def test_memory_estimate_scales_and_caps_at_max_context(model):
    cfg = model.network.config
    small = estimate_infer_memory(100, 5, cfg, query_rows=1)
    assert estimate_infer_memory(200, 5, cfg, query_rows=1) > 3.5 * small
    assert estimate_infer_memory(10**6, 5, cfg, query_rows=1) == estimate_infer_memory(1000, 5, cfg, query_rows=1)
    assert check_memory(60, 4, cfg, available=10**12) > 0


# --------------------------------------------------------------------------------------------------
# saved SCMs


def test_save_load_answers_bitwise_the_same(scm, data, weights, tmp_path):
    path = tmp_path / "model.safetensors"
    assert scm.save(path) == path
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary file left
    loaded = load_scm(path, weights=weights)
    assert loaded.columns == scm.columns and set(loaded.graph.edges) == set(EDGES)
    assert loaded.abduction == scm.abduction and loaded.noise_model == scm.noise_model
    assert np.array_equal(loaded.noise(data).to_numpy(), scm.noise(data).to_numpy())
    assert np.array_equal(loaded.sample(50, seed=7).to_numpy(), scm.sample(50, seed=7).to_numpy())
    do = {"a": 0.5}
    assert np.array_equal(loaded.do(do).sample(20, seed=2).to_numpy(), scm.do(do).sample(20, seed=2).to_numpy())
    assert np.array_equal(loaded.counterfactual(data, do).to_numpy(), scm.counterfactual(data, do).to_numpy())


def test_save_load_keeps_the_decoders_parent_weights(data, tmp_path):
    """Weights with the regression-free parent weights: they are part of the saved code and come back."""
    pair_weights = make_weights(tmp_path / "pairs", pairs=True)
    scm = condfip.load_pretrained(pair_weights).infer(data, make_graph())
    scm.save(tmp_path / "pairs.safetensors")
    loaded = load_scm(tmp_path / "pairs.safetensors", weights=pair_weights)
    torch.testing.assert_close(loaded.code.pair_coef, scm.code.pair_coef, rtol=0, atol=0)
    assert np.array_equal(loaded.sample(50, seed=7).to_numpy(), scm.sample(50, seed=7).to_numpy())
    assert np.array_equal(loaded.counterfactual(data, {"a": 0.5}).to_numpy(),
                          scm.counterfactual(data, {"a": 0.5}).to_numpy())


def test_the_context_reading_decoder_round_trips_and_saves(data, tmp_path):
    """Weights whose decoder attends across the context rows: ``sample(noise=noise(x)) == x`` with decoder
    abduction, the cached context memory gives the uncached answer, and a saved SCM answers bitwise as before."""
    weights = make_weights(tmp_path / "context", context=True)
    scm = condfip.load_pretrained(weights).infer(data, make_graph(), abduction="decoder", mechanisms="network")
    assert scm.memory is not None and scm.memory is scm.memory
    np.testing.assert_allclose(scm.sample(noise=scm.noise(data)).to_numpy(), data.to_numpy(), rtol=0, atol=1e-9)
    x = scm._standardised(data.to_numpy())
    with torch.no_grad():
        uncached = scm.network.decoder(scm.code, x, scm.adj)[0].double().numpy()
    np.testing.assert_allclose(scm.mechanism(data).to_numpy(), scm.mean + scm.std * uncached, rtol=0, atol=1e-5)
    scm.save(tmp_path / "context.safetensors")
    loaded = load_scm(tmp_path / "context.safetensors", weights=weights)
    assert np.array_equal(loaded.sample(50, seed=7).to_numpy(), scm.sample(50, seed=7).to_numpy())
    assert np.array_equal(loaded.do({"a": 0.5}).sample(50, seed=3).to_numpy(),
                          scm.do({"a": 0.5}).sample(50, seed=3).to_numpy())


def test_save_keeps_hard_interventions_and_refuses_shifts(scm, weights, tmp_path):
    intervened = scm.do({"a": 2.0})
    intervened.save(tmp_path / "do.safetensors")
    loaded = load_scm(tmp_path / "do.safetensors", weights=weights)
    assert loaded.interventions == {"a": 2.0}
    assert (loaded.sample(5, seed=0)["a"] == 2.0).all()
    with pytest.raises(InputError, match="shift interventions"):
        scm.do({"a": lambda x: x + 1}).save(tmp_path / "shift.safetensors")


def test_load_refuses_mismatched_weights_and_bad_files(scm, tmp_path):
    path = scm.save(tmp_path / "model.safetensors")
    with pytest.raises(InputError, match="sha256") as err:
        load_scm(path)  # the shipped weights are not the ones it was inferred with
    assert "weights=" in str(err.value)
    other = make_weights(tmp_path / "other", seed=1)
    with pytest.raises(InputError, match="sha256"):
        load_scm(path, weights=other)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated, corrupt"):
        load_scm(broken)
    with pytest.raises(InputError, match="does not exist"):
        load_scm(tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------------------------------
# DoWhy-gcm


def test_dowhy_counterfactuals_equal_ours(scm, data):
    gcm = pytest.importorskip("dowhy.gcm")
    assert scm.abduction == "auto" and scm.card.get("default_abduction", "decoder") == "decoder"  # auto = decoder
    model = scm.to_dowhy()
    assert isinstance(model, gcm.InvertibleStructuralCausalModel)
    assert set(model.graph.edges) == set(EDGES)
    for interventions, ours in (({"a": lambda x: 0.7}, {"a": 0.7}),
                                ({"b=1": lambda x: x + 1.5}, {"b=1": lambda x: x + 1.5}),
                                ({"a": lambda x: -1.0, "p44/42": lambda x: 2.0}, {"a": -1.0, "p44/42": 2.0})):
        theirs = gcm.counterfactual_samples(model, interventions, observed_data=data)
        expected = scm.counterfactual(data, ours)
        np.testing.assert_allclose(theirs[COLUMNS].to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-6)
    noise = gcm.compute_noise_from_data(model, data) if hasattr(gcm, "compute_noise_from_data") else None
    if noise is not None:
        ours = scm.noise(data)
        np.testing.assert_allclose(noise[["b=1", "p44/42", "d"]].to_numpy(),
                                   ours[["b=1", "p44/42", "d"]].to_numpy(), rtol=1e-6, atol=1e-6)


def test_dowhy_sampling_and_average_causal_effect(scm, data):
    gcm = pytest.importorskip("dowhy.gcm")
    from dowhy.gcm.util.general import set_random_seed

    model = scm.to_dowhy()
    set_random_seed(0)
    drawn = gcm.draw_samples(model, 30)
    assert drawn.shape == (30, 4) and np.isfinite(drawn.to_numpy()).all()
    assert set(drawn["a"]) <= set(scm.context["a"])  # roots: the empirical context values
    inter = gcm.interventional_samples(model, {"a": lambda x: 1.0}, num_samples_to_draw=30)
    assert (inter["a"] == 1.0).all()
    ace = gcm.average_causal_effect(model, "p44/42", {"a": lambda x: 1.0}, {"a": lambda x: -1.0},
                                    num_samples_to_draw=30)
    assert np.isfinite(ace) and ace != 0.0
    gcm.fit(model, data)  # fitting is a no-op for the zero-shot mechanisms and must not break them
    again = gcm.counterfactual_samples(model, {"a": lambda x: 0.7}, observed_data=data)
    np.testing.assert_allclose(again[COLUMNS].to_numpy(), scm.counterfactual(data, {"a": 0.7}).to_numpy(),
                               rtol=1e-6, atol=1e-6)


def test_dowhy_refuses_intervened_scm(scm):
    pytest.importorskip("dowhy.gcm")
    with pytest.raises(InputError, match="before .do"):
        scm.do({"a": 1.0}).to_dowhy()


def test_dowhy_counterfactuals_equal_ours_for_an_encoder_abduction_scm(model, data):
    """Counterfactuals abduct with the decoder whatever the SCM's abduction, so DoWhy's agree too."""
    gcm = pytest.importorskip("dowhy.gcm")
    encoder_scm = model.infer(data, make_graph(), abduction="encoder")
    theirs = gcm.counterfactual_samples(encoder_scm.to_dowhy(), {"a": lambda x: 0.7}, observed_data=data)
    np.testing.assert_allclose(theirs[COLUMNS].to_numpy(),
                               encoder_scm.counterfactual(data, {"a": 0.7}).to_numpy(), rtol=1e-6, atol=1e-6)
