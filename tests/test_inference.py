"""The zero-shot inference API: fixed point, interventions, abduction, determinism, shipped weights."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

import condfip
from condfip.inference import ZeroShotModel
from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.model import CondFiP, ModelConfig
from condfip.simulate import get_prior, simulate
from shift_check import child_shifts

ROOT = Path(__file__).resolve().parents[1]


def random_model(seed: int = 0, max_context: int = 1000) -> ZeroShotModel:
    """A tiny randomly initialised network whose decoder really uses its inputs (random adaLN)."""
    torch.manual_seed(seed)
    net = CondFiP(ModelConfig(width=16, heads=2, encoder_layers=1, code_layers=1, decoder_layers=2,
                              max_context=max_context))
    for block in net.decoder.blocks:
        torch.nn.init.normal_(block.modulation.weight, std=0.3)
    return ZeroShotModel(net.eval(), {"sha256": "random"})


def chain_data(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, nx.DiGraph]:
    """a -> b -> c -> d plus an unrelated e, in units far from standardised."""
    rng = np.random.default_rng(seed)
    a = 10 + 3 * rng.standard_normal(n)
    b = 2 * a + rng.standard_normal(n)
    c = np.sin(b) + 0.5 * rng.standard_normal(n)
    d = c - b / 10 + rng.standard_normal(n)
    e = 100 + rng.standard_normal(n)
    data = pd.DataFrame({"a": a, "b": b, "c": c, "p44/42": d, "e": e}, index=[f"r{i}" for i in range(n)])
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "p44/42")])
    graph.add_node("e")
    return data, graph


def test_sample_of_abducted_noise_returns_the_data():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    assert scm.abduction == "auto"  # the random model's card names no network abduction: the decoder's
    back = scm.sample(noise=scm.noise(data))
    assert list(back.index) == list(data.index)
    np.testing.assert_allclose(back.to_numpy(), data.to_numpy(), rtol=0, atol=1e-9)


def test_longest_path_plus_one_passes_reach_the_exact_fixed_point():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    assert len(scm._generations) == nx.dag_longest_path_length(graph) + 1 == 4
    eps = scm.noise(data).to_numpy()
    exact = scm.solve(eps)
    np.testing.assert_allclose(scm.mechanism_array(exact) + eps, exact, atol=1e-9)  # a fixed point
    scm._generations = scm._generations[:-1]  # one pass short: the last node of the chain is not settled
    assert not np.allclose(scm.solve(eps), exact, atol=1e-6)


def test_hard_intervention_holds_value_and_leaves_non_descendants_alone():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    noise = scm.noise(data)
    before = scm.sample(noise=noise)
    after = scm.do({"b": 25.0}).sample(noise=noise)
    assert (after["b"] == 25.0).all()
    for node in ("a", "e"):  # not descendants of b
        np.testing.assert_array_equal(after[node].to_numpy(), before[node].to_numpy())
    assert not np.allclose(after["c"], before["c"])
    assert scm.do({"b": 25.0}).graph.in_degree("b") == 0 and scm.graph.in_degree("b") == 1


def test_shift_intervention_sees_user_units_and_several_nodes_at_once():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    noise = scm.noise(data)
    shifted = scm.do({"a": lambda v: v + 1.0, "e": 0.0}).sample(noise=noise)
    np.testing.assert_allclose(shifted["a"].to_numpy(), data["a"].to_numpy() + 1.0, atol=1e-9)
    assert (shifted["e"] == 0.0).all()


@pytest.mark.parametrize("abduction", ["decoder", "encoder"])
def test_counterfactual_abducts_with_the_decoder_whatever_the_abduction(abduction):
    """Replaying a row under do(node = its own factual value) returns the row, for both abductions (the
    encoder head's noise would not: it is not the inverse of T)."""
    data, graph = chain_data()
    scm = random_model().infer(data, graph, abduction=abduction)
    row = data.iloc[:5]
    same = scm.counterfactual(row, {"b": lambda x: x})
    np.testing.assert_allclose(same.to_numpy(), row.to_numpy(), atol=1e-9)
    if abduction == "encoder":
        replayed = scm.sample(noise=scm.noise(row))
        assert not np.allclose(replayed.to_numpy(), row.to_numpy(), atol=1e-6)


def test_counterfactual_keeps_index_and_non_descendants():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    cf = scm.counterfactual(data.iloc[:7], {"c": 0.0})
    assert list(cf.index) == list(data.index[:7])
    np.testing.assert_allclose(cf[["a", "b", "e"]].to_numpy(), data.iloc[:7][["a", "b", "e"]].to_numpy(),
                               atol=1e-9)


def test_sampling_is_deterministic_given_a_seed_and_uses_both_noise_models():
    data, graph = chain_data()
    model = random_model()
    for noise_model in ("empirical", "gaussian"):
        scm = model.infer(data, graph, noise_model=noise_model)
        one, two = scm.sample(50, seed=3), scm.sample(50, seed=3)
        pd.testing.assert_frame_equal(one, two)
        assert not scm.sample(50, seed=4).equals(one)
    assert len(model.infer(data, graph).sample()) == len(data)  # n defaults to the data's rows


def test_empirical_noise_stays_inside_the_abducted_range():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    drawn = scm.draw_noise_array(500, np.random.default_rng(0))
    context = scm.context_noise()
    assert (drawn.min(axis=0) >= context.min(axis=0) - 1e-12).all()
    assert (drawn.max(axis=0) <= context.max(axis=0) + 1e-12).all()


def test_encoder_abduction_runs_and_differs_from_decoder():
    data, graph = chain_data()
    model = random_model()
    enc = model.infer(data, graph, abduction="encoder").noise(data)
    dec = model.infer(data, graph, abduction="decoder").noise(data)
    assert enc.shape == dec.shape and not np.allclose(enc, dec)


def test_the_encoder_pass_on_some_nodes_and_their_ancestors_equals_the_full_pass(monkeypatch):
    """The noise answer runs the encoder head only on the nodes that need it and their ancestors: the same
    values as the full pass (float32 rounding), with the shipped weights (pair bias and pair values on); without
    the ancestors the values change, so the ancestors are what the pass needs."""
    sim = simulate(get_prior("paper-in"), nodes=12, samples=200, seed=3, mechanism="rff")
    scm = condfip.load_pretrained().infer(sim.data, sim.scm.graph)
    x = sim.data.to_numpy()[:40] + 0.1
    full = scm.encoder_mechanism_array(x)
    ancestors = {i: len(nx.ancestors(sim.scm.graph, c)) for i, c in enumerate(scm.columns)}
    nodes = np.array(sorted(i for i in ancestors if ancestors[i] > 0)[:3])
    assert len(nodes) == 3 and len(scm._with_ancestors(nodes)) < len(scm.columns)  # a smaller pass
    some = scm.encoder_mechanism_array(x, nodes)
    assert some.shape == (len(x), len(nodes))
    np.testing.assert_allclose((some - full[:, nodes]) / scm.std[nodes], 0, atol=1e-4)
    monkeypatch.setattr(type(scm), "_with_ancestors", lambda self, nodes: np.sort(np.asarray(nodes)))
    alone = scm.encoder_mechanism_array(x, nodes)  # the nodes without their ancestors
    assert np.abs((alone - full[:, nodes]) / scm.std[nodes]).max() > 1e-2


def test_large_contexts_are_subsampled_with_a_seed():
    data, graph = chain_data(n=80)
    model = random_model(max_context=30)
    one, two = model.infer(data, graph), model.infer(data, graph)
    assert len(one.context) == 30
    pd.testing.assert_frame_equal(one.context, two.context)
    assert not model.infer(data, graph, context_seed=1).context.equals(one.context)


def test_node_order_of_the_graph_does_not_matter():
    data, graph = chain_data()
    model = random_model()
    reordered = nx.DiGraph()
    reordered.add_nodes_from(reversed(list(graph.nodes)))
    reordered.add_edges_from(graph.edges)
    a = model.infer(data, graph).noise(data)
    b = model.infer(data, reordered).noise(data)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "interventions, culprit",
    [({"zz": 1.0}, "zz"), ({"a": float("nan")}, "a"), ({"a": "high"}, "a"), ({}, "non-empty")],
)
def test_bad_interventions_raise_input_error(interventions, culprit):
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    with pytest.raises(condfip.InputError, match=culprit):
        scm.do(interventions)


