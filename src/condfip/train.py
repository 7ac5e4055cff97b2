"""Training Cond-FiP on batches streamed from the simulator.

Two phases, as in the paper: the encoder learns to predict f(x) per token; then the decoder (with the
code blocks) learns T(z) = f(z) on held-out query rows while the encoder stays frozen (its EMA weights).

In the decoder phase a share of the query rows (``intervened_query_share``) is drawn from the true SCM under
random hard and shift interventions, with values up to ``intervened_beyond`` context SDs beyond the context's
range (``condfip.simulate.interventions``): T is then trained where samples, interventions and counterfactuals
use it, not only on observational rows.

Every step's data come from random streams keyed by (seed, step, chunk), so a run is a pure function of
its config: a resumed run replays exactly the batches an uninterrupted one would have seen, and the
learning rate is a function of the step (warm-up + cosine per phase). A checkpoint holds the model, the EMA
weights, the optimiser, the step and the torch RNG state, written atomically.

Data parallel: under ``torchrun`` each rank simulates its own chunks of the step's batch and gradients
are averaged with ``all_reduce`` (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from condfip.atomic import atomic_write
from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.model import CondFiP, ModelConfig
from condfip.simulate import get_prior, simulate, simulate_batch, streams
from condfip.simulate.interventions import intervened_rows

VALIDATION_SEED = 7_100_003  # the validation suite's own seed; the benchmark uses others
DESIGN_SEED = 7_100_004  # design measurements (tools/, experiments/): neither the validation suite's nor the benchmark's
VALIDATION_CELLS = [(p, m, d) for p in ("paper-in", "paper-out") for m in ("linear", "rff") for d in (10, 20)]


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: str = "train"
    seed: int = 0
    batch_size: int = 8  # datasets per step, all ranks together
    chunks: int = 1  # independently simulated chunks per step; a multiple of the number of ranks
    context_sizes: tuple[int, ...] = (50, 100, 200, 400)
    context_weights: tuple[float, ...] = (0.25, 0.35, 0.3, 0.1)
    query_rows: int = 100  # decoder phase: rows held out of the context, with targets f(z)
    intervened_query_share: float = 0.0  # decoder phase: share of the query rows drawn under random interventions
    intervened_beyond: float = 3.0  # their values reach this many context SDs beyond the context's range
    encoder_steps: int = 4000
    decoder_steps: int = 3000
    lr: float = 5e-4
    warmup: int = 200
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    eval_every: int = 250
    eval_datasets: int = 3  # per validation cell
    checkpoint_every: int = 50
    log_every: int = 10
    threads: int = 2
    cpu_bf16: bool = False  # bf16 autocast of the forward pass on CPU too (always on with CUDA); ~1.3x faster steps
    # parameters whose names contain one of these strings (parts just switched on in a warm start, e.g.
    # "context_") train at fresh_lr_scale times the learning rate: a zero-gated new path otherwise opens slowly
    fresh_parts: tuple[str, ...] = ()
    fresh_lr_scale: float = 1.0

    @property
    def total_steps(self) -> int:
        return self.encoder_steps + self.decoder_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        model = ModelConfig.from_dict(values.pop("model", {}))
        return cls(model=model, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# ---- data -----------------------------------------------------------------------------------------------
def step_shape(cfg: TrainConfig, step: int) -> tuple[int, int, str]:
    """Nodes, context rows and mechanism family shared by every chunk of a step."""
    prior = get_prior(cfg.prior)
    rng, _ = streams(cfg.seed, step)
    d = int(rng.integers(prior.nodes[0], prior.nodes[1] + 1))
    weights = np.asarray(cfg.context_weights, dtype=float)
    n_context = int(rng.choice(cfg.context_sizes, p=weights / weights.sum()))
    mech_w = np.asarray(prior.mechanism_weights or [1.0] * len(prior.mechanisms), dtype=float)
    mechanism = str(rng.choice(prior.mechanisms, p=mech_w / mech_w.sum()))
    return d, n_context, mechanism


def training_batch(cfg: TrainConfig, step: int, chunk_ids: list[int], device: torch.device) -> dict:
    """The step's data for the given chunks: float32 x, f, noise (B, rows, d) and adj (B, d, d)."""
    d, n_context, mechanism = step_shape(cfg, step)
    decoder_phase = step >= cfg.encoder_steps
    intervened = round(cfg.intervened_query_share * cfg.query_rows) if decoder_phase else 0
    rows = n_context + (cfg.query_rows - intervened if decoder_phase else 0)
    per_chunk = cfg.batch_size // cfg.chunks
    parts = []
    for chunk in chunk_ids:
        rng, gen = streams(cfg.seed, step, chunk + 1, device=device)
        sim = simulate_batch(get_prior(cfg.prior), per_chunk, d, rows, mechanism=mechanism, rng=rng, gen=gen,
                             device=device)
        part = {"x": sim.x, "f": sim.f, "noise": sim.noise, "adj": sim.adj}
        if intervened:
            x, f = intervened_rows(sim, intervened, n_context, rng=rng, gen=gen, beyond=cfg.intervened_beyond)
            part = {**part, "x": torch.cat([sim.x, x], 1), "f": torch.cat([sim.f, f], 1),
                    "noise": torch.cat([sim.noise, x - f], 1)}  # the intervened node's "noise" is x - f too
        parts.append(part)
    out = {k: torch.cat([p[k] for p in parts]).float() for k in ("x", "f", "noise")}
    out["adj"] = torch.cat([p["adj"] for p in parts])
    out["n_context"] = n_context
    return out


