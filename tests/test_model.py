"""Tests for condfip.model: the DAG attention, the parents-only dependence of encoder and decoder,
node-permutation equivariance, odd shapes and deterministic initialisation. Tiny widths throughout."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from condfip.model import (
    CondFiP,
    ModelConfig,
    appended_rows_mask,
    dag_attention,
)

TINY = ModelConfig(width=16, heads=2, encoder_layers=1, code_layers=1, decoder_layers=1, mlp_ratio=2)
# two layers each: a parents-only mask per layer would still let grandparents leak if done wrong
DEEP = ModelConfig(width=16, heads=2, encoder_layers=2, code_layers=1, decoder_layers=2, mlp_ratio=2)
PAIRS = ModelConfig(width=16, heads=2, pair_features=4, encoder_layers=2, code_layers=1, decoder_layers=2)
# the regression-free pair options: signed parent weights in node attention and in the decoder
PAIR_VALUES = ModelConfig(width=16, heads=2, pair_features=4, pair_values=True, decoder_pair_weights=True,
                          encoder_layers=2, code_layers=1, decoder_layers=2)
# the decoder that also attends across the context rows of each node
CONTEXT = ModelConfig(width=16, heads=2, pair_features=4, pair_values=True, decoder_pair_weights=True,
                      decoder_context=True, encoder_layers=2, code_layers=1, decoder_layers=2)

# a fixed DAG over 7 nodes, A[j, i] = 1 meaning j -> i, deliberately NOT in topological order of the index
#   5 -> 1, 5 -> 3, 1 -> 3, 3 -> 0, 2 -> 0, 0 -> 6, 4 isolated
EDGES = [(5, 1), (5, 3), (1, 3), (3, 0), (2, 0), (0, 6)]
D = 7


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is fastest, and on busy cores two threads mostly spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _adj(batch: int = 2, d: int = D, edges=EDGES) -> torch.Tensor:
    adj = torch.zeros(batch, d, d, dtype=torch.bool)
    for j, i in edges:
        adj[:, j, i] = True
    return adj


def _parents(i: int, edges=EDGES) -> set[int]:
    return {j for j, k in edges if k == i}


def _ancestors(i: int, edges=EDGES) -> set[int]:
    found, todo = set(), [i]
    while todo:
        for p in _parents(todo.pop(), edges):
            if p not in found:
                found.add(p)
                todo.append(p)
    return found


def _model(cfg: ModelConfig = TINY, seed: int = 0, modulate: bool = True) -> CondFiP:
    """A randomly initialised network; the decoder's zero-initialised adaLN gates (and pair biases and
    pair weights) are randomised so that T(z) actually depends on z (with zero gates the decoder output
    ignores z entirely)."""
    torch.manual_seed(seed)
    model = CondFiP(cfg)
    if modulate:
        for block in model.decoder.blocks:
            nn.init.normal_(block.modulation.weight, std=0.1)
            nn.init.normal_(block.modulation.bias, std=0.1)
            if block.context:
                nn.init.normal_(block.context_modulation.weight, std=0.3)
                nn.init.normal_(block.context_modulation.bias, std=0.3)
                nn.init.normal_(block.context_out.weight, std=0.3)
        for block in [*model.encoder.node_blocks, *model.decoder.node_blocks]:
            if block.pair is not None:
                nn.init.normal_(block.pair.to_heads.weight, std=1.0)
                if block.pair.to_gains is not None:
                    nn.init.normal_(block.pair.to_gains.weight, std=1.0)
        for name, param in model.named_parameters():
            if "pair_weights.mlp.2" in name:
                nn.init.normal_(param, std=0.5)
    return model.eval()


def _data(batch: int = 2, n: int = 5, d: int = D, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, n, d, generator=torch.Generator().manual_seed(seed))


# ---- dag_attention ------------------------------------------------------------------------------------
def _reference(q, k, v, allowed):
    """exp(s) / max(sum exp(s), 1) over the allowed keys, naively, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    w = torch.exp(s) * allowed.double()
    return (w / torch.clamp(w.sum(-1, keepdim=True), min=1.0)) @ v


