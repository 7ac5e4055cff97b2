"""The Cond-FiP network in one file: a dataset encoder and a conditional fixed-point decoder.

Shapes: B datasets, n samples (rows), d nodes, h width. Graph masks are forward arguments:
``adj[b, j, i] = True`` means j -> i; node i's attention row may look at node j iff ``adj[b, j, i]``.

Encoder: every scalar x[s, i] is a token. Blocks alternate attention across samples (per node, no mask)
and attention across nodes (per sample, parents only). A head predicts f(x) per token. Optionally
(``pair_features``) the scores across nodes get a bias per node pair from second moments over the samples
(``PairBias``), which a score computed row by row cannot see; with ``pair_values`` the same statistics also
give every (node, parent) pair a signed weight g_ij per head, and the block adds sum_j g_ij v_j over the parents
(a learned, unnormalised second attention path: a softmax mean of the parents cannot carry signed, pair-specific
coefficients such as a linear mechanism's).

Decoder: the encoder's context embeddings go through ``code_layers`` more block pairs and are max-pooled
over samples into a per-node dataset code mu (B, d, h). From mu: a value codebook C, a query/position vector
P and a condition c. A query row z is embedded as ``z_i C_i + P_i``; a stream that starts at P goes through
blocks of DAG-masked attention whose keys/values are that embedding in every layer (never the updated
stream: that would let a node see its grandparents) and an MLP, each modulated by adaptive LayerNorm from c
(shift, scale, zero-initialised gate). ``Linear(h, 1)`` reads T(z)_i, which depends on z_parents(i) only.
Optionally (``decoder_pair_weights``, regression-free) T(z)_i adds sum_j w_ij z_j over the parents, with w_ij a
learned function (``PairWeights``, output layer zero at first) of the pair statistics of the context's code
tokens: a softmax mean over the embedded parents cannot return a linear mechanism's signed coefficients.

Optionally (``decoder_context``, regression-free) every decoder block also attends across the context rows, for
each node i separately (TabPFN's layout: context rows and query rows pass through the same blocks, query rows
read the context rows, never each other). The context rows go through the decoder as query rows do, so at every
block the context stream of (row s, node i) is the same function of x_parents(i)[s] as the query stream is of
z_parents(i): the query's stream gives the attention query, the context stream the key, and the code blocks'
context token of (s, i), which carries x_i[s], the value. T(z)_i then reads how node i behaved in the context rows
whose parents resemble z's, beside the max-pooled code. The context side (``context_memory``) depends on the
context only: it is computed once per SCM and passed back in, so a fixed-point pass costs O(m n) per node. It is
added through a zero-initialised output projection (its gate starts at one, so the projection learns from the
first step), so switching it on in a warm start changes nothing at first.

Roots have no parents: attention uses FiP's normaliser ``max(sum_j exp(s_j), 1)`` in its stable form, so a
root's attention output is exactly zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError

# options of earlier versions (issue 24), with the value that meant "off": ModelConfig.from_dict accepts them
# only at that value
RETIRED = {"node_heads": None, "linear_feature": False, "decoder_linear": False}


@dataclass(frozen=True)
class ModelConfig:
    width: int = 64
    heads: int = 2  # 2 heads: half the softmax work of 4 over samples on CPU, same width
    pair_features: int = 0  # c > 0: node attention scores get a bias from c*c sample statistics per node pair
    pair_values: bool = False  # node attention also adds sum over parents of g_ij v_j, g_ij from those statistics
    decoder_pair_weights: bool = False  # T(z) adds sum over parents of w_ij z_j, w_ij from the pair statistics
    decoder_context: bool = False  # decoder blocks also attend across the context rows of each node (see above)
    encoder_layers: int = 3  # pairs of (sample attention, node attention) blocks
    code_layers: int = 1  # block pairs between the frozen encoder and the max-pool (trained with the decoder)
    decoder_layers: int = 3
    mlp_ratio: int = 2
    max_context: int = 1000  # larger contexts are subsampled at inference

    def __post_init__(self):
        for option in ("pair_values", "decoder_pair_weights"):
            if getattr(self, option) and not self.pair_features:
                raise InputError(f"ModelConfig: {option} needs the pair statistics; set pair_features > 0 (e.g. 8)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """The config of a model card or checkpoint. Options retired in issue 24 (``RETIRED``: no shipped network
        used them; docs/training-log.md keeps what they measured) are dropped when they hold their off value; a
        config that switches one on is refused."""
        values = dict(values)
        for option, off in RETIRED.items():
            if option in values and values.pop(option) != off:
                raise InputError(f"model option {option!r} is switched on, but it was retired (issue 24; "
                                 f"docs/training-log.md keeps what it measured); fix: use weights or a config "
                                 f"without it")
        return cls(**values)


def dag_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
    """Attention of q (..., d, e) over k, v (..., d, e) where ``allowed[..., i, j]`` (broadcastable to
    (..., d, d)) lets query i see key j; ``bias`` (broadcastable to (..., d, d)), optional, is added to the
    scores. Rows are normalised by max(sum exp(s), 1), computed as exp(s - m) / max(sum exp(s - m), exp(-m))
    with m the row max: rows without allowed keys give 0."""
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~allowed, float("-inf"))
    m = scores.amax(dim=-1, keepdim=True).detach()  # the result does not depend on m: detach is exact
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(scores - m)
    return (e / torch.maximum(e.sum(dim=-1, keepdim=True), torch.exp(-m))) @ v


def appended_rows_mask(n_context: int, n_rows: int, device: torch.device | None = None) -> torch.Tensor:
    """Sample-attention mask (n_rows, n_rows) for rows appended after ``n_context`` context rows: context rows
    see the context only; each appended row sees the context and itself. The context's results are then those
    of the context alone, and each appended row's result does not depend on the other rows appended with it."""
    mask = torch.zeros(n_rows, n_rows, dtype=torch.bool, device=device)
    mask[:, :n_context] = True
    return mask | torch.eye(n_rows, dtype=torch.bool, device=device)