# ---- optimisation -------------------------------------------------------------------------------------
def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Warm-up then cosine decay to 10%, restarted at the start of each phase."""
    start, length = (0, cfg.encoder_steps) if step < cfg.encoder_steps else (cfg.encoder_steps, cfg.decoder_steps)
    t = step - start
    if t < cfg.warmup:
        return cfg.lr * (t + 1) / cfg.warmup
    progress = min(1.0, (t - cfg.warmup) / max(1, length - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def phase_loss(model: CondFiP, batch: dict, encoder_phase: bool) -> torch.Tensor:
    if encoder_phase:
        _, f_hat = model.encoder(batch["x"], batch["adj"])
        return (f_hat - batch["f"]).pow(2).mean()
    n = batch["n_context"]
    with torch.no_grad():
        hidden, _ = model.encoder(batch["x"][:, :n], batch["adj"])
    code = model.decoder.dataset_code(hidden, batch["adj"], batch["x"][:, :n])
    t_hat = model.decoder(code, batch["x"][:, n:], batch["adj"])
    return (t_hat - batch["f"][:, n:]).pow(2).mean()


class Trainer:
    """Holds the whole training state; ``run`` trains until ``cfg.total_steps``."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, device: str | torch.device = "cpu",
                 init_from: str | Path | None = None, quiet: bool = False):
        self.cfg, self.out = cfg, Path(out_dir)
        self.device = torch.device(device)
        self.quiet = quiet
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        if cfg.chunks % self.world or cfg.batch_size % cfg.chunks:
            raise ValueError("chunks must be a multiple of the number of ranks and divide batch_size")
        torch.manual_seed(cfg.seed)
        self.model = CondFiP(cfg.model).to(self.device)
        if init_from is not None:
            from condfip.pretrained import load_state

            self.model.load_state_dict(load_state(init_from, cfg.model))
        self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        named = list(self.model.named_parameters())
        fresh = [p for name, p in named if any(part in name for part in cfg.fresh_parts)]
        groups = [{"params": [p for name, p in named if not any(part in name for part in cfg.fresh_parts)],
                   "lr_scale": 1.0}]
        if fresh:
            groups.append({"params": fresh, "lr_scale": cfg.fresh_lr_scale})
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.step = 0
        self.history: list[dict] = []
        if (self.out / "checkpoint.pt").exists():
            self.load(self.out / "checkpoint.pt")
            if self.rank == 0:  # even when quiet: which state a run continues from is no progress line
                print(f"resuming from step {self.step} ({self.out / 'checkpoint.pt'})", flush=True)

    # -- state ---------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
        }

    def load(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        if ModelConfig.from_dict(state["config"]["model"]) != self.cfg.model:
            raise ValueError(f"{path} was trained with another model config: {state['config']['model']}")
        self.model.load_state_dict(state["model"])
        self.ema = state["ema"]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, scale in zip(self.optimizer.param_groups, (1.0, self.cfg.fresh_lr_scale)):
            group["lr_scale"] = scale  # a config value, not state: loading would drop it from older checkpoints
        torch.set_rng_state(state["torch_rng"])
        self.step, self.history = state["step"], state["history"]

    def save(self) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(self.state(), self.out / "checkpoint.pt")

    # -- one step --------------------------------------------------------------------------------------
    def train_step(self) -> float:
        cfg, step = self.cfg, self.step
        encoder_phase = step < cfg.encoder_steps
        if step == cfg.encoder_steps:  # the decoder phase trains on the encoder's EMA weights, frozen
            self.model.load_state_dict({**self.model.state_dict(),
                                        **{k: v for k, v in self.ema.items() if k.startswith("encoder.")}})
        trained = self.model.encoder if encoder_phase else self.model.decoder
        per_rank = cfg.chunks // self.world
        chunk_ids = list(range(self.rank * per_rank, (self.rank + 1) * per_rank))
        batch = training_batch(cfg, step, chunk_ids, self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step) * group["lr_scale"]
        self.model.train()
        bf16 = self.device.type == "cuda" or (self.device.type == "cpu" and cfg.cpu_bf16)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = phase_loss(self.model, batch, encoder_phase)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in trained.parameters() if p.grad is not None]
        if self.world > 1:
            for p in params:
                dist.all_reduce(p.grad)
                p.grad /= self.world
            loss_all = loss.detach().clone()
            dist.all_reduce(loss_all)
            loss = loss_all / self.world
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.dtype.is_floating_point:
                    self.ema[k].mul_(cfg.ema_decay).add_(v, alpha=1 - cfg.ema_decay)
                else:
                    self.ema[k].copy_(v)
        self.step += 1
        return float(loss.detach())

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, max_seconds: float | None = None, log_path: str | Path | None = None) -> list[float]:
        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        losses: list[float] = []
        start, window_start, window_steps = time.time(), time.time(), 0
        self.out.mkdir(parents=True, exist_ok=True)
        if log_path and self.rank == 0 and Path(log_path).exists():
            # rows past the checkpoint's step were written before an interruption and are about to be replayed
            # (the same batches): keep only the rows the checkpoint covers, so no step appears twice
            from condfip.atomic import atomic_write_text

            kept = [line for line in Path(log_path).read_text().splitlines(keepends=True)
                    if line.strip() and json.loads(line).get("step", 0) <= self.step]
            atomic_write_text(log_path, "".join(line if line.endswith("\n") else line + "\n" for line in kept))
        log = open(log_path, "a", buffering=1) if (log_path and self.rank == 0) else None  # noqa: SIM115
        try:
            while self.step < cfg.total_steps:
                loss = self.train_step()
                losses.append(loss)
                window_steps += 1
                if log is not None:
                    log.write(json.dumps({"step": self.step, "loss": loss}) + "\n")
                if self.step % cfg.log_every == 0 and self.rank == 0 and not self.quiet:
                    rate = window_steps * cfg.batch_size / (time.time() - window_start)
                    phase = "encoder" if self.step <= cfg.encoder_steps else "decoder"
                    bar = progress_bar(self.step, cfg.total_steps)
                    print(f"{bar} step {self.step}/{cfg.total_steps} {phase} loss {loss:.4f} "
                          f"lr {learning_rate(cfg, self.step - 1):.2e} {rate:.1f} datasets/s", flush=True)
                    window_start, window_steps = time.time(), 0
                if (self.step % cfg.eval_every == 0 or self.step == cfg.total_steps) and self.rank == 0:
                    self.history.append({"step": self.step, **self.evaluate()})
                    if not self.quiet:
                        print("validation", json.dumps(self.history[-1]), flush=True)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.total_steps:
                    self.save()
                if max_seconds is not None and time.time() - start > max_seconds:
                    self.save()
                    break
        finally:
            if log is not None:
                log.close()
        return losses

    def ema_model(self) -> CondFiP:
        model = CondFiP(self.cfg.model).to(self.device)
        model.load_state_dict(self.ema)
        return model.eval()

    def evaluate(self) -> dict:
        return validation_scores(self.ema_model(), self.cfg.eval_datasets, self.device)