def test_bad_data_raises_input_error_naming_the_column():
    data, graph = chain_data()
    scm = random_model().infer(data, graph)
    with pytest.raises(condfip.InputError, match="p44/42"):
        scm.noise(data.drop(columns=["p44/42"]))
    with pytest.raises(condfip.InputError, match="zz"):
        random_model().infer(data, nx.relabel_nodes(graph, {"e": "zz"}))


# ---- the shipped weights ----------------------------------------------------------------------------
def _linear_d10_noise_scores(model: ZeroShotModel, **infer_options) -> tuple[list[float], list[float], list[float]]:
    """Noise RMSE (nodes with parents) on 3 fixed P_IN LIN d=10 SCMs, 400 context + 400 query rows:
    (the model with its default abduction and ``infer_options``, the zero-noise floor, least squares on the
    true parents)."""
    ours, floor, ols = [], [], []
    for k in range(3):
        ds = simulate(get_prior("paper-in"), nodes=10, samples=800, seed=424_242, index=k, mechanism="linear")
        context, query, true_noise = ds.data.iloc[:400], ds.data.iloc[400:], ds.noise.iloc[400:].to_numpy()
        adj = nx.to_numpy_array(ds.scm.graph, nodelist=list(ds.data.columns)) != 0
        scored = nodes_with_parents(adj)
        ours.append(rmse_per_sample(true_noise, model.infer(context, ds.scm.graph, **infer_options).noise(query), scored))
        floor.append(rmse_per_sample(true_noise, np.zeros_like(true_noise), scored))
        residual = np.zeros_like(true_noise)
        for i in np.nonzero(scored)[0]:
            design = np.column_stack([context.to_numpy()[:, adj[:, i]], np.ones(len(context))])
            coef = np.linalg.lstsq(design, context.to_numpy()[:, i], rcond=None)[0]
            q_design = np.column_stack([query.to_numpy()[:, adj[:, i]], np.ones(len(query))])
            residual[:, i] = query.to_numpy()[:, i] - q_design @ coef
        ols.append(rmse_per_sample(true_noise, residual, scored))
    return ours, floor, ols