def parents_mask(adj: torch.Tensor) -> torch.Tensor:
    """Query-row mask from an adjacency (B, d, d) with adj[b, j, i] meaning j -> i: row i allows its parents."""
    return adj.transpose(-1, -2)


class DatasetCode(NamedTuple):
    """What the decoder knows of a dataset: the per-node code ``mu`` (B, d, h); with ``decoder_pair_weights``, the learned parent weights ``pair_coef`` (B, d, d), [b, i, j] for parent j of i;
    with ``decoder_context``, the code blocks' context tokens ``context_tokens`` (B, d, n, h) and the
    standardised context rows ``context_rows`` (B, n, d), from which ``FixedPointDecoder.context_memory`` makes
    the per-block keys and values."""
    mu: torch.Tensor
    pair_coef: torch.Tensor | None = None
    context_tokens: torch.Tensor | None = None
    context_rows: torch.Tensor | None = None


class ContextMemory(NamedTuple):
    """Keys and values of the context rows for every decoder block, each (B, d, heads, n, e): a function of
    the context only, computed once per SCM by ``FixedPointDecoder.context_memory``."""
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    def subset(self, nodes: torch.Tensor) -> ContextMemory:
        return ContextMemory(tuple(k[:, nodes] for k in self.keys), tuple(v[:, nodes] for v in self.values))