# ---- validation -------------------------------------------------------------------------------------
def validation_dataset(preset: str, mechanism: str, d: int, k: int, device: torch.device | None = None):
    """The k-th SCM of a validation cell with 800 rows (400 context + 400 query), on the validation seed."""
    return simulate(get_prior(preset), nodes=d, samples=800, seed=VALIDATION_SEED, index=1000 * d + k,
                    mechanism=mechanism, device=device)


def validation_intervened_rows(ds, k: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """400 rows of the k-th SCM of a validation cell under random interventions reaching 3 context SDs beyond
    the range of its 400 context rows, with their f(z): a fixed draw of its own stream."""
    rng, gen = streams(VALIDATION_SEED, 1000 * len(ds.scm.columns) + k, 1, device=device or "cpu")
    x, f = intervened_rows(ds.scm.batch, 400, 400, rng=rng, gen=gen)
    return x.float(), f.float()


@torch.no_grad()
def validation_scores(model: CondFiP, per_cell: int, device: torch.device) -> dict:
    """On the validation suite (per cell: preset/mechanism/d, 400 context + 400 query rows), nodes with parents:
    noise RMSE abducted with the encoder head (``enc``) and with the decoder (``dec``), and the decoder's
    mechanism RMSE |T(z) - f(z)| on 400 rows drawn under random interventions up to 3 context SDs beyond the
    context's range (``int``, where generation uses T): per cell and their means."""
    model.eval()
    scores: dict[str, float] = {}
    for preset, mechanism, d in VALIDATION_CELLS:
        enc, dec, intervened = [], [], []
        for k in range(per_cell):
            ds = validation_dataset(preset, mechanism, d, k, device)
            batch = ds.scm.batch
            x, noise, adj = batch.x.float(), batch.noise[0, 400:].cpu().numpy(), batch.adj
            scored = nodes_with_parents(adj[0].cpu().numpy())
            _, f_enc = model.encoder(x, adj)
            enc.append(rmse_per_sample(noise, (x - f_enc)[0, 400:].cpu().numpy(), scored))
            code = model.dataset_code(x[:, :400], adj)
            memory = model.decoder.context_memory(code, adj)
            t = model.decoder(code, x[:, 400:], adj, memory=memory)
            dec.append(rmse_per_sample(noise, (x[:, 400:] - t)[0].cpu().numpy(), scored))
            z, f = validation_intervened_rows(ds, k, device)
            t = model.decoder(code, z, adj, memory=memory)
            intervened.append(rmse_per_sample(f[0].cpu().numpy(), t[0].cpu().numpy(), scored))
        cell = f"{preset}/{mechanism}/d{d}"
        scores[f"enc {cell}"], scores[f"dec {cell}"] = float(np.mean(enc)), float(np.mean(dec))
        scores[f"int {cell}"] = float(np.mean(intervened))
    for kind in ("enc", "dec", "int"):
        scores[f"{kind} mean"] = float(np.mean([v for k, v in scores.items() if k.startswith(kind + " ")]))
    return scores


# ---- helpers ----------------------------------------------------------------------------------------
def atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def progress_bar(step: int, total: int, width: int = 20) -> str:
    filled = int(width * step / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def init_distributed() -> torch.device:
    """Join the torchrun group if there is one; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")


def with_overrides(cfg: TrainConfig, **changes) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