@pytest.fixture(scope="module")
def shipped_scores():
    return _linear_d10_noise_scores(condfip.load_pretrained())


def test_shipped_weights_beat_half_the_zero_noise_floor(shipped_scores):
    """An untrained network scores far above the floor (see the next test): this fails without training."""
    ours, floor, _ = shipped_scores
    assert np.mean(ours) < 0.5 * np.mean(floor), (ours, floor)


def test_an_untrained_network_fails_the_floor_check():
    """With the network's own mechanisms (the kernel regressions would abduct well without any training)."""
    ours, floor, _ = _linear_d10_noise_scores(random_model(), mechanisms="network")
    assert np.mean(ours) > 0.5 * np.mean(floor)


def test_shipped_weights_within_twice_least_squares(shipped_scores):
    """The issue's target for the regression-free default weights (``pv2d`` measured 1.96x)."""
    ours, _, ols = shipped_scores
    assert np.mean(ours) <= 2 * np.mean(ols), (ours, ols)


def test_the_shipped_card_loads_without_the_retired_options_and_answers_as_its_state_dict():
    """The shipped card still names the options retired in issue 24, at their off values: ``from_dict`` drops
    them, and the loaded network computes exactly what a network built from the same tensors computes."""
    import json

    from condfip.model import RETIRED
    from condfip.pretrained import WEIGHTS_DIR, read_weights

    card = json.loads((WEIGHTS_DIR / "condfip.json").read_text())
    assert set(RETIRED) <= set(card["model"])  # the card predates the retirement: it is read, not rewritten
    cfg = ModelConfig.from_dict(card["model"])
    assert cfg.pair_values and cfg.decoder_pair_weights and not cfg.decoder_context
    assert not set(RETIRED) & set(cfg.to_dict())
    shipped = condfip.load_pretrained().network
    assert shipped.config == cfg
    rebuilt = CondFiP(cfg).eval()
    rebuilt.load_state_dict(read_weights()[0])
    x = torch.randn(1, 40, 6, generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, 7, 6, generator=torch.Generator().manual_seed(1))
    adj = torch.triu(torch.ones(1, 6, 6, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        assert torch.equal(shipped(x, z, adj), rebuilt(x, z, adj))
        assert torch.equal(shipped.encoder(x, adj)[1], rebuilt.encoder(x, adj)[1])


@pytest.mark.parametrize("option, on", [("node_heads", 8), ("linear_feature", True), ("decoder_linear", True)])
def test_a_card_that_switches_a_retired_option_on_is_refused(option, on, tmp_path):
    import json
    import shutil

    from condfip.pretrained import WEIGHTS_DIR

    with pytest.raises(condfip.InputError, match=f"{option}.*retired"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), option: on})
    shutil.copytree(WEIGHTS_DIR, tmp_path / "w")
    card = json.loads((tmp_path / "w" / "condfip.json").read_text())
    card["model"][option] = on
    (tmp_path / "w" / "condfip.json").write_text(json.dumps(card))
    with pytest.raises(condfip.InputError, match="retired"):
        condfip.load_pretrained(tmp_path / "w")


