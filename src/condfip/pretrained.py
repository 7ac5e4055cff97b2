"""Shipped weights: export from a training checkpoint, load offline (safetensors + a JSON model card)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from condfip.atomic import atomic_write, atomic_write_text
from condfip.errors import InputError
from condfip.model import CondFiP, ModelConfig

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "condfip.safetensors"
CARD_FILE = "condfip.json"
FORMAT_VERSION = 1


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_paths(path: str | Path | None) -> tuple[Path, Path]:
    """(safetensors file, card file) for a weights folder, a .safetensors file, or None (shipped)."""
    path = WEIGHTS_DIR if path is None else Path(path)
    if path.is_dir():
        return path / WEIGHTS_FILE, path / CARD_FILE
    return path, path.with_suffix(".json")


def read_weights(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and model card of a weights folder or file, with errors that say what is wrong."""
    weights, card_path = _weights_paths(path)
    if not weights.exists():
        raise InputError(f"weights file {weights} does not exist; pass a folder holding {WEIGHTS_FILE}")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"model card {card_path} is missing or unreadable ({err}); export the weights again") from None
    if card.get("format_version") != FORMAT_VERSION:
        raise InputError(f"weights {weights} have format version {card.get('format_version')!r}, this condfip "
                         f"reads version {FORMAT_VERSION}; use weights exported by this version")
    if card.get("sha256") and sha256(weights) != card["sha256"]:
        raise InputError(f"weights file {weights} does not match the sha256 in {card_path} (corrupt or replaced); "
                         "restore or re-export it")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise InputError(f"weights file {weights} is truncated or corrupt ({err}); restore or re-export it") from None
    return tensors, card


def read_checkpoint(path: str | Path) -> dict:
    """A training checkpoint's full state on the CPU (``condfip.train`` writes it): EMA, config, step, ..."""
    return torch.load(path, map_location="cpu", weights_only=False)


def load_state(source: str | Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Model weights for a warm start: a training checkpoint (its EMA weights) or exported weights. Weights of
    a shallower network with the same widths are grown into ``cfg`` (see ``grow_state``)."""
    source = Path(source) if str(source) != "pretrained" else WEIGHTS_DIR
    if source.suffix == ".pt":
        state = read_checkpoint(source)
        tensors, source_model = state["ema"], state["config"]["model"]
    else:
        tensors, card = read_weights(source)
        source_model = card["model"]
    source_cfg = ModelConfig.from_dict(source_model)
    return tensors if source_cfg == cfg else grow_state(tensors, source_cfg, cfg, source)


GROWABLE = ("encoder_layers", "code_layers", "decoder_layers")
# may be switched on (0 -> c, False -> True): the new part starts at zero, the function stays
SWITCHABLE = ("pair_features", "pair_values", "decoder_pair_weights", "decoder_context")


def grow_state(tensors: dict[str, torch.Tensor], source: ModelConfig, target: ModelConfig,
               name: str | Path = "the weights") -> dict[str, torch.Tensor]:
    """The weights of ``source`` in a network with more blocks (``target``; every other setting equal), computing
    the same function: the existing blocks keep their weights and the appended ones start as the identity.
    Encoder and code blocks are pre-LN residual blocks, so zeroing their attention and MLP output projections
    removes them; decoder blocks are gated by their zero-initialised adaptive-LayerNorm modulation."""
    free = GROWABLE + SWITCHABLE
    same = {k: v for k, v in source.to_dict().items() if k not in free}
    if same != {k: v for k, v in target.to_dict().items() if k not in free} or any(
            getattr(target, k) < getattr(source, k) for k in GROWABLE) or any(
            getattr(source, k) not in (0, getattr(target, k)) for k in SWITCHABLE):
        raise InputError(f"{name} have model config {source.to_dict()}, training asks for {target.to_dict()}; a "
                         f"warm start can only add blocks ({', '.join(GROWABLE)}) or "
                         f"switch on {', '.join(SWITCHABLE)}, keeping every other setting")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        grown = CondFiP(target).state_dict()
    for key, value in grown.items():
        if key in tensors:
            grown[key] = tensors[key].to(value.dtype)
        elif "_blocks." in key and key.endswith(("out.weight", "out.bias", "mlp.proj.weight", "mlp.proj.bias")):
            grown[key] = torch.zeros_like(value)
    return grown


def build_network(path: str | Path | None = None) -> tuple[CondFiP, dict]:
    """The network with loaded weights (eval mode) and its model card."""
    tensors, card = read_weights(path)
    try:
        network = CondFiP(ModelConfig.from_dict(card["model"]))
        network.load_state_dict(tensors)
    except InputError as err:  # a retired option switched on
        raise InputError(f"weights {path or WEIGHTS_DIR}: {err}") from None
    except (TypeError, KeyError, RuntimeError) as err:
        reason = " ".join(str(err).split())[:300]
        raise InputError(f"weights {path or WEIGHTS_DIR} do not fit this version's network ({reason}); "
                         "use weights exported by this version") from None
    return network.eval(), card


def checkpoint_network(checkpoint: str | Path) -> tuple[CondFiP, dict]:
    """A training checkpoint's EMA weights in a network of its own model config (eval mode), and the checkpoint."""
    state = read_checkpoint(checkpoint)
    network = CondFiP(ModelConfig.from_dict(state["config"]["model"]))
    network.load_state_dict(state["ema"])
    return network.eval(), state


def export_weights(checkpoint: str | Path, out_dir: str | Path, card: dict) -> Path:
    """Write the checkpoint's EMA weights (float32 safetensors) and a model card into out_dir, atomically."""
    state = read_checkpoint(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.float().contiguous() for k, v in state["ema"].items()}
    atomic_write(out / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    full_card = {"format_version": FORMAT_VERSION, "model": state["config"]["model"], "train": state["config"],
                 "step": state["step"], **card, "sha256": sha256(out / WEIGHTS_FILE)}
    atomic_write_text(out / CARD_FILE, json.dumps(full_card, indent=2) + "\n")
    return out / WEIGHTS_FILE
