"""condfip + least squares (``model.infer(data, graph, least_squares=True)``): corrections fitted on the parents
only, exact round trips, interventions through the corrected mechanisms."""

from __future__ import annotations

import numpy as np
import pytest

from condfip.errors import InputError
from condfip.refined import LeastSquaresRefinedSCM
from test_inference import chain_data, random_model


@pytest.mark.parametrize("abduction", ["decoder", "encoder"])
def test_context_residuals_are_orthogonal_to_intercept_and_parents(abduction):
    """The least-squares normal equations: on the context, each node's refined residual sums to zero and is
    orthogonal to each of its parents (the base network alone is far from that). The decoder's correction is
    fitted on T(context); the encoder head's on the head's answer from infer's own pass over the context."""
    data, graph = chain_data()
    base = random_model().infer(data, graph, abduction=abduction)
    scm = random_model().infer(data, graph, least_squares=True, abduction=abduction)
    assert isinstance(scm, LeastSquaresRefinedSCM)
    x = data.to_numpy()
    residuals = [scm.context_noise]
    if abduction == "decoder":
        residuals.append(scm.noise(data).to_numpy())
    else:
        residuals.append(x - (scm.base.context_encoder_mechanism + scm.encoder_intercept + x @ scm.encoder_coef))
    for noise in residuals:
        for i, node in enumerate(scm.columns):
            design = np.column_stack([np.ones(len(x))] + [x[:, scm.columns.index(p)] for p in graph.predecessors(node)])
            np.testing.assert_allclose(design.T @ noise[:, i], 0, atol=1e-6 * len(x) * np.abs(x).max())
    base_noise = base.noise(data).to_numpy()
    assert np.abs(base_noise.mean(axis=0)).max() > 1e-3


def test_corrections_use_parents_only():
    data, graph = chain_data()
    scm = random_model().infer(data, graph, least_squares=True)
    adj = np.array([[graph.has_edge(a, b) for b in scm.columns] for a in scm.columns])
    assert np.all(scm.coef[~adj] == 0)
    assert np.all(scm.coef[adj] != 0)
    assert scm.encoder_coef is None  # the base abducts with the decoder: no encoder-head fit


def test_encoder_head_context_answer_comes_from_the_infer_pass():
    """``context_encoder_mechanism`` is the head's f(x) for the context rows from the encoder run on the context
    alone (the pass that makes the dataset code), in the user's units."""
    data, graph = chain_data()
    model = random_model()
    scm = model.infer(data, graph, abduction="encoder")
    _, f_hat = model.network.encoder(scm._standardised(data.to_numpy()), scm.adj)
    np.testing.assert_allclose(scm.context_encoder_mechanism, scm.mean + scm.std * f_hat[0].detach().double().numpy(),
                               rtol=1e-6, atol=1e-6)


def test_refined_mechanism_is_least_squares_plus_what_the_network_adds_beyond_a_line():
    """For a node with one parent: refined f = LS line of the data + (network f - LS line of the network f)."""
    data, graph = chain_data(n=200)
    data["c"] = 0.5 * data["b"] + 0.1 * np.random.default_rng(1).standard_normal(len(data))
    scm = random_model().infer(data, graph, least_squares=True)
    x = data.to_numpy()
    b, c = x[:, 1], x[:, 2]
    slope, offset = np.polyfit(b, c, 1)
    base = scm.base.mechanism_array(x)[:, 2]
    refined = scm.mechanism(data).to_numpy()[:, 2]
    slope_base, offset_base = np.polyfit(b, base, 1)
    np.testing.assert_allclose(refined - (slope * b + offset), base - (slope_base * b + offset_base), atol=1e-8)


def test_sample_of_abducted_noise_returns_the_data_and_interventions_hold():
    data, graph = chain_data()
    scm = random_model().infer(data, graph, least_squares=True)
    back = scm.sample(noise=scm.noise(data))
    assert list(back.index) == list(data.index)
    np.testing.assert_allclose(back.to_numpy(), data.to_numpy(), rtol=0, atol=1e-9)
    cf = scm.counterfactual(data, {"b": 3.0})
    assert np.all(cf["b"] == 3.0)
    np.testing.assert_array_equal(cf[["a", "e"]].to_numpy(), data[["a", "e"]].to_numpy())
    assert not np.allclose(cf["c"], data["c"])
    drawn = scm.do({"b": 3.0}).sample(50, seed=0)
    assert np.all(drawn["b"] == 3.0)
    np.testing.assert_array_equal(drawn.to_numpy(), scm.do({"b": 3.0}).sample(50, seed=0).to_numpy())


def test_refining_an_intervened_scm_is_refused():
    data, graph = chain_data()
    with pytest.raises(InputError, match="then call .do"):
        LeastSquaresRefinedSCM(random_model().infer(data, graph).do({"b": 1.0}))


def test_encoder_head_on_the_context_alone_equals_the_head_on_the_context_appended_to_itself():
    """Duplicating every context row leaves the attention averages over samples unchanged, so the hybrid may fit
    its encoder-head correction on infer's own pass (no second pass over 2n rows)."""
    data, graph = chain_data()
    scm = random_model().infer(data, graph, abduction="encoder")
    np.testing.assert_allclose(scm.context_encoder_mechanism, scm.encoder_mechanism_array(data.to_numpy()),
                               rtol=1e-5, atol=1e-5)
