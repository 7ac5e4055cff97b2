"""A tiny randomly initialised network exported like the shipped weights, for fast tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from condfip.model import CondFiP, ModelConfig


def make_weights(folder: Path, seed: int = 0, pairs: bool = False, context: bool = False) -> Path:
    """A tiny random network with non-zero decoder gates (so mechanisms depend on their parents); ``pairs``: with
    the pair statistics and the regression-free parent weights (``pair_values``, ``decoder_pair_weights``),
    non-zero; ``context``: with those and the decoder's attention across the context rows (``decoder_context``)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(width=16, heads=2, encoder_layers=1, code_layers=1, decoder_layers=1, mlp_ratio=2,
                      pair_features=4 if pairs or context else 0,
                      pair_values=pairs or context, decoder_pair_weights=pairs or context,
                      decoder_context=context)
    network = CondFiP(cfg)
    with torch.no_grad():
        for name, param in network.named_parameters():
            if "modulation" in name or "pair" in name:
                param.normal_(0.0, 0.5)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(folder / "condfip.safetensors"))
    digest = hashlib.sha256((folder / "condfip.safetensors").read_bytes()).hexdigest()
    card = {"format_version": 1, "model": cfg.to_dict(), "step": 0, "sha256": digest,
            "train": {"prior": "train", "context_sizes": [50, 100, 200, 400]}}
    (folder / "condfip.json").write_text(json.dumps(card))
    return folder