def _random_allowed(shape, gen) -> torch.Tensor:
    allowed = torch.rand(shape, generator=gen) < 0.5
    allowed[..., 0, :] = False  # at least one root row everywhere
    return allowed


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0, 30.0, 100.0])
def test_dag_attention_matches_naive_reference(scale):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 4, generator=gen) for _ in range(3))
    q = q * scale  # scores up to a few hundred: the naive float32 form would overflow, float64 does not
    allowed = _random_allowed((3, 2, 6, 6), gen)
    out = dag_attention(q, k, v, allowed)
    ref = _reference(q, k, v, allowed)
    assert torch.isfinite(ref).all()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)


def test_dag_attention_gradient_matches_reference():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 5, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    allowed = _random_allowed((2, 5, 5), gen)
    q1, k1, v1 = (t.clone().requires_grad_() for t in (q, k, v))
    q2, k2, v2 = (t.clone().requires_grad_() for t in (q, k, v))
    weight = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    (dag_attention(q1, k1, v1, allowed) * weight).sum().backward()
    (_reference(q2, k2, v2, allowed) * weight).sum().backward()
    for a, b in ((q1, q2), (k1, k2), (v1, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_dag_attention_root_rows_are_exactly_zero_and_rows_sum_at_most_one():
    gen = torch.Generator().manual_seed(4)
    d = 6
    q, k = (torch.randn(4, d, 8, generator=gen) * 3 for _ in range(2))
    allowed = _random_allowed((4, d, d), gen)
    allowed[1] = False  # a batch element with no edges at all
    weights = dag_attention(q, k, torch.eye(d).expand(4, d, d), allowed)  # v = identity reads the weights
    roots = ~allowed.any(-1)
    assert roots.sum() > 4
    assert torch.all(weights[roots] == 0)  # exactly zero, not approximately
    assert torch.all(weights[~allowed] == 0)  # nothing leaks through the mask
    assert torch.all(weights >= 0)
    assert torch.all(weights.sum(-1) <= 1 + 1e-6)
    # a row with one allowed key has exp(s)/max(exp(s), 1): 1 when s >= 0, exp(s) otherwise
    s = (q[..., :, None, :] * k[..., None, :, :]).sum(-1) / math.sqrt(8)
    single = allowed.sum(-1) == 1
    expected = torch.where(s >= 0, torch.ones_like(s), torch.exp(s))[allowed & single[..., None]]
    torch.testing.assert_close(weights[allowed & single[..., None]], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("magnitude", [1e2, 1e4, 1e8, 1e30])
def test_dag_attention_stable_for_extreme_scores(magnitude):
    gen = torch.Generator().manual_seed(5)
    d = 5
    q = torch.randn(3, d, 4, generator=gen) * magnitude
    k = torch.randn(3, d, 4, generator=gen)
    v = torch.randn(3, d, 4, generator=gen)
    allowed = _random_allowed((3, d, d), gen)
    allowed[:, 1, 2:] = True  # a row with several allowed keys
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = dag_attention(q, k, v, allowed)
    assert torch.isfinite(out).all()
    assert torch.all(out[~allowed.any(-1)] == 0)
    out.square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    if magnitude <= 1e2:  # float64 still represents exp(s): compare with the naive formula
        ref = _reference(q.detach(), k.detach(), v.detach(), allowed)
        torch.testing.assert_close(out.detach().double(), ref, rtol=1e-4, atol=1e-5)


def test_sink_key_is_not_equivalent_for_non_root_rows():
    """The brief's claim: appending an all-zero key/value adds 1 to every row's normaliser, so roots agree
    (both zero) but rows with parents are damped by the sink and no longer sum to 1."""
    gen = torch.Generator().manual_seed(6)
    d, e = 5, 4
    q, k = (torch.randn(2, d, e, generator=gen) * 2 for _ in range(2))
    allowed = _random_allowed((2, d, d), gen)
    allowed[:, 1, :] = True
    allowed[:, 1, 1] = False  # row 1: several parents
    v = torch.eye(d).expand(2, d, d)
    fip = dag_attention(q, k, v, allowed)

    s = q @ k.transpose(-1, -2) / math.sqrt(e)
    s = torch.cat([s.masked_fill(~allowed, float("-inf")), torch.zeros(2, d, 1)], dim=-1)  # sink score 0
    sink = torch.softmax(s, dim=-1)[..., :d]  # the sink's value is zero: drop its column

    roots = ~allowed.any(-1)
    assert torch.equal(sink[roots], fip[roots])  # both exactly 0 on roots
    mass = torch.exp(s[..., :d]).sum(-1)  # sum_j exp(s_j) over parents
    # the sink normalises by mass + 1, FiP by max(mass, 1)
    torch.testing.assert_close(sink.sum(-1)[~roots], (mass / (mass + 1))[~roots])
    torch.testing.assert_close(fip.sum(-1)[~roots], (mass / mass.clamp(min=1))[~roots])
    assert not torch.allclose(sink[~roots], fip[~roots], atol=1e-3)
    assert torch.all(sink.sum(-1)[~roots] < fip.sum(-1)[~roots])


# ---- encoder / decoder dependence structure -----------------------------------------------------------
def _perturb(x: torch.Tensor, nodes, seed: int = 9) -> torch.Tensor:
    x = x.clone()
    gen = torch.Generator().manual_seed(seed)
    for j in nodes:
        x[..., j] += 1.0 + torch.rand(x[..., j].shape, generator=gen)
    return x


@torch.no_grad()
@pytest.mark.parametrize("cfg", [TINY, DEEP, PAIRS, PAIR_VALUES], ids=["1-layer", "2-layer", "pairs", "pair-values"])
def test_encoder_ignores_non_ancestors_and_depends_on_parents(cfg):
    model, x, adj = _model(cfg), _data(), _adj()
    _, f_hat = model.encoder(x, adj)
    for i in range(D):
        others = set(range(D)) - _ancestors(i) - {i}
        if others:
            _, f_pert = model.encoder(_perturb(x, others), adj)
            torch.testing.assert_close(f_pert[..., i], f_hat[..., i], rtol=0, atol=1e-6,
                                       msg=f"node {i} depends on a non-ancestor in {sorted(others)}")
        for p in _parents(i):
            _, f_pert = model.encoder(_perturb(x, [p]), adj)
            assert (f_pert[..., i] - f_hat[..., i]).abs().max() > 1e-4, f"node {i} ignores its parent {p}"


@torch.no_grad()
def test_one_layer_encoder_sees_only_parents():
    """With one block pair node i's prediction is a function of x_i and x_pa(i) only (no grandparents)."""
    model, x, adj = _model(TINY), _data(), _adj()
    _, f_hat = model.encoder(x, adj)
    for i in range(D):
        others = set(range(D)) - _parents(i) - {i}
        _, f_pert = model.encoder(_perturb(x, others), adj)
        torch.testing.assert_close(f_pert[..., i], f_hat[..., i], rtol=0, atol=1e-6)


@torch.no_grad()
def test_two_layer_encoder_reaches_grandparents():
    """Guard on the test above: with two layers the grandparent 5 -> 1 -> 3 does reach node 3's token, so the
    non-ancestor test is not passing merely because the encoder ignores the graph."""
    model, x, adj = _model(DEEP), _data(), _adj()
    _, f_hat = model.encoder(x, adj)
    _, f_pert = model.encoder(_perturb(x, [2]), adj)  # 2 -> 0 -> 6: grandparent of 6
    assert (f_pert[..., 6] - f_hat[..., 6]).abs().max() > 1e-4


@torch.no_grad()
@pytest.mark.parametrize("cfg", [TINY, DEEP, PAIR_VALUES, CONTEXT], ids=["1-layer", "2-layer", "pair-values", "context"])
def test_decoder_depends_on_parents_only(cfg):
    model, x, adj = _model(cfg), _data(n=6), _adj()
    code = model.dataset_code(x, adj)
    z = _data(n=4, seed=2)
    t = model.decoder(code, z, adj)
    for i in range(D):
        non_parents = set(range(D)) - _parents(i)  # includes i itself and every grandparent
        t_pert = model.decoder(code, _perturb(z, non_parents), adj)
        torch.testing.assert_close(t_pert[..., i], t[..., i], rtol=0, atol=1e-6,
                                   msg=f"T(z)_{i} depends on z of a non-parent in {sorted(non_parents)}")
        for p in _parents(i):
            t_pert = model.decoder(code, _perturb(z, [p]), adj)
            assert (t_pert[..., i] - t[..., i]).abs().max() > 1e-4, f"T(z)_{i} ignores its parent {p}"
    # roots: T(z)_i is constant in z
    roots = [i for i in range(D) if not _parents(i)]
    t_other = model.decoder(code, _data(n=4, seed=3), adj)
    torch.testing.assert_close(t_other[..., roots], t[..., roots], rtol=0, atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("cfg", [DEEP, PAIR_VALUES, CONTEXT], ids=["2-layer", "pair-values", "context"])
@pytest.mark.parametrize("nodes", [[0], [3, 6], [2, 5], list(range(D))])
def test_decoder_on_a_subset_of_nodes_equals_the_full_call(nodes, cfg):
    """The fixed point computes one topological generation at a time: the subset call must give the same
    T(z)_i as the full call, batch of several graphs included, and still ignore non-parents."""
    model, x, adj = _model(cfg), _data(n=6), _adj()
    code = model.dataset_code(x, adj)
    z = _data(n=4, seed=2)
    index = torch.tensor(nodes)
    part = model.decoder(code, z, adj, nodes=index)
    assert part.shape == (*z.shape[:2], len(nodes))
    torch.testing.assert_close(part, model.decoder(code, z, adj)[..., index], rtol=0, atol=1e-6)
    others = set(range(D)) - set().union(*(_parents(i) for i in nodes))
    torch.testing.assert_close(model.decoder(code, _perturb(z, others), adj, nodes=index), part, rtol=0, atol=1e-6)


@torch.no_grad()
def test_decoder_with_zero_gates_ignores_z():
    """Documents the zero-initialised adaLN gates: an untrained decoder is a constant in z."""
    model, x, adj = _model(TINY, modulate=False), _data(), _adj()
    code = model.dataset_code(x, adj)
    t1, t2 = model.decoder(code, _data(n=3, seed=2), adj), model.decoder(code, _data(n=3, seed=3), adj)
    torch.testing.assert_close(t1, t2)


@torch.no_grad()
def test_full_model_prediction_for_node_ignores_query_of_non_parents():
    model, x, adj = _model(DEEP), _data(n=8), _adj()
    z = _data(n=3, seed=4)
    t = model(x, z, adj)
    t_pert = model(x, _perturb(z, set(range(D)) - _parents(3)), adj)
    torch.testing.assert_close(t_pert[..., 3], t[..., 3], rtol=0, atol=1e-6)


# ---- equivariance -------------------------------------------------------------------------------------
@torch.no_grad()
@pytest.mark.parametrize("cfg", [DEEP, PAIR_VALUES, CONTEXT], ids=["2-layer", "pair-values", "context"])
@pytest.mark.parametrize("seed", [0, 1])
def test_node_permutation_equivariance(seed, cfg):
    model, x, adj = _model(cfg, seed=seed), _data(n=6), _adj()
    z = _data(n=3, seed=5)
    perm = torch.randperm(D, generator=torch.Generator().manual_seed(10 + seed))
    xp, zp, adjp = x[..., perm], z[..., perm], adj[:, perm][:, :, perm]

    hidden, f_hat = model.encoder(x, adj)
    hidden_p, f_hat_p = model.encoder(xp, adjp)
    torch.testing.assert_close(hidden_p, hidden[:, perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_hat_p, f_hat[..., perm], rtol=1e-5, atol=1e-5)

    code, code_p = model.dataset_code(x, adj), model.dataset_code(xp, adjp)
    torch.testing.assert_close(code_p.mu, code.mu[:, perm], rtol=1e-5, atol=1e-5)
    if cfg.decoder_pair_weights:
        torch.testing.assert_close(code_p.pair_coef, code.pair_coef[:, perm][:, :, perm], rtol=1e-4, atol=1e-5)

    t, t_p = model.decoder(code, z, adj), model.decoder(code_p, zp, adjp)
    torch.testing.assert_close(t_p, t[..., perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(xp, zp, adjp), model(x, z, adj)[..., perm], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_permuting_nodes_without_the_graph_changes_outputs():
    """Guard for the equivariance test: the outputs do depend on which node has which parents."""
    model, x, adj = _model(DEEP), _data(n=6), _adj()
    perm = torch.tensor([1, 0, 2, 3, 4, 5, 6])  # swap two nodes' data but keep the graph
    _, f_hat = model.encoder(x, adj)
    _, f_hat_p = model.encoder(x[..., perm], adj)
    assert not torch.allclose(f_hat_p, f_hat[..., perm], atol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("cfg", [DEEP, PAIR_VALUES, CONTEXT], ids=["2-layer", "pair-values", "context"])
def test_context_row_order_does_not_change_the_dataset_code(cfg):
    model, x, adj = _model(cfg), _data(n=9), _adj()
    rows = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    shuffled, code = model.dataset_code(x[:, rows], adj), model.dataset_code(x, adj)
    torch.testing.assert_close(shuffled.mu, code.mu, rtol=1e-5, atol=1e-5)
    if cfg.decoder_pair_weights:
        torch.testing.assert_close(shuffled.pair_coef, code.pair_coef, rtol=1e-4, atol=1e-5)
    z = _data(n=3, seed=6)  # the decoder's answers too (with decoder_context it reads the context rows)
    torch.testing.assert_close(model.decoder(shuffled, z, adj), model.decoder(code, z, adj), rtol=1e-5, atol=1e-5)
    _, f_hat = model.encoder(x, adj)
    _, f_hat_p = model.encoder(x[:, rows], adj)
    torch.testing.assert_close(f_hat_p, f_hat[:, rows], rtol=1e-5, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("cfg", [TINY, DEEP, PAIRS, PAIR_VALUES], ids=["tiny", "deep", "pairs", "pair-values"])
def test_distinct_rows_with_counts_give_the_code_of_the_repeated_rows(cfg):
    """A context with repeated rows (a bootstrap resample) passed as its distinct rows with their multiplicities
    (padded with count-0 rows to a common length) gives the same dataset code and the same decoder answers."""
    model, adj = _model(cfg), _adj()
    distinct = _data(n=6, seed=3)
    repeats = torch.tensor([[3, 1, 2, 1, 1, 0], [1, 4, 1, 1, 2, 1]])  # replicate 0: 5 distinct rows + padding
    full = [distinct[b].repeat_interleave(repeats[b], dim=0)[None] for b in range(2)]  # 8 and 10 rows
    code_full = [model.dataset_code(full[b], adj[:1]) for b in range(2)]
    hidden, _ = model.encoder(distinct, adj, counts=repeats)
    code = model.decoder.dataset_code(hidden, adj, distinct, counts=repeats)
    z = _data(n=3, seed=6)
    for b in range(2):
        torch.testing.assert_close(code.mu[b:b + 1], code_full[b].mu, rtol=1e-5, atol=1e-5)
        if cfg.decoder_pair_weights:
            torch.testing.assert_close(code.pair_coef[b:b + 1], code_full[b].pair_coef, rtol=1e-4, atol=1e-5)
        one = type(code)(*(None if f is None else f[b:b + 1] for f in code))
        torch.testing.assert_close(model.decoder(one, z[b:b + 1], adj[:1]),
                                   model.decoder(code_full[b], z[b:b + 1], adj[:1]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be combined"):
        model.encoder(distinct, adj, sample_mask=appended_rows_mask(3, 6), counts=repeats)


# ---- shapes -------------------------------------------------------------------------------------------
@torch.no_grad()
@pytest.mark.parametrize("d", [1, 2, 7])
@pytest.mark.parametrize("n", [1, 5])
def test_forward_any_number_of_nodes_and_rows(d, n):
    model = _model(DEEP)
    gen = torch.Generator().manual_seed(d * 10 + n)
    adj = torch.triu(torch.rand(3, d, d, generator=gen) < 0.6, diagonal=1)
    x = torch.randn(3, n, d, generator=gen)
    z = torch.randn(3, 2, d, generator=gen)
    hidden, f_hat = model.encoder(x, adj)
    assert hidden.shape == (3, d, n, TINY.width) and f_hat.shape == (3, n, d)
    code = model.dataset_code(x, adj)
    assert code.mu.shape == (3, d, TINY.width)
    t = model(x, z, adj)
    assert t.shape == (3, 2, d)
    for out in (hidden, f_hat, code.mu, t):
        assert torch.isfinite(out).all()
    # one row of one dataset gives the same as that dataset inside the batch (no cross-dataset mixing)
    torch.testing.assert_close(model(x[1:2], z[1:2], adj[1:2]), t[1:2], rtol=1e-5, atol=1e-6)


def test_backward_with_a_graph_without_edges_is_finite():
    model = _model(TINY)
    model.train()
    x = _data(n=4, d=3)
    adj = torch.zeros(2, 3, 3, dtype=torch.bool)
    loss = model(x, x, adj).square().mean() + model.encoder(x, adj)[1].square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ---- determinism --------------------------------------------------------------------------------------
def test_same_seed_same_initialisation_and_outputs():
    def build(seed):
        torch.manual_seed(seed)
        return CondFiP(DEEP).eval()

    a, b, c = build(0), build(0), build(1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    x, z, adj = _data(), _data(n=3, seed=2), _adj()
    with torch.no_grad():
        assert torch.equal(a(x, z, adj), b(x, z, adj))
        assert torch.equal(a.encoder(x, adj)[1], b.encoder(x, adj)[1])
        assert not torch.equal(a.encoder(x, adj)[1], c.encoder(x, adj)[1])


@torch.no_grad()
@pytest.mark.parametrize("cfg", [DEEP, PAIRS, PAIR_VALUES], ids=["2-layer", "pairs", "pair-values"])
def test_appended_rows_mask_gives_each_row_what_the_context_and_that_row_alone_give(cfg):
    """With the mask the context rows' predictions are those of the context alone, and each appended row's
    prediction is the same whatever other rows are appended with it."""
    model, adj = _model(cfg), _adj()
    context, rows = _data(n=6, seed=3), _data(n=4, seed=4)
    _, f_masked = model.encoder(torch.cat([context, rows], dim=1), adj, appended_rows_mask(6, 10))
    torch.testing.assert_close(f_masked[:, :6], model.encoder(context, adj)[1], rtol=0, atol=1e-5)
    for r in range(4):
        _, f_alone = model.encoder(torch.cat([context, rows[:, r:r + 1]], dim=1), adj, appended_rows_mask(6, 7))
        torch.testing.assert_close(f_masked[:, 6 + r], f_alone[:, 6], rtol=0, atol=1e-5)
    _, f_joint = model.encoder(torch.cat([context, rows], dim=1), adj)  # guard: without the mask rows interact
    assert (f_joint[:, 6:] - f_masked[:, 6:]).abs().max() > 1e-4


@torch.no_grad()
def test_pair_bias_changes_the_encoder_only_once_trained():
    """The pair bias starts at zero (a warm start with it switched on computes what the weights did before);
    once its output layer is non-zero it changes the predictions."""
    plain = _model(DEEP, modulate=False)
    paired = CondFiP(PAIRS).eval()
    paired.load_state_dict({**paired.state_dict(), **plain.state_dict()})
    x, adj = _data(n=8), _adj()
    torch.testing.assert_close(paired.encoder(x, adj)[1], plain.encoder(x, adj)[1], rtol=0, atol=1e-6)
    nn.init.normal_(paired.encoder.node_blocks[0].pair.to_heads.weight, std=1.0)
    changed = paired.encoder(x, adj)[1]
    assert (changed - plain.encoder(x, adj)[1]).abs().max() > 1e-4


@torch.no_grad()
def test_pair_values_change_the_network_only_once_trained():
    """The pair weights start at zero (a warm start that switches them on computes what the weights did
    before); once trained they change the encoder's predictions and the dataset code."""
    from condfip.pretrained import grow_state

    plain = _model(PAIRS)
    grown = CondFiP(PAIR_VALUES).eval()
    grown.load_state_dict(grow_state(plain.state_dict(), PAIRS, PAIR_VALUES))
    x, adj, z = _data(n=8), _adj(), _data(n=3, seed=2)
    torch.testing.assert_close(grown.encoder(x, adj)[1], plain.encoder(x, adj)[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(grown(x, z, adj), plain(x, z, adj), rtol=0, atol=1e-6)
    nn.init.normal_(grown.encoder.node_blocks[0].pair.to_gains.weight, std=1.0)
    assert (grown.encoder(x, adj)[1] - plain.encoder(x, adj)[1]).abs().max() > 1e-4
    decoded = grown(x, z, adj)
    nn.init.normal_(grown.decoder.pair_weights.mlp[2].weight, std=1.0)
    assert (grown(x, z, adj) - decoded).abs().max() > 1e-4


@torch.no_grad()
def test_decoder_pair_weights_add_a_signed_linear_term_in_the_parents():
    """With the readout silenced, T(z) is z @ pair_coef^T: the weights are exactly 0 off the parents, carry
    either sign, and the subset call returns the same term."""
    model, x, adj, z = _model(PAIR_VALUES), _data(n=12), _adj(), _data(n=4, seed=2)
    nn.init.zeros_(model.decoder.readout.weight)
    nn.init.zeros_(model.decoder.readout.bias)
    nn.init.zeros_(model.decoder.pair_weights.mlp[2].bias)
    code = model.dataset_code(x, adj)
    parents = adj.transpose(1, 2)
    assert torch.all(code.pair_coef[~parents] == 0)
    assert code.pair_coef[parents].std() > 1e-3  # they differ across pairs (the statistics differ)
    model.decoder.pair_weights.mlp[2].weight.neg_()  # and take either sign: not a softmax mean
    torch.testing.assert_close(model.dataset_code(x, adj).pair_coef, -code.pair_coef, rtol=0, atol=1e-6)
    expected = z @ code.pair_coef.transpose(1, 2)
    torch.testing.assert_close(model.decoder(code, z, adj), expected, rtol=0, atol=1e-5)
    index = torch.tensor([3, 6])
    torch.testing.assert_close(model.decoder(code, z, adj, nodes=index), expected[..., index], rtol=0, atol=1e-5)


@torch.no_grad()
def test_pair_values_add_a_signed_sum_over_the_parents_only():
    """A node attention block with pair weights adds sum_j g_ij v_j over the parents to the softmax mean:
    weights of either sign pass through (a softmax mean could not return a negative multiple of a parent), and
    a root's attention output stays exactly zero."""
    block = _model(PAIR_VALUES).encoder.node_blocks[0]
    gen = torch.Generator().manual_seed(5)
    x, adj = torch.randn(1, D, 6, 16, generator=gen), _adj()[:1]
    allowed = adj.transpose(1, 2)
    normed = block.ln1(x)
    _, _, v = block.qkv(normed).view(1, D, 6, 3, block.heads, 8).permute(3, 0, 2, 4, 1, 5)
    bias, gains = block.pair(normed)
    assert (gains < 0).any() and (gains > 0).any()
    from condfip.model import dag_attention

    q, k, _ = block.qkv(normed).view(1, D, 6, 3, block.heads, 8).permute(3, 0, 2, 4, 1, 5)
    softmax_part = dag_attention(q, k, v, allowed[:, None, None], bias)
    attended = softmax_part + torch.einsum("bxhij,bnhje->bnhie", gains * allowed[:, None, None], v)
    expected = x + block.out(attended.permute(0, 3, 1, 2, 4).reshape(1, D, 6, 16))
    expected = expected + block.mlp(block.ln2(expected))
    torch.testing.assert_close(block(x, allowed), expected, rtol=1e-5, atol=1e-5)
    roots = [i for i in range(D) if not _parents(i)]
    assert torch.all(attended[:, :, :, roots] == 0) and (attended[:, :, :, 3] != 0).any()


def test_pair_values_need_the_pair_statistics():
    from condfip.errors import InputError

    with pytest.raises(InputError, match="pair_features > 0"):
        ModelConfig(pair_values=True)
    with pytest.raises(InputError, match="decoder_pair_weights needs"):
        ModelConfig(decoder_pair_weights=True)


# ---- attention across the context rows (decoder_context) -----------------------------------------------
@torch.no_grad()
def test_cached_context_memory_equals_the_uncached_call():
    model, x, adj = _model(CONTEXT), _data(n=9), _adj()
    code, z = model.dataset_code(x, adj), _data(n=4, seed=2)
    memory = model.decoder.context_memory(code, adj)
    torch.testing.assert_close(model.decoder(code, z, adj, memory=memory), model.decoder(code, z, adj),
                               rtol=0, atol=1e-6)
    index = torch.tensor([3, 6])
    torch.testing.assert_close(model.decoder(code, z, adj, nodes=index, memory=memory),
                               model.decoder(code, z, adj)[..., index], rtol=0, atol=1e-6)
    assert model.decoder.context_memory(model.dataset_code(x, adj), adj) is not None
    assert _model(PAIR_VALUES).decoder.context_memory(code, adj) is None


@torch.no_grad()
def test_decoder_reads_the_context_rows_not_only_the_pooled_code():
    """With decoder_context, T(z) changes when the context tokens change and the pooled code mu does not; a
    query row's T does not depend on the other query rows passed with it."""
    model, x, adj = _model(CONTEXT), _data(n=9), _adj()
    code, z = model.dataset_code(x, adj), _data(n=4, seed=2)
    t = model.decoder(code, z, adj)
    edited = code._replace(context_tokens=code.context_tokens + torch.randn_like(code.context_tokens))
    children = [i for i in range(D) if _parents(i)]
    assert (model.decoder(edited, z, adj)[..., children] - t[..., children]).abs().max() > 1e-4
    torch.testing.assert_close(model.decoder(code, z[:, :1], adj), t[:, :1], rtol=0, atol=1e-6)


@torch.no_grad()
def test_switching_on_the_context_attention_changes_nothing_until_trained():
    from condfip.pretrained import grow_state

    before = _model(PAIR_VALUES)
    grown = CondFiP(CONTEXT)
    grown.load_state_dict(grow_state(before.state_dict(), PAIR_VALUES, CONTEXT))
    x, adj, z = _data(n=9), _adj(), _data(n=4, seed=2)
    torch.testing.assert_close(grown.eval()(x, z, adj), before(x, z, adj), rtol=0, atol=0)
