"""Tests for the synthetic SCM simulator (condfip.simulate), its file writer and the ``condfip simulate`` command.

Small d and n throughout; torch runs on one thread here (the suite may share the machine with a training run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from condfip.cli import app
from condfip.simulate import PRESETS, Prior, draw_scms, get_prior, run_scms, simulate, simulate_batch, streams
from condfip.simulate.files import FILES, write_dataset
from condfip.simulate.generate import permute_nodes
from condfip.simulate.graphs import GRAPH_MODELS, sample_dag
from condfip.simulate.mechanisms import MECHANISM_FAMILIES
from condfip.simulate.noise import NOISE_FAMILIES, standard_noise

MECHS = sorted(MECHANISM_FAMILIES)
NOISES = sorted(NOISE_FAMILIES)
BROAD = PRESETS["broad"]


def _dataset(mechanism="rff", noise="gaussian", graph="er", d=8, n=40, seed=0, prior=BROAD, **kw):
    return simulate(prior, nodes=d, samples=n, seed=seed, mechanism=mechanism, graphs=(graph,), noises=(noise,), **kw)


def _split(scm, node):
    """Descendants and non-descendants (the node excluded) of ``node`` in the SCM's graph."""
    desc = nx.descendants(scm.graph, node)
    return sorted(desc), sorted(set(scm.columns) - desc - {node})


def _dataset_with_split(mechanism="rff", noise="gaussian", prior=BROAD, **kw):
    """A dataset and a node that has both descendants and (other) non-descendants."""
    for seed in range(50):
        ds = _dataset(mechanism, noise, seed=seed, prior=prior, **kw)
        for node in ds.scm.columns:
            desc, other = _split(ds.scm, node)
            if desc and other and ds.scm.graph.in_degree(node) > 0:
                return ds, node, desc, other
    raise AssertionError("no seed gave a node with parents, descendants and non-descendants")


# ---- graphs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(GRAPH_MODELS))
@pytest.mark.parametrize("d", [2, 3, 10, 50])
def test_graph_models_give_dags(kind, d):
    rng = np.random.default_rng(d)
    for epn in (0.5, 1.0, 2.5, 4.0):
        for _ in range(3):
            adj = sample_dag(kind, d, epn, rng)
            assert adj.shape == (d, d) and adj.dtype == bool
            assert not adj.diagonal().any(), "self-loop"
            assert not np.tril(adj).any(), "not strictly upper triangular in the canonical order"
            assert nx.is_directed_acyclic_graph(nx.from_numpy_array(adj.astype(int), create_using=nx.DiGraph))


@pytest.mark.parametrize("kind", sorted(GRAPH_MODELS))
@pytest.mark.parametrize("d", [2, 50])
def test_simulated_graph_is_dag_over_permuted_columns(kind, d):
    ds = _dataset("linear", graph=kind, d=d, n=20, seed=1)
    g = ds.scm.graph
    assert sorted(g.nodes) == sorted(ds.data.columns)
    assert nx.is_directed_acyclic_graph(g) and nx.number_of_selfloops(g) == 0
    adj = ds.scm.batch.adj[0].numpy()
    assert {(ds.scm.columns[j], ds.scm.columns[i]) for j, i in zip(*np.nonzero(adj))} == set(g.edges)


def test_columns_are_in_a_random_topological_order():
    """Users must not be able to read the causal order off the column order."""
    backward = forward = 0
    for seed in range(6):
        graph = _dataset("linear", d=10, n=20, seed=seed, graph="er").scm.graph
        for cause, effect in graph.edges:
            backward += int(cause[1:]) > int(effect[1:])
            forward += int(cause[1:]) < int(effect[1:])
    assert backward > 0 and forward > 0


def test_unknown_graph_model_is_refused():
    with pytest.raises(ValueError, match="unknown graph model"):
        sample_dag("lattice", 5, 1.0, np.random.default_rng(0))


@pytest.mark.parametrize("epn", [1.0, 2.0, 3.0])
def test_erdos_renyi_edge_count_matches_edges_per_node(epn):
    d, draws = 40, 200
    rng = np.random.default_rng(int(epn * 10))
    mean_edges = np.mean([sample_dag("er", d, epn, rng).sum() for _ in range(draws)])
    # E[edges] = edges_per_node * d; the std of the mean is < 1% of it here, the tolerance is 10%
    assert mean_edges == pytest.approx(epn * d, rel=0.10)


