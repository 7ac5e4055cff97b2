"""Kernel mechanisms (``condfip.kernel_mechanisms``, ``infer(..., mechanisms="kernel")``): the closed-form
leave-one-out choice, the parents-only regressions, lines that continue beyond the context, exact round trips,
saved SCMs and the effect bootstrap's refits."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import condfip
from condfip.errors import InputError
from condfip.kernel_mechanisms import KernelMechanisms, NodeFit, _linear_loo, _smooth_loo, select, solve
from test_inference import chain_data, random_model


def fitted(a, y, lengthscale, ridge, weights=None, beyond="line") -> NodeFit:
    trend, alpha = solve(a, y, lengthscale, ridge, weights)
    return NodeFit(np.arange(a.shape[1]), lengthscale, ridge, a, trend, alpha, 0.0, beyond, a.min(0), a.max(0))


@pytest.mark.parametrize("lengthscale", [None, 0.7, 2.0, np.array([0.7, 3.0])])
def test_closed_form_leave_one_out_equals_refitting_without_each_row(lengthscale):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 2))
    y = np.sin(a[:, 0]) + a[:, 1] + 0.1 * rng.standard_normal(30)
    candidates = _linear_loo(a, y) if lengthscale is None else _smooth_loo(a, y, lengthscale)
    for ridge, closed_form in candidates:
        refitted = [y[j] - fitted(np.delete(a, j, 0), np.delete(y, j), lengthscale, ridge).predict(a[j:j + 1])[0]
                    for j in range(len(a))]
        np.testing.assert_allclose(closed_form, refitted, rtol=1e-6, atol=1e-9)


def test_a_curve_must_beat_the_line_by_more_than_the_noise():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((200, 1))
    line = -0.97 * a[:, 0] + 0.2 * rng.standard_normal(200)
    assert select(a, line)[0] is None  # a linear mechanism keeps its line, whatever tiny LOO gain a curve has
    curve = np.sin(2 * a[:, 0]) + 0.2 * rng.standard_normal(200)
    assert select(a, curve)[0] is not None


def test_a_curve_gets_a_shorter_length_scale_on_the_parent_that_moves_it():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 3))
    y = np.sin(2.5 * a[:, 0]) + 0.3 * a[:, 1] + 0.1 * rng.standard_normal(300)  # a[:, 2] plays no part
    lengthscale, ridge, loo_rmse, _ = select(a, y)
    assert np.ndim(lengthscale) == 1 and lengthscale[0] < lengthscale[1] and lengthscale[0] < lengthscale[2]
    one = min(float(np.mean(r * r)) for scale in (0.5, 1.0, 2.0)
              for _, r in _smooth_loo(a, y, scale * np.sqrt(3)))  # the best single length-scale
    assert loo_rmse**2 < 0.8 * one
    truth = np.sin(2.5 * a[:, 0]) + 0.3 * a[:, 1]
    fit = fitted(a, y, lengthscale, ridge)
    assert np.sqrt(np.mean((fit.predict(a) - truth) ** 2)) < 0.06


def test_a_linear_mechanism_gets_a_line_that_continues_beyond_the_context():
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal(300)
    x1 = 0.8 * x0 + 0.6 * rng.standard_normal(300)
    x = np.column_stack([x0, x1, 0.5 * x0 - 0.7 * x1 + 0.05 * rng.standard_normal(300)])
    adj = np.zeros((3, 3), dtype=bool)
    adj[0, 1] = adj[0, 2] = adj[1, 2] = True
    mech = KernelMechanisms(x, adj)
    far = np.array([[6.0, -6.0, 0.0], [-8.0, 8.0, 0.0]])  # 6-8 SDs beyond anything in the context
    np.testing.assert_allclose(mech.predict(far, np.array([2]))[:, 0], 0.5 * far[:, 0] - 0.7 * far[:, 1], atol=0.1)
    assert mech.fits[2].lengthscale is None or mech.fits[2].loo_rmse < 0.06


def test_a_nonlinear_mechanism_is_fitted_better_than_by_a_line():
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-2, 2, 400)
    x = np.column_stack([x0, 2 * np.tanh(2 * x0) + 0.1 * rng.standard_normal(400)])
    adj = np.array([[False, True], [False, False]])
    mech = KernelMechanisms(x, adj)
    grid = np.column_stack([np.linspace(-1.8, 1.8, 50), np.zeros(50)])
    error = mech.predict(grid, np.array([1]))[:, 0] - 2 * np.tanh(2 * grid[:, 0])
    assert mech.fits[1].lengthscale is not None and np.sqrt(np.mean(error**2)) < 0.1


def test_a_bounded_curve_stays_flat_beyond_the_context_and_a_trending_one_continues():
    rng = np.random.default_rng(7)
    x0 = rng.uniform(-2, 2, 400)
    far = np.array([[5.0], [10.0], [-20.0]])  # 3-18 context SDs beyond the range
    saturating = 2 * np.tanh(2 * x0) + 0.05 * rng.standard_normal(400)
    fit = KernelMechanisms(np.column_stack([x0, saturating]), np.array([[False, True], [False, False]])).fits[1]
    assert fit.lengthscale is not None and fit.beyond == "flat"
    np.testing.assert_allclose(fit.predict(far), 2 * np.tanh(2 * far[:, 0]), atol=0.15)
    trending = 1.5 * x0 + np.sin(3 * x0) + 0.05 * rng.standard_normal(400)
    fit = KernelMechanisms(np.column_stack([x0, trending]), np.array([[False, True], [False, False]])).fits[1]
    assert fit.lengthscale is not None and fit.beyond != "flat"
    edge = fit.predict(np.array([[fit.low[0]], [fit.high[0]]]))  # it keeps rising (falling) beyond the range
    assert fit.predict(far[1:2])[0] - edge[1] > 0.5 * 1.5 * (10.0 - fit.high[0])
    assert edge[0] - fit.predict(far[2:])[0] > 0.5 * 1.5 * (fit.low[0] + 20.0)


def test_a_refit_answers_within_its_own_rows_range():
    rng = np.random.default_rng(8)
    a = rng.uniform(-2, 2, (50, 1))
    fit = fitted(a, np.tanh(2 * a[:, 0]), 0.5, 1e-3, beyond="flat")
    weights = (a[:, 0] < 0.5).astype(float)  # rows of weight 0 are left out, so their range too
    refit = fit.refit(a, np.tanh(2 * a[:, 0]), weights)
    assert refit.high[0] == a[weights > 0, 0].max() and refit.low[0] == a[:, 0].min()
    assert refit.predict(np.array([[3.0]]))[0] == pytest.approx(refit.predict(refit.high[None])[0])


def test_weighted_rows_equal_repeated_rows():
    rng = np.random.default_rng(3)
    a, y = rng.standard_normal((12, 2)), rng.standard_normal(12)
    counts = rng.integers(1, 4, 12)
    repeated = np.repeat(np.arange(12), counts)
    z = rng.standard_normal((5, 2))
    for lengthscale in (None, 1.0):
        weighted = fitted(a, y, lengthscale, 0.1, counts.astype(float))
        plain = fitted(a[repeated], y[repeated], lengthscale, 0.1)
        np.testing.assert_allclose(weighted.predict(z), plain.predict(z), atol=1e-8)


def test_kernel_scm_reads_parents_only_round_trips_and_fits_once():
    data, graph = chain_data()
    scm = random_model().infer(data, graph, mechanisms="kernel", abduction="decoder")
    x = data.to_numpy()
    np.testing.assert_allclose(scm.sample(noise=scm.noise(data)).to_numpy(), x, rtol=1e-9, atol=1e-9)
    moved = x.copy()
    moved[:, scm.columns.index("c")] += 5.0  # c is a parent of p44/42 only: no other mechanism may move
    before, after = scm.mechanism_array(x), scm.mechanism_array(moved)
    changed = np.abs(after - before).max(axis=0) > 1e-12
    assert [scm.columns[i] for i in np.flatnonzero(changed)] == ["p44/42"]
    fit = scm.kernel
    assert scm.do({"a": 12.0}).kernel is fit  # interventions reuse the fitted regressions
    root = scm.columns.index("e")
    np.testing.assert_allclose(scm.mechanism_array(x)[:, root], x[:, root].mean())


def test_kernel_and_network_mechanisms_differ_and_unknown_ones_are_refused():
    data, graph = chain_data()
    model = random_model()
    kernel_scm, network_scm = (model.infer(data, graph, mechanisms=m) for m in ("kernel", "network"))
    assert not np.allclose(kernel_scm.sample(20, seed=0).to_numpy(), network_scm.sample(20, seed=0).to_numpy())
    with pytest.raises(InputError, match="mechanisms must be one of"):
        model.infer(data, graph, mechanisms="gp")


def test_a_saved_kernel_scm_loads_with_its_mechanisms_and_answers_the_same(tmp_path):
    from tiny_weights import make_weights

    weights = make_weights(tmp_path / "weights")
    data, graph = chain_data()
    scm = condfip.load_pretrained(weights).infer(data, graph, mechanisms="kernel")
    loaded = condfip.load_scm(scm.save(tmp_path / "scm.safetensors"), weights=weights)
    assert loaded.mechanisms == "kernel"
    assert loaded.do({"b": 30.0}).sample(50, seed=4).equals(scm.do({"b": 30.0}).sample(50, seed=4))


def test_effect_replicates_refit_the_kernel_regressions_on_their_rows():
    from condfip.effects import _Replicates

    data, graph = chain_data()
    scm = random_model().infer(data, graph, mechanisms="kernel")
    rows = np.random.default_rng(5).integers(0, len(data), (3, len(data)))
    batch = _Replicates(scm, rows)
    x = data.to_numpy()
    node = scm.columns.index("c")
    for b in range(3):
        resampled = x[rows[b]]
        mean, std = resampled.mean(axis=0), resampled.std(axis=0, ddof=1)
        z = (resampled - mean) / std
        fit = scm.kernel.fits[node]
        refit = fitted(z[:, fit.parents], z[:, node], fit.lengthscale, fit.ridge, beyond=fit.beyond)  # repeated rows
        query = x[:7]
        want = mean[node] + std[node] * refit.predict(((query - mean) / std)[:, fit.parents])
        got = batch.mechanism(np.repeat(query[None], 3, axis=0), np.array([node]))[b, :, 0]
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


def test_kernel_effect_is_uncalibrated_and_says_so():
    data, graph = chain_data()
    effect = random_model().infer(data, graph, mechanisms="kernel").effect("c", {"a": 12.0}, {"a": 8.0},
                                                                            bootstrap=20)
    assert not effect.calibrated and effect.model_error == 0.0 and "only" in effect.covers
    assert effect.low <= effect.estimate <= effect.high


def test_auto_abduction_takes_certain_lines_from_the_kernel_and_the_rest_from_the_encoder_head(monkeypatch):
    from condfip.inference import ZeroShotModel

    data, graph = chain_data(n=200)
    model = random_model()
    model = ZeroShotModel(model.network, {**model.card, "default_abduction": "encoder"})
    scm = model.infer(data, graph)
    assert scm.abduction == "auto"
    certain = scm.kernel.certain(len(scm.columns), rival_rmse=scm.context_encoder_rmse)
    names = [c for c, sure in zip(scm.columns, certain) if sure]
    assert {"a", "b", "e"} <= set(names) and "c" not in names  # roots, a clear line; not the sine
    noise, x = scm.noise(data), data.to_numpy()
    encoder = model.infer(data, graph, abduction="encoder").noise(data)
    decoder = model.infer(data, graph, abduction="decoder").noise(data)
    for column in scm.columns:
        want = decoder if column in names else encoder
        np.testing.assert_allclose(noise[column], want[column], rtol=1e-9, atol=1e-9)
    exact = [c for c in names if nx.ancestors(graph, c) <= set(names)]  # certain nodes of certain ancestors
    back = scm.sample(noise=noise)[exact].to_numpy()  # round-trip exactly
    np.testing.assert_allclose(back, x[:, [scm.columns.index(c) for c in exact]], atol=1e-9)

    rng = np.random.default_rng(1)  # all certain (a root and a clear line): the network never runs for noise
    a = rng.standard_normal(300)
    linear = pd.DataFrame({"a": a, "b": 2 * a + 0.3 * rng.standard_normal(300)})
    scm = model.infer(linear, nx.DiGraph([("a", "b")]))
    monkeypatch.setattr(type(scm), "encoder_mechanism_array", lambda self, x, nodes=None: pytest.fail("encoder ran"))
    np.testing.assert_allclose(scm.noise(linear).to_numpy(), linear.to_numpy() - scm.mechanism_array(
        linear.to_numpy()), atol=1e-12)


def test_a_line_far_worse_than_its_rival_on_the_context_is_not_certain():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 1))
    y = 2 * a[:, 0] + 0.05 * rng.standard_normal(300)
    mech = KernelMechanisms(np.c_[a, y], np.array([[False, True], [False, False]]))
    loo = mech.fits[1].loo_rmse
    assert mech.fits[1].lengthscale is None and mech.certain(2).all()
    assert mech.certain(2, rival_rmse=np.array([1.0, loo / 3.9])).all()  # within RIVAL_FACTOR: still the line
    assert mech.certain(2, rival_rmse=np.array([1.0, loo / 4.1])).tolist() == [True, False]  # the root stays


def test_fitting_nodes_side_by_side_gives_the_same_regressions():
    rng = np.random.default_rng(11)
    x0 = rng.standard_normal(120)
    x1 = np.tanh(x0) + 0.3 * rng.standard_normal(120)
    x2 = 0.5 * x0 - x1 + 0.2 * rng.standard_normal(120)
    x3 = np.sin(x2) + 0.2 * rng.standard_normal(120)
    x = np.column_stack([x0, x1, x2, x3])
    adj = np.zeros((4, 4), dtype=bool)
    adj[0, 1] = adj[0, 2] = adj[1, 2] = adj[2, 3] = True
    one, two = KernelMechanisms(x, adj, workers=1), KernelMechanisms(x, adj, workers=3)
    assert sorted(two.fits) == [1, 2, 3]
    for i, fit in one.fits.items():
        other = two.fits[i]
        assert (fit.ridge, fit.beyond, fit.loo_rmse) == (other.ridge, other.beyond, other.loo_rmse)
        assert (fit.lengthscale is None) == (other.lengthscale is None)
        if fit.lengthscale is not None:
            np.testing.assert_array_equal(fit.lengthscale, other.lengthscale)
        np.testing.assert_array_equal(fit.trend, other.trend)
        assert (fit.alpha is None) == (other.alpha is None)
        if fit.alpha is not None:
            np.testing.assert_array_equal(fit.alpha, other.alpha)