class MLP(nn.Module):
    def __init__(self, width: int, ratio: int):
        super().__init__()
        self.fc = nn.Linear(width, ratio * width)
        self.proj = nn.Linear(ratio * width, width)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class AttentionBlock(nn.Module):
    """Pre-LN residual block parts shared by the encoder's two block kinds: attention, then an MLP."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        self.mlp = MLP(cfg.width, cfg.mlp_ratio)


def count_bias(counts: torch.Tensor) -> torch.Tensor:
    """Row multiplicities (B, n) as an additive attention bias (B, 1, 1, 1, n): log(count), -inf for padding.
    Attending over distinct rows with this bias equals attending over the rows with their repeats."""
    return torch.log(counts.float())[:, None, None, None, :]


class SampleAttention(AttentionBlock):
    """Attention across samples for each node (x laid out (B, d, n, h)), then an MLP. ``sample_mask`` (n, n),
    optional: row s may look at row t iff ``sample_mask[s, t]``. ``counts`` (B, n), optional: each row stands
    for that many identical rows (0: padding, seen by no row); not with ``sample_mask``."""

    def forward(self, x: torch.Tensor, sample_mask: torch.Tensor | None = None,
                counts: torch.Tensor | None = None) -> torch.Tensor:
        B, d, n, h = x.shape
        # (B * d, heads, n, e): four dimensions, which torch's fused CPU attention kernel takes (with five it fell
        # back to the unfused path, ~4x slower on 800 rows; the same numbers to float rounding)
        q, k, v = self.qkv(self.ln1(x)).view(B * d, n, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        if counts is not None:
            if sample_mask is not None:
                raise ValueError("counts and sample_mask cannot be combined")
            sample_mask = count_bias(counts).to(q.dtype).expand(B, d, 1, 1, n).reshape(B * d, 1, 1, n)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=sample_mask)  # (B * d, heads, n, e)
        x = x + self.out(a.transpose(1, 2).reshape(B, d, n, h))
        return x + self.mlp(self.ln2(x))


class NodeAttention(AttentionBlock):
    """DAG-masked attention across nodes for each sample (x laid out (B, d, n, h)), then an MLP. Each head
    returns one weighted mean of the parents' values."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.pair = PairBias(cfg.width, cfg.pair_features, self.heads, cfg.pair_values) if cfg.pair_features else None

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, pair_rows: torch.Tensor | None = None,
                counts: torch.Tensor | None = None) -> torch.Tensor:
        """``pair_rows`` (n,) bool, optional: the rows whose statistics make the pair bias (default all).
        ``counts`` (B, n), optional: row multiplicities for those statistics (see ``SampleAttention``)."""
        B, d, n, h = x.shape
        normed = self.ln1(x)
        q, k, v = self.qkv(normed).view(B, d, n, 3, self.heads, h // self.heads).permute(3, 0, 2, 4, 1, 5)
        bias, gains = (None, None) if self.pair is None else self.pair(
            normed if pair_rows is None else normed[:, :, pair_rows], counts)
        a = dag_attention(q, k, v, allowed[:, None, None], bias)  # (B, n, heads, d, e)
        if gains is not None:  # signed weights over the parents only: a root still gets exactly zero
            a = a + (gains * allowed[:, None, None]).to(v.dtype) @ v
        x = x + self.out(a.permute(0, 3, 1, 2, 4).reshape(B, d, n, h))
        return x + self.mlp(self.ln2(x))


def pair_moments(left: torch.Tensor, right: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Sample means of products of c features of node i (``left`` (B, d, n, c)) and of node j (``right``):
    (B, d, d, c*c), the statistics of every node pair (i, j) over the rows (``counts`` (B, n): weighted by the
    rows' multiplicities)."""
    if counts is None:
        return torch.einsum("bisc,bjsk->bijck", left, right).flatten(-2) / left.shape[2]
    weights = (counts / counts.sum(dim=1, keepdim=True)).to(left.dtype)
    # weight one side first: a three-operand einsum here took ~100x the time of this two-operand one
    return torch.einsum("bisc,bjsk->bijck", left * weights[:, None, :, None], right).flatten(-2)


class PairBias(nn.Module):
    """A per-head score bias for every node pair (i, j) from the sample means of products of c features of
    node i and c of node j: second moments such as cov(x_i, x_j), which a score q_i . k_j, computed row by row,
    cannot see. With ``values``, the same moments also give a per-head signed weight g_ij for the pair (see
    ``NodeAttention``). The output layers start at zero, so adding them to trained weights changes nothing at
    first."""

    def __init__(self, width: int, features: int, heads: int, values: bool = False):
        super().__init__()
        self.left, self.right = nn.Linear(width, features), nn.Linear(width, features)
        self.to_heads = nn.Linear(features * features, heads)
        self.to_gains = nn.Linear(features * features, heads) if values else None
        for layer in (self.to_heads, self.to_gains):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor,
                counts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, d, n, h) -> score bias and pair weights (None without ``values``), each (B, 1, heads, d, d),
        laid out for ``dag_attention`` over (B, n, heads, d, e)."""
        moments = pair_moments(self.left(x), self.right(x), counts)
        bias = self.to_heads(moments).permute(0, 3, 1, 2).unsqueeze(1)
        gains = None if self.to_gains is None else self.to_gains(moments).permute(0, 3, 1, 2).unsqueeze(1)
        return bias, gains


class PairWeights(nn.Module):
    """A signed weight w_ij for every (node, parent) pair: the sample means of products of c features of node
    i's and c of node j's tokens (as ``PairBias``) through a small MLP whose output layer starts at zero. A
    learned function of the statistics, in one pass: nothing is fitted."""

    def __init__(self, width: int, features: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.left, self.right = nn.Linear(width, features), nn.Linear(width, features)
        self.mlp = nn.Sequential(nn.Linear(features * features, width), nn.GELU(), nn.Linear(width, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens x (B, d, n, h), ``allowed`` (B, d, d) (row i: the parents of i) -> weights (B, d, d), float32,
        exactly 0 where not allowed."""
        x = self.norm(x)
        return self.mlp(pair_moments(self.left(x), self.right(x), counts)).squeeze(-1).float() * allowed


class DatasetEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Linear(1, cfg.width)
        self.sample_blocks = nn.ModuleList(SampleAttention(cfg) for _ in range(cfg.encoder_layers))
        self.node_blocks = nn.ModuleList(NodeAttention(cfg) for _ in range(cfg.encoder_layers))
        self.head = nn.Sequential(nn.LayerNorm(cfg.width), MLP(cfg.width, cfg.mlp_ratio), nn.Linear(cfg.width, 1))

    def forward(self, x: torch.Tensor, adj: torch.Tensor, sample_mask: torch.Tensor | None = None,
                counts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, n, d), adj (B, d, d) -> token embeddings (B, d, n, h) and predicted f(x) (B, n, d).
        ``sample_mask`` (n, n), optional: which rows each row's sample attention may see. ``counts`` (B, n),
        optional: each row stands for that many identical rows (0: padding), so a context with repeated rows
        (a bootstrap resample) can pass each distinct row once; the distinct rows' embeddings are then those
        of the full context, to float rounding."""
        allowed = parents_mask(adj)
        pair_rows = None if sample_mask is None else sample_mask.all(dim=0)  # rows every row sees: the context
        hidden = self.embed(x.transpose(1, 2).unsqueeze(-1))
        for sample_block, node_block in zip(self.sample_blocks, self.node_blocks):
            hidden = node_block(sample_block(hidden, sample_mask, counts), allowed, pair_rows, counts)
        return hidden, self.head(hidden).squeeze(-1).transpose(1, 2)


class DecoderBlock(nn.Module):
    """DAG-masked attention (queries: the stream; keys/values: the embedded query row) and an MLP, each
    under adaptive LayerNorm from the dataset condition c (shift, scale, gate; zero-initialised)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.width
        self.heads = cfg.heads
        self.ln1 = nn.LayerNorm(h, elementwise_affine=False)
        self.ln2 = nn.LayerNorm(h, elementwise_affine=False)
        self.q = nn.Linear(h, h)
        self.kv = nn.Linear(h, 2 * h)
        self.out = nn.Linear(h, h)
        self.mlp = MLP(h, cfg.mlp_ratio)
        self.modulation = nn.Linear(h, 6 * h)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.context = cfg.decoder_context
        if cfg.decoder_context:  # attention across the context rows, added through a zero-initialised projection
            self.ln3 = nn.LayerNorm(h, elementwise_affine=False)
            self.context_q, self.context_k = nn.Linear(h, h), nn.Linear(h, h)
            self.context_v, self.context_out = nn.Linear(h, h), nn.Linear(h, h)
            self.context_modulation = nn.Linear(h, 3 * h)
            nn.init.zeros_(self.context_modulation.weight)
            nn.init.zeros_(self.context_modulation.bias)
            # the output projection starts at zero, the gate at one: the block computes what it did without
            # the path, yet the projection gets a gradient from the first step (a zero gate would block it)
            nn.init.ones_(self.context_modulation.bias[2 * h:])
            nn.init.zeros_(self.context_out.weight)
            nn.init.zeros_(self.context_out.bias)

    def _context_normed(self, stream: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, scale, gate = self.context_modulation(F.silu(cond))[:, None].chunk(3, dim=-1)
        return self.ln3(stream) * (1 + scale) + shift, gate

    def context_keys_values(self, stream: torch.Tensor, tokens: torch.Tensor,
                            cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The context rows' keys (from their stream (B, n, d, h) entering this block) and values (from the
        normalised context tokens (B, d, n, h)), each (B, d, heads, n, e)."""
        B, n, d, h = stream.shape
        e = h // self.heads
        normed, _ = self._context_normed(stream, cond)
        k = self.context_k(normed).view(B, n, d, self.heads, e).permute(0, 2, 3, 1, 4)
        v = self.context_v(tokens).view(B, d, n, self.heads, e).transpose(2, 3)
        return k, v

    def forward(self, stream: torch.Tensor, keys: torch.Tensor, cond: torch.Tensor, allowed: torch.Tensor,
                context: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """stream (B, m, d, h) for the d nodes computed; keys (B, m, k, h) for the k nodes they may attend to;
        cond (B, d, h); allowed (B, d, k); ``context`` (with ``decoder_context``): this block's context keys
        and values for the d nodes, each (B, d, heads, n, e)."""
        B, m, d, h = stream.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(cond))[:, None].chunk(6, dim=-1)
        e = h // self.heads
        q = self.q(self.ln1(stream) * (1 + scale1) + shift1).view(B, m, d, self.heads, e).transpose(2, 3)
        k, v = self.kv(keys).view(B, m, keys.shape[2], 2, self.heads, e).permute(3, 0, 1, 4, 2, 5)
        a = dag_attention(q, k, v, allowed[:, None, None]).transpose(2, 3).reshape(B, m, d, h)
        stream = stream + gate1 * self.out(a)
        if self.context:
            normed, gate3 = self._context_normed(stream, cond)
            q = self.context_q(normed).view(B, m, d, self.heads, e).permute(0, 2, 3, 1, 4)  # (B, d, heads, m, e)
            k, v = context[0].to(q.dtype), context[1].to(q.dtype)
            # written out rather than F.scaled_dot_product_attention (its CPU kernel is ~3x slower in bf16), in
            # chunks of query rows that keep the score tensor under 2^24 entries (a large context at inference)
            rows = max(1, 2 ** 24 // max(1, B * d * self.heads * k.shape[-2]))
            a = torch.cat([torch.softmax((q[..., s:s + rows, :] @ k.transpose(-1, -2)) / math.sqrt(e), dim=-1) @ v
                           for s in range(0, m, rows)], dim=-2)
            stream = stream + gate3 * self.context_out(a.permute(0, 3, 1, 2, 4).reshape(B, m, d, h))
        return stream + gate2 * self.mlp(self.ln2(stream) * (1 + scale2) + shift2)


class FixedPointDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.width
        self.sample_blocks = nn.ModuleList(SampleAttention(cfg) for _ in range(cfg.code_layers))
        self.node_blocks = nn.ModuleList(NodeAttention(cfg) for _ in range(cfg.code_layers))
        self.code_norm = nn.LayerNorm(h)
        self.to_codebook, self.to_position, self.to_condition = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.key_norm = nn.LayerNorm(h)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        self.final_norm = nn.LayerNorm(h)
        self.readout = nn.Linear(h, 1)
        self.pair_weights = PairWeights(h, cfg.pair_features) if cfg.decoder_pair_weights else None
        self.context = cfg.decoder_context
        if cfg.decoder_context:
            self.context_norm = nn.LayerNorm(h)

    def dataset_code(self, hidden: torch.Tensor, adj: torch.Tensor, context: torch.Tensor,
                     counts: torch.Tensor | None = None) -> DatasetCode:
        """Encoder embeddings of the context (B, d, n, h) and the context itself (B, n, d) -> DatasetCode.
        ``counts`` (B, n), optional: row multiplicities, as in ``DatasetEncoder.forward`` (not with
        ``decoder_context``, whose context memory attends over the rows themselves)."""
        allowed = parents_mask(adj)
        if counts is not None and self.context:
            raise ValueError("counts are not supported with decoder_context")
        for sample_block, node_block in zip(self.sample_blocks, self.node_blocks):
            hidden = node_block(sample_block(hidden, counts=counts), allowed, counts=counts)
        pooled = hidden if counts is None else hidden.masked_fill((counts == 0)[:, None, :, None], float("-inf"))
        mu = self.code_norm(pooled.amax(dim=2))
        pair_coef = None if self.pair_weights is None else self.pair_weights(hidden, allowed, counts)
        tokens, rows = (hidden, context) if self.context else (None, None)
        return DatasetCode(mu, pair_coef, tokens, rows)

    def context_memory(self, code: DatasetCode, adj: torch.Tensor) -> ContextMemory | None:
        """The context side of the attention across context rows (``decoder_context``; None without it): the
        context rows pass through the blocks as query rows do, attending to the context (themselves included),
        and each block's keys and values are kept. Depends on the context only; compute it once per SCM."""
        if not self.context:
            return None
        allowed, mu = parents_mask(adj), code.mu
        codebook, position, cond = self.to_codebook(mu), self.to_position(mu), self.to_condition(mu)
        z = code.context_rows
        keys = self.key_norm(z.unsqueeze(-1) * codebook[:, None] + position[:, None])
        stream = position[:, None].expand(keys.shape[0], keys.shape[1], -1, -1)
        tokens = self.context_norm(code.context_tokens)
        memory_keys, memory_values = [], []
        for block in self.blocks:
            k, v = block.context_keys_values(stream, tokens, cond)
            memory_keys.append(k)
            memory_values.append(v)
            stream = block(stream, keys, cond, allowed, (k, v))
        return ContextMemory(tuple(memory_keys), tuple(memory_values))

    def forward(self, code: DatasetCode, z: torch.Tensor, adj: torch.Tensor,
                nodes: torch.Tensor | None = None, memory: ContextMemory | None = None) -> torch.Tensor:
        """T(z): code (mu (B, d, h)), query rows z (B, m, d) -> (B, m, d); T(z)_i depends on z_parents(i) only.

        ``nodes`` (a 1-D index tensor): compute T(z)_nodes only, (B, m, len(nodes)), attending over the
        embeddings of those nodes and their parents only. Each node's output is the same function of its
        parents as in the full call; the fixed-point solver uses it to settle one topological generation per
        pass at a fraction of the cost of a full pass. ``memory``: ``context_memory(code, adj)``, computed once
        and passed back (with ``decoder_context``; computed here when None)."""
        allowed, mu = parents_mask(adj), code.mu
        if self.context and memory is None:
            memory = self.context_memory(code, adj)
        codebook, position, cond = self.to_codebook(mu), self.to_position(mu), self.to_condition(mu)
        stream_position = position
        pair_coef = code.pair_coef
        if nodes is not None:
            attended = allowed[:, nodes].any(dim=1).any(dim=0)
            attended[nodes] = True
            cols = attended.nonzero().squeeze(-1)
            allowed, cond, stream_position = allowed[:, nodes][:, :, cols], cond[:, nodes], position[:, nodes]
            z, codebook, position = z[:, :, cols], codebook[:, cols], position[:, cols]
            if pair_coef is not None:
                pair_coef = pair_coef[:, nodes][:, :, cols]
            if memory is not None:
                memory = memory.subset(nodes)
        keys = self.key_norm(z.unsqueeze(-1) * codebook[:, None] + position[:, None])
        stream = stream_position[:, None].expand(keys.shape[0], keys.shape[1], -1, -1)
        for layer, block in enumerate(self.blocks):
            context = None if memory is None else (memory.keys[layer], memory.values[layer])
            stream = block(stream, keys, cond, allowed, context)
        t = self.readout(self.final_norm(stream)).squeeze(-1)
        if pair_coef is not None:
            t = t + z.float() @ pair_coef.transpose(1, 2)
        return t


class CondFiP(nn.Module):
    """Encoder + decoder. All inputs are standardised per dataset and node."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = DatasetEncoder(cfg)
        self.decoder = FixedPointDecoder(cfg)

    def dataset_code(self, context: torch.Tensor, adj: torch.Tensor) -> DatasetCode:
        hidden, _ = self.encoder(context, adj)
        return self.decoder.dataset_code(hidden, adj, context)

    def forward(self, context: torch.Tensor, z: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """T(z) for query rows z given the context dataset: (B, n, d), (B, m, d), (B, d, d) -> (B, m, d)."""
        return self.decoder(self.dataset_code(context, adj), z, adj)