@pytest.mark.parametrize("kind", ["sf-in", "sf-out", "sbm", "ws"])
def test_other_graph_models_edge_count_roughly(kind):
    d, epn = 40, 2.0
    rng = np.random.default_rng(3)
    mean_edges = np.mean([sample_dag(kind, d, epn, rng).sum() for _ in range(60)])
    assert mean_edges == pytest.approx(epn * d, rel=0.20)


def test_scale_free_hubs_point_the_right_way():
    rng = np.random.default_rng(4)
    epn = 2.0
    for _ in range(10):
        out_hubs = sample_dag("sf-out", 50, epn, rng)
        in_hubs = sample_dag("sf-in", 50, epn, rng)
        # sf-out: every node picks at most ceil(epn) parents; its hubs have many children (and vice versa)
        assert out_hubs.sum(axis=0).max() <= math.ceil(epn) < out_hubs.sum(axis=1).max()
        assert in_hubs.sum(axis=1).max() <= math.ceil(epn) < in_hubs.sum(axis=0).max()


# ---- mechanisms and noise: x = f(x) + n ------------------------------------------------------------------
@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("mechanism", MECHS)
def test_data_is_mechanism_plus_noise(mechanism, noise):
    ds = _dataset(mechanism, noise, d=6, n=40, seed=2)
    assert ds.mechanism == mechanism and ds.scm.batch.scms.noise_families == [noise]
    f = ds.scm.mechanism(ds.data)
    np.testing.assert_allclose((f + ds.noise).to_numpy(), ds.data.to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds.scm.noise(ds.data).to_numpy(), ds.noise.to_numpy(), rtol=0, atol=1e-9)
    assert (ds.noise.std() > 1e-3).all(), "every node carries noise"
    # pushing the true noise through the SCM reproduces the data
    np.testing.assert_allclose(ds.scm.sample(noise=ds.noise).to_numpy(), ds.data.to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("mechanism", MECHS)
def test_mechanism_depends_on_parents_only(mechanism):
    ds = _dataset(mechanism, d=7, n=30, seed=5, graph="er")
    scm, data = ds.scm, ds.data
    base = scm.mechanism(data)
    parents = {c: set(scm.graph.predecessors(c)) for c in scm.columns}
    assert sum(map(len, parents.values())) > 0
    rng = np.random.default_rng(0)
    for j in scm.columns:
        moved = data.copy()
        moved[j] = moved[j] + 1.5 + rng.normal(size=len(moved))
        change = (scm.mechanism(moved) - base).abs().max()
        for i in scm.columns:
            if j in parents[i]:
                assert change[i] > 1e-8, f"f_{i} ignores its parent {j}"
            else:
                assert change[i] <= 1e-12, f"f_{i} depends on non-parent {j}"


def test_rff_mechanism_follows_the_brief_formula():
    adj = torch.tensor([[[False, True], [False, False]]])  # 0 -> 1
    gen = torch.Generator().manual_seed(0)
    p = MECHANISM_FAMILIES["rff"].draw(adj, PRESETS["paper-in"], gen)
    x = torch.randn((1, 25, 2), generator=gen, dtype=torch.float64) * 5
    got = MECHANISM_FAMILIES["rff"].node(p, x, 1)[0].numpy()
    omega = p["omega"][0, 1, :, 0].numpy()  # (F,)
    phase, w = p["phase"][0, 1].numpy(), p["weight"][0, 1].numpy()
    c, bias = float(p["amplitude"][0, 1]), float(p["bias"][0, 1])
    want = np.sqrt(2) * c * np.cos(np.outer(x[0, :, 0].numpy(), omega) + phase) @ w / np.sqrt(100) + bias
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert p["phase"].shape[-1] == 100 and 10 <= c <= 20 and -3 <= bias <= 3
    assert (p["omega"][0, 1, :, 1] == 0).all(), "a node has no feature weight on a non-parent"


def _kurtosis(z: np.ndarray) -> np.ndarray:
    c = z - z.mean(axis=1, keepdims=True)
    return (c**4).mean(axis=1) / (c**2).mean(axis=1) ** 2


@pytest.mark.parametrize("family", NOISES)
def test_noise_families_are_standardised(family):
    B, n = 20, 20_000
    z = standard_noise([family] * B, (B, n, 1), torch.Generator().manual_seed(1)).numpy()[..., 0]
    assert abs(z.mean()) < 0.01
    assert np.abs(z.mean(axis=1)).max() < 0.05
    kurt = _kurtosis(z)
    if family == "student-t":  # nu down to 3: the sample variance converges slowly
        assert z.var() == pytest.approx(1.0, abs=0.05)
        assert np.median(z.var(axis=1)) == pytest.approx(1.0, abs=0.05)
        assert np.median(kurt) > 3.5
        return
    assert z.var() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(z.var(axis=1), 1.0, atol=0.06)  # each dataset, not just on average
    expected_kurtosis = {"gaussian": (2.8, 3.2), "laplace": (5.0, 7.2), "uniform": (1.75, 1.85), "mixture": (1.0, 2.0)}
    lo, hi = expected_kurtosis[family]
    assert ((lo < kurt) & (kurt < hi)).all(), (family, kurt.min(), kurt.max())
    if family == "uniform":
        assert np.abs(z).max() <= math.sqrt(3.0)


def test_noise_rejects_unknown_family_and_wrong_count():
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="unknown noise family"):
        standard_noise(["cauchy"], (1, 5, 2), gen)
    with pytest.raises(ValueError, match="one noise family per dataset"):
        standard_noise(["gaussian"], (2, 5, 2), gen)