class _LeastSquaresOnParents:
    """The shift check's reference: least squares on the true parents answers like an ``infer``."""

    @staticmethod
    def infer(data, graph):
        from condfip.baselines import OLSParentsSCM

        return OLSParentsSCM.fit(data, graph)


def test_the_shift_check_passes_least_squares_and_fails_a_flat_decoder():
    """Guards the next tests: on linear SCMs least squares on the parents moves every child by the true shift
    (within 25%); an untrained network generating through its decoder, which is flat, does not."""
    rows = child_shifts(_LeastSquaresOnParents(), rows=1000)
    assert len(rows) >= 6 and all(abs(p - t) <= 0.25 * abs(t) for *_, p, t in rows), rows
    flat = child_shifts(random_model(), rows=300, mechanisms="network")
    assert not all(abs(p - t) <= 0.25 * abs(t) for *_, p, t in flat)


def test_shipped_weights_move_children_by_the_true_shift_three_sds_out():
    """The issue's flattening check, with the defaults (kernel mechanisms): do(target = context mean + 3 SD) on 3
    fixed linear d = 10 SCMs moves each child's mean to within 25% of the true shift."""
    rows = child_shifts(condfip.load_pretrained())
    assert all(abs(p - t) <= 0.25 * abs(t) for *_, p, t in rows), rows


@pytest.mark.xfail(strict=True, reason="issue 20: the shipped decoder moves a child of a correlated-parents node by "
                   "0.12 of the true shift (worst of 14 children, relative error 0.88; python tools/intervention_shift.py)")
def test_the_network_decoder_moves_children_by_the_true_shift_three_sds_out():
    """The same check with ``mechanisms="network"``: the decoder still flattens (why it is not the default)."""
    rows = child_shifts(condfip.load_pretrained(), mechanisms="network")
    assert all(abs(p - t) <= 0.25 * abs(t) for *_, p, t in rows), rows


def test_shipped_weights_load_from_a_built_wheel(tmp_path):
    """Build the wheel, check the weights are inside, and load them from the unpacked wheel."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("condfip-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "condfip/weights/condfip.safetensors" in names and "condfip/weights/condfip.json" in names
        assert not any(name.startswith("condfip/weights_lsq/") for name in names)  # retired in issue 24
        assert "condfip/py.typed" in names
        zf.extractall(tmp_path / "unpacked")
    code = ("import condfip, pathlib; m = condfip.load_pretrained(); "
            "import condfip.pretrained as p; print(p.WEIGHTS_DIR); print(m.sha256)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path / "unpacked"), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out[0].startswith(str(tmp_path / "unpacked"))
    assert out[1] == condfip.load_pretrained().sha256 and len(out[1]) == 64