# ---- heteroscedastic noise --------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["linear", "rff"])
def test_heteroscedastic_variant_runs_and_is_flagged(mechanism):
    prior = PRESETS["paper-in"].override(heteroscedastic=True)
    ds = _dataset(mechanism, "gaussian", prior=prior, d=6, n=50, seed=3)
    assert ds.scm.heteroscedastic and ds.scm.batch.scms.heteroscedastic is not None
    assert not _dataset(mechanism, prior=PRESETS["paper-in"], d=6, n=50, seed=3).scm.heteroscedastic
    np.testing.assert_allclose((ds.scm.mechanism(ds.data) + ds.noise).to_numpy(), ds.data.to_numpy(), atol=1e-9)
    # noise / (eps * noise scale) is the heteroscedastic multiplier: it varies with the parents, within exp(+-0.5)
    scms = ds.scm.batch.scms
    eps = torch.randn((1, 50, scms.d), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, noise, _ = run_scms(scms, eps)
    ratio = (noise / eps / scms.noise_scale[:, None])[0].numpy()
    has_parents = scms.adj[0].any(dim=0).numpy()
    assert has_parents.any()
    assert (ratio[:, has_parents].std(axis=0) > 1e-6).all()
    np.testing.assert_allclose(ratio[:, ~has_parents], np.broadcast_to(ratio[:1, ~has_parents], (50, (~has_parents).sum())),
                               rtol=1e-12)
    assert (ratio >= math.exp(-0.5) - 1e-12).all() and (ratio <= math.exp(0.5) + 1e-12).all()


def test_homoscedastic_noise_scale_is_constant():
    ds = _dataset("rff", prior=PRESETS["paper-in"], d=6, n=50, seed=3)
    scms = ds.scm.batch.scms
    eps = torch.randn((1, 50, scms.d), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, noise, _ = run_scms(scms, eps)
    np.testing.assert_allclose((noise / eps)[0].numpy(), np.broadcast_to(scms.noise_scale[0].numpy(), (50, scms.d)))


# ---- interventions and counterfactuals ---------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", MECHS)
def test_hard_intervention_changes_only_descendants(mechanism):
    ds, node, desc, other = _dataset_with_split(mechanism)
    scm = ds.scm
    did = scm.do({node: 2.0})
    assert scm.interventions == {} and did.interventions == {node: 2.0}
    assert did.graph.in_degree(node) == 0 and scm.graph.in_degree(node) > 0
    for observed, intervened in (
        (scm.sample(noise=ds.noise), did.sample(noise=ds.noise)),  # fixed-point solver, given noise
        (scm.sample(60, seed=11), did.sample(60, seed=11)),  # the SCM's own generative process, same seed
    ):
        np.testing.assert_allclose(intervened[node], 2.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(intervened[other].to_numpy(), observed[other].to_numpy(), rtol=0, atol=1e-9)
        assert (intervened[desc] - observed[desc]).abs().to_numpy().max() > 1e-6


@pytest.mark.parametrize("mechanism", ["linear", "rff"])
def test_shift_intervention_changes_only_descendants(mechanism):
    ds, node, desc, other = _dataset_with_split(mechanism)
    scm = ds.scm
    shifted = scm.do({node: lambda v: v + 1.0})
    for observed, intervened in (
        (scm.sample(noise=ds.noise), shifted.sample(noise=ds.noise)),
        (scm.sample(60, seed=12), shifted.sample(60, seed=12)),
    ):
        np.testing.assert_allclose(intervened[node], observed[node] + 1.0, rtol=0, atol=1e-9)
        np.testing.assert_allclose(intervened[other].to_numpy(), observed[other].to_numpy(), rtol=0, atol=1e-9)
        assert (intervened[desc] - observed[desc]).abs().to_numpy().max() > 1e-6
    assert shifted.graph.in_degree(node) == scm.graph.in_degree(node), "a shift keeps the incoming edges"


@pytest.mark.parametrize("heteroscedastic", [False, True])
@pytest.mark.parametrize("mechanism", MECHS)
def test_counterfactual_from_true_noise_is_resimulation(mechanism, heteroscedastic):
    prior = BROAD.override(heteroscedastic=heteroscedastic or None)
    ds, node, desc, other = _dataset_with_split(mechanism, prior=prior)
    scm, batch = ds.scm, ds.scm.batch
    cf = scm.counterfactual(ds.data, {node: 2.0})
    replay = scm.do({node: 2.0}).sample(noise=ds.noise)
    np.testing.assert_allclose(cf.to_numpy(), replay.to_numpy(), rtol=0, atol=1e-9)
    # the engine itself, in raw canonical units, fed the same additive noise
    k = scm.columns.index(node)
    inverse = torch.argsort(batch.perm, dim=1)
    raw_noise = permute_nodes(torch.tensor(ds.noise.to_numpy())[None] * batch.std[:, None], inverse)
    raw_value = float(batch.mean[0, k] + 2.0 * batch.std[0, k])
    x, _, _ = run_scms(batch.scms, raw_noise, additive_noise=raw_noise,
                       interventions={int(batch.perm[0, k]): raw_value})
    engine = ((permute_nodes(x, batch.perm) - batch.mean[:, None]) / batch.std[:, None])[0].numpy()
    np.testing.assert_allclose(cf.to_numpy(), engine, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cf[other].to_numpy(), ds.data[other].to_numpy(), rtol=0, atol=1e-9)
    assert (cf[desc] - ds.data[desc]).abs().to_numpy().max() > 1e-6
    # an identity shift is no intervention: the counterfactual is the factual data
    same = scm.counterfactual(ds.data, {node: lambda v: v})
    np.testing.assert_allclose(same.to_numpy(), ds.data.to_numpy(), rtol=0, atol=1e-9)


# ---- seeds, standardisation, degenerate draws -------------------------------------------------------------
def test_seeds_reproduce():
    a = _dataset("rff", "student-t", seed=4, index=0)
    b = _dataset("rff", "student-t", seed=4, index=0)
    pd.testing.assert_frame_equal(a.data, b.data, check_exact=True)
    pd.testing.assert_frame_equal(a.noise, b.noise, check_exact=True)
    assert set(a.scm.graph.edges) == set(b.scm.graph.edges)
    c = _dataset("rff", "student-t", seed=4, index=1)
    e = _dataset("rff", "student-t", seed=5, index=0)
    assert not np.allclose(a.data.to_numpy(), c.data.to_numpy())
    assert not np.allclose(a.data.to_numpy(), e.data.to_numpy())
    # drawn mechanism (no mechanism given) is part of the stream too
    assert simulate(BROAD, nodes=5, samples=20, seed=9).mechanism == simulate(BROAD, nodes=5, samples=20,
                                                                              seed=9).mechanism


def test_streams_are_independent_per_key():
    r1, g1 = streams(1, 2)
    r2, g2 = streams(1, 2)
    r3, g3 = streams(1, 3)
    assert r1.integers(2**62) == r2.integers(2**62) != r3.integers(2**62)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))
    assert not torch.equal(torch.rand(5, generator=g2), torch.rand(5, generator=g3))


@pytest.mark.parametrize("mechanism", MECHS)
def test_standardisation_keeps_x_equal_f_plus_noise(mechanism):
    rng, gen = streams(0, 7)
    batch = simulate_batch(BROAD, 3, 7, 60, mechanism=mechanism, rng=rng, gen=gen)
    np.testing.assert_allclose(batch.x.mean(dim=1).numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(batch.x.std(dim=1).numpy(), 1.0, atol=1e-9)
    np.testing.assert_allclose((batch.f + batch.noise).numpy(), batch.x.numpy(), rtol=0, atol=1e-9)
    # undoing the standardisation and the column permutation gives back the raw run of the engine
    inverse = torch.argsort(batch.perm, dim=1)
    raw_x = permute_nodes(batch.x * batch.std[:, None] + batch.mean[:, None], inverse)
    raw_noise = permute_nodes(batch.noise * batch.std[:, None], inverse)
    x, _, f = run_scms(batch.scms, raw_noise, additive_noise=raw_noise)
    np.testing.assert_allclose(x.numpy(), raw_x.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(f.numpy(), (raw_x - raw_noise).numpy(), rtol=1e-9, atol=1e-9)
    # the permuted adjacency is the canonical one relabelled
    for b in range(3):
        p = batch.perm[b]
        assert torch.equal(batch.adj[b], batch.scms.adj[b][p][:, p])


def _noise_fractions(seed: int):
    ds = simulate(PRESETS["paper-in"], nodes=20, samples=400, seed=seed, mechanism="linear")
    return ds, (ds.noise.std() / ds.data.std()).to_numpy()


def test_degenerate_guard_bounds_the_noise_fraction_approximately():
    m = PRESETS["paper-in"].min_noise_fraction
    rescaled = []
    for seed in range(8):
        ds, frac = _noise_fractions(seed)
        assert 0.0 <= ds.rescaled_fraction <= 1.0
        gains = ds.scm.batch.scms.gain
        assert ds.rescaled_fraction == pytest.approx(float((gains != 1).double().mean()))
        assert frac.min() >= 0.99 * m, (seed, frac.min())
        rescaled.append(ds.rescaled_fraction)
    assert max(rescaled) > 0, "linear paper-in at d = 20 should hit the degenerate guard on some seed"


def test_degenerate_guard_is_exact():
    m = PRESETS["paper-in"].min_noise_fraction
    for seed in range(8):
        _, frac = _noise_fractions(seed)
        assert frac.min() >= m - 1e-9, (seed, frac.min())


# ---- priors and presets -----------------------------------------------------------------------------------
def test_dense_training_preset_changes_only_the_graph_density():
    train, dense = PRESETS["train"], PRESETS["train-dense"]
    assert dense.edges_per_node == (1.0, 4.0) and train.edges_per_node == (1.0, 3.0)
    assert dense.override(edges_per_node=train.edges_per_node) == train

    def share_with_four_or_more_parents(name: str) -> float:
        batch = draw_scms(PRESETS[name], 200, 10, "linear", rng=np.random.default_rng(0),
                          gen=torch.Generator().manual_seed(0))
        parents = batch.adj.sum(1).numpy()  # adj[b, j, i] means j -> i: a column sum counts i's parents
        return float(np.mean(parents >= 4))

    assert share_with_four_or_more_parents("train-dense") > share_with_four_or_more_parents("train")


def test_presets_carry_the_briefs_ranges():
    assert {"paper-in", "paper-out", "broad"} <= set(PRESETS)
    pin, pout, broad = PRESETS["paper-in"], PRESETS["paper-out"], PRESETS["broad"]
    assert set(pin.graphs) == {"er", "sf-in", "sf-out"} and pin.edges_per_node == (1.0, 3.0)
    assert set(pin.mechanisms) == {"linear", "rff"} and pin.noises == ("gaussian",)
    assert pin.linear_weight == (1.0, 3.0) and pin.bias == (-3.0, 3.0)
    assert pin.rff_lengthscale == (7.0, 10.0) and pin.rff_amplitude == (10.0, 20.0) and pin.rff_features == 100
    assert pin.noise_scale == (0.2, 2.0) and pin.nodes == (20, 20) and not pin.heteroscedastic
    assert set(pout.graphs) == {"ws", "sbm"} and pout.noises == ("laplace",)
    assert pout.linear_weight == (0.5, 4.0)
    assert pout.rff_lengthscale == (5.0, 12.0) and pout.rff_amplitude == (8.0, 22.0)
    for field in ("graphs", "mechanisms", "noises"):
        assert set(getattr(pin, field)) | set(getattr(pout, field)) <= set(getattr(broad, field))
    for field in ("edges_per_node", "linear_weight", "rff_lengthscale", "rff_amplitude", "noise_scale"):
        lo, hi = getattr(broad, field)
        for p in (pin, pout):
            assert lo <= getattr(p, field)[0] and getattr(p, field)[1] <= hi, field
    assert get_prior("paper-in") is pin
    with pytest.raises(ValueError, match="unknown preset"):
        get_prior("paper")


@pytest.mark.parametrize("preset,weight", [("paper-in", (1.0, 3.0)), ("paper-out", (0.5, 4.0))])
def test_drawn_parameters_lie_in_the_preset_ranges(preset, weight):
    prior = PRESETS[preset]
    rng, gen = streams(0, 3)
    scms = draw_scms(prior, 40, 12, "linear", rng=rng, gen=gen)
    w = scms.params["weight"].abs()
    on_edges = w[scms.adj]
    assert (w[~scms.adj] == 0).all()
    assert on_edges.min() >= weight[0] and on_edges.max() <= weight[1]
    assert on_edges.min() < weight[0] + 0.2 and on_edges.max() > weight[1] - 0.2, "the range is used"
    bias = scms.params["bias"]
    assert bias.min() >= prior.bias[0] and bias.max() <= prior.bias[1]
    assert scms.noise_scale.min() >= prior.noise_scale[0] and scms.noise_scale.max() <= prior.noise_scale[1]
    assert set(scms.noise_families) == set(prior.noises)
    rff = draw_scms(prior, 20, 6, "rff", rng=rng, gen=gen).params["amplitude"]
    assert rff.min() >= prior.rff_amplitude[0] and rff.max() <= prior.rff_amplitude[1]


def test_prior_round_trips_and_validates():
    for prior in PRESETS.values():
        assert Prior.from_dict(json.loads(json.dumps(prior.to_dict()))) == prior
    with pytest.raises(ValueError, match="graphs"):
        Prior(graphs=("er", "lattice"))
    with pytest.raises(ValueError, match="mechanism_weights"):
        Prior(mechanisms=("linear",), mechanism_weights=(0.5, 0.5))
    assert PRESETS["paper-in"].override(heteroscedastic=None) == PRESETS["paper-in"]


# ---- files and the command line ---------------------------------------------------------------------------
def _invoke(*args: str):
    return CliRunner().invoke(app, ["simulate", *args])


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name)


def test_cli_writes_reproducible_files(tmp_path):
    args = ["--nodes", "6", "--samples", "30", "--seed", "3"]
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed_args in ((first, args), (second, args), (other, args[:-1] + ["4"])):
        result = _invoke(*seed_args, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == sorted(FILES), "exactly the 4 files, no temp leftovers"
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "data.csv").read_bytes() != (other / "data.csv").read_bytes()

    data, noise, edges = _read(first, "data.csv"), _read(first, "noise.csv"), pd.read_csv(first / "graph.csv")
    assert data.shape == (30, 6) and list(noise.columns) == list(data.columns)
    assert list(edges.columns) == ["cause", "effect"]
    meta = json.loads((first / "meta.json").read_text())
    assert meta["preset"] == "paper-in" and meta["seed"] == 3 and meta["nodes"] == 6 and meta["samples"] == 30
    assert meta["overrides"] == {"nodes": 6}
    assert meta["prior"] == json.loads(json.dumps(PRESETS["paper-in"].override(nodes=(6, 6)).to_dict()))
    assert meta["mechanism"] in PRESETS["paper-in"].mechanisms
    assert meta["graph_models"][0] in PRESETS["paper-in"].graphs and meta["noise_families"] == ["gaussian"]
    assert 0.0 <= meta["rescaled_fraction"] <= 1.0 and meta["edges"] == len(edges)

    text = (first / "meta.json").read_text()
    assert str(tmp_path) not in text and "/tmp" not in text and "\\" not in text

    def strings(v):
        if isinstance(v, dict):
            return [s for x in v.values() for s in strings(x)]
        if isinstance(v, list):
            return [s for x in v for s in strings(x)]
        return [v] if isinstance(v, str) else []

    assert not [s for s in strings(meta) if s.startswith("/") or ":\\" in s]

    # meta.json regenerates the dataset bit for bit, with its ground truth
    regen = simulate(Prior.from_dict(meta["prior"]), nodes=meta["nodes"], samples=meta["samples"],
                     seed=meta["seed"], index=meta["index"], mechanism=meta["mechanism"],
                     graphs=tuple(meta["graph_models"]), noises=tuple(meta["noise_families"]))
    assert np.array_equal(regen.data.to_numpy(), data.to_numpy())
    assert np.array_equal(regen.noise.to_numpy(), noise.to_numpy())
    assert set(regen.scm.graph.edges) == set(map(tuple, edges.to_numpy()))
    np.testing.assert_allclose((regen.scm.mechanism(data) + noise).to_numpy(), data.to_numpy(), atol=1e-9)


def test_cli_records_overrides(tmp_path):
    out = tmp_path / "o"
    result = _invoke("--preset", "paper-out", "--mechanism", "mlp", "--graph", "grg", "--noise", "uniform",
                     "--heteroscedastic", "--edges-per-node", "2.5", "--nodes", "5", "--samples", "25",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["overrides"] == {"mechanism": "mlp", "graph": "grg", "noise": "uniform", "heteroscedastic": True,
                                 "edges_per_node": 2.5, "nodes": 5}
    assert meta["mechanism"] == "mlp" and meta["graph_models"] == ["grg"] and meta["noise_families"] == ["uniform"]
    assert meta["heteroscedastic"] is True and meta["prior"]["heteroscedastic"] is True
    assert meta["prior"]["edges_per_node"] == [2.5, 2.5] and meta["prior"]["graphs"] == ["grg"]
    # fields no flag touched keep the preset's values
    assert meta["prior"]["linear_weight"] == list(PRESETS["paper-out"].linear_weight)
    assert meta["prior"]["rff_lengthscale"] == list(PRESETS["paper-out"].rff_lengthscale)


def test_cli_defaults_come_from_the_preset(tmp_path):
    out = tmp_path / "p"
    result = _invoke("--preset", "paper-out", "--samples", "20", "--seed", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["overrides"] == {}
    assert meta["prior"] == json.loads(json.dumps(PRESETS["paper-out"].to_dict()))
    assert meta["graph_models"][0] in PRESETS["paper-out"].graphs and meta["noise_families"] == ["laplace"]
    assert meta["nodes"] == PRESETS["paper-out"].nodes[0]


@pytest.mark.parametrize("args,culprit", [
    (["--preset", "paper"], "--preset"),
    (["--mechanism", "gp"], "--mechanism"),
    (["--graph", "lattice"], "--graph"),
    (["--noise", "cauchy"], "--noise"),
    (["--edges-per-node", "-1"], "--edges-per-node"),
    (["--nodes", "1"], "--nodes"),
    (["--samples", "1"], "--samples"),
])
def test_cli_bad_choices_give_one_line_errors(tmp_path, args, culprit):
    out = tmp_path / "bad"
    flags = {"--nodes": "4", "--samples": "20", "--out": str(out), **dict(zip(args[::2], args[1::2]))}
    result = _invoke(*[token for pair in flags.items() for token in pair])
    assert result.exit_code not in (0, None)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and culprit in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_write_dataset_refuses_paths_and_overwrites_atomically(tmp_path):
    ds = _dataset("linear", d=4, n=10, seed=0)
    with pytest.raises(ValueError, match="machine path"):
        write_dataset(ds, tmp_path / "x", {"source": str(tmp_path)})
    write_dataset(ds, tmp_path / "y", {"note": "first"})
    other = _dataset("linear", d=4, n=10, seed=1)
    write_dataset(other, tmp_path / "y", {"note": "second"})
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == sorted(FILES)
    assert json.loads((tmp_path / "y" / "meta.json").read_text())["note"] == "second"
    assert np.array_equal(_read(tmp_path / "y", "data.csv").to_numpy(), other.data.to_numpy())
    assert (tmp_path / "y" / "data.csv").read_text().splitlines()[0] == "X0,X1,X2,X3"
