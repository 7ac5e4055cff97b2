"""Tests for condfip.train and condfip.pretrained: learning-rate schedule, phase switch, pure data streams,
exact resume (in process and after SIGKILL of the ``condfip train`` command), data parallel training under
torchrun, and the weights export round trip. Tiny configs throughout so each test takes seconds."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from condfip import InputError
from condfip.model import CondFiP, ModelConfig
from condfip.pretrained import (
    CARD_FILE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    build_network,
    export_weights,
    grow_state,
    load_state,
    sha256,
)
from condfip.simulate import get_prior, simulate
from condfip.simulate.prior import PRESETS, Prior
from condfip.train import TrainConfig, Trainer, learning_rate, training_batch

TINY_MODEL = ModelConfig(width=16, heads=2, encoder_layers=1, code_layers=1, decoder_layers=1)
CPU = torch.device("cpu")
# training batches draw d from the prior's node range: a test preset with 5-8 nodes keeps every step tiny.
# Subprocesses register it the same way before running the command line.
TINY_PRIOR = "test-tiny"
REGISTER_PRIOR = (f"from condfip.simulate.prior import PRESETS, Prior; "
                  f"PRESETS[{TINY_PRIOR!r}] = Prior(mechanisms=('linear', 'rff'), nodes=(5, 8))")
# the `condfip` command line, run by this interpreter (no reliance on PATH)
CLI = [sys.executable, "-c", f"{REGISTER_PRIOR}; from condfip.cli import app; app()"]


@pytest.fixture(scope="module", autouse=True)
def tiny_prior_one_thread():
    """Register the tiny preset; one intra-op thread (tiny tensors; on busy cores two threads mostly spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, TINY_PRIOR, Prior(mechanisms=("linear", "rff"), nodes=(5, 8)))
        yield
    torch.set_num_threads(threads)


def tiny_config(**changes) -> TrainConfig:
    values = {"model": TINY_MODEL, "prior": TINY_PRIOR, "batch_size": 4, "chunks": 1,
              "context_sizes": (30, 40), "context_weights": (0.5, 0.5), "query_rows": 10, "encoder_steps": 4,
              "decoder_steps": 4, "warmup": 2, "eval_every": 10_000, "eval_datasets": 1,
              "checkpoint_every": 10_000, "log_every": 10_000, "threads": 1}
    return TrainConfig(**{**values, **changes})


def _subprocess_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_states_equal(a: dict, b: dict, what: str = "state"):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{what} differs in {different[:5]}"


# ---- learning rate ------------------------------------------------------------------------------------
def test_learning_rate_warmup_then_cosine_per_phase():
    cfg = tiny_config(lr=1e-3, warmup=10, encoder_steps=100, decoder_steps=60)
    lr = [learning_rate(cfg, s) for s in range(cfg.total_steps)]
    # warm-up: linear from lr/warmup up to lr
    assert lr[0] == pytest.approx(1e-4)
    assert lr[9] == pytest.approx(1e-3)
    assert all(b > a for a, b in itertools.pairwise(lr[:10]))
    # cosine decay to 10 % of lr over the rest of the phase
    assert lr[10] == pytest.approx(1e-3)
    assert lr[10 + 45] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert all(b <= a for a, b in itertools.pairwise(lr[10:100]))
    assert 1e-4 <= lr[99] < 1.01e-4
    # the decoder phase restarts warm-up and cosine over its own length
    assert lr[100] == pytest.approx(1e-4)
    assert lr[109] == pytest.approx(1e-3)
    assert lr[110 + 25] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert 1e-4 <= lr[159] < 1.01e-4
    assert min(lr) >= 1e-4 - 1e-12 and max(lr) <= 1e-3 + 1e-12


def test_trainer_applies_the_scheduled_learning_rate(tmp_path):
    cfg = tiny_config(lr=2e-3, warmup=2, encoder_steps=3, decoder_steps=3)
    trainer = Trainer(cfg, tmp_path, device=CPU, quiet=True)
    for step in range(cfg.total_steps):
        trainer.train_step()
        assert trainer.optimizer.param_groups[0]["lr"] == learning_rate(cfg, step)


def test_phase_switch_copies_ema_encoder_and_freezes_it(tmp_path):
    cfg = tiny_config(encoder_steps=2, decoder_steps=3, ema_decay=0.5)
    trainer = Trainer(cfg, tmp_path, device=CPU, quiet=True)
    decoder_before = {k: v for k, v in _params(trainer.model).items() if k.startswith("decoder.")}
    trainer.train_step()
    trainer.train_step()
    state = _params(trainer.model)
    # encoder phase: the decoder is untouched (no gradient, so no weight decay either)
    _assert_states_equal({k: state[k] for k in decoder_before}, decoder_before, "decoder, encoder phase")
    ema_encoder = {k: v.clone() for k, v in trainer.ema.items() if k.startswith("encoder.")}
    live_encoder = {k: v for k, v in state.items() if k.startswith("encoder.")}
    assert any(not torch.equal(ema_encoder[k], live_encoder[k]) for k in ema_encoder)  # else the test is void

    trainer.train_step()  # step == encoder_steps: the switch
    after = _params(trainer.model)
    _assert_states_equal({k: after[k] for k in ema_encoder}, ema_encoder, "live encoder after the switch")
    assert any(not torch.equal(after[k], decoder_before[k]) for k in decoder_before)  # the decoder now trains
    trainer.train_step()
    _assert_states_equal({k: v for k, v in _params(trainer.model).items() if k.startswith("encoder.")},
                         ema_encoder, "frozen encoder in the decoder phase")


# ---- data streams -------------------------------------------------------------------------------------
def _batches_equal(a: dict, b: dict) -> bool:
    same = all(torch.equal(a[k], b[k]) for k in ("x", "f", "noise", "adj"))
    return same and a["n_context"] == b["n_context"]


@pytest.mark.parametrize("step,share", [(0, 0.0), (5, 0.0), (5, 0.5)])  # encoder / decoder phase; intervened rows
def test_training_batch_is_a_pure_function_of_seed_step_and_chunks(step, share):
    cfg = tiny_config(chunks=2, intervened_query_share=share)
    a = training_batch(cfg, step, [0, 1], CPU)
    torch.randn(10)  # global RNG use in between must not matter
    b = training_batch(cfg, step, [0, 1], CPU)
    assert _batches_equal(a, b)
    assert a["x"].dtype == torch.float32 and a["adj"].dtype == torch.bool
    rows = a["n_context"] + (cfg.query_rows if step >= cfg.encoder_steps else 0)
    assert a["x"].shape[:2] == (4, rows) and a["adj"].shape[0] == 4
    torch.testing.assert_close(a["x"], a["f"] + a["noise"], rtol=1e-5, atol=1e-5)
    # chunks are independent streams: generating them one at a time gives the same data
    c0, c1 = training_batch(cfg, step, [0], CPU), training_batch(cfg, step, [1], CPU)
    joined = {k: torch.cat([c0[k], c1[k]]) for k in ("x", "f", "noise", "adj")}
    assert _batches_equal(a, {**joined, "n_context": c0["n_context"]})
    assert not torch.equal(c0["x"], c1["x"])
    # and the stream does depend on the step and on the seed
    other_step = training_batch(cfg, step + 1, [0, 1], CPU)
    assert other_step["x"].shape != a["x"].shape or not torch.equal(other_step["x"], a["x"])
    other_seed = training_batch(tiny_config(chunks=2, seed=1), step, [0, 1], CPU)
    assert other_seed["x"].shape != a["x"].shape or not torch.equal(other_seed["x"], a["x"])


def test_intervened_query_rows_are_labelled_by_the_true_mechanisms_and_reach_beyond_the_range():
    """The decoder's interventional training rows: f(z) is the SCM's own mechanism at those rows (every node),
    the rows differ from observational ones, and intervened values reach up to 3 SDs beyond the context."""
    from condfip.simulate import simulate_batch, streams
    from condfip.simulate.generate import permute_nodes
    from condfip.simulate.interventions import intervened_rows, to_canonical

    rng, gen = streams(3, 4)
    sim = simulate_batch(get_prior("paper-in"), 3, 8, 200, mechanism="rff", rng=rng, gen=gen)
    x, f = intervened_rows(sim, 120, 200, rng=rng, gen=gen, groups=4, beyond=3.0)
    assert x.shape == f.shape == (3, 120, 8)
    raw = to_canonical(sim.mean[:, None] + sim.std[:, None] * x, sim.perm)
    truth = (permute_nodes(sim.scms.mechanisms(raw), sim.perm) - sim.mean[:, None]) / sim.std[:, None]
    torch.testing.assert_close(f, truth, rtol=1e-9, atol=1e-9)
    lo, hi = sim.x.amin(dim=1, keepdim=True), sim.x.amax(dim=1, keepdim=True)
    beyond = torch.maximum(lo - x, x - hi).clamp(min=0)
    assert (beyond > 1.0).any() and (beyond > 0).float().mean() < 0.5
    # hard interventions stay within 3 SDs of the range; only shifts and descendants move further
    assert float(beyond.amax()) < 30


def test_the_context_reading_decoder_trains_on_intervened_rows(tmp_path):
    from dataclasses import replace

    cfg = tiny_config(model=replace(TINY_MODEL, pair_features=4, decoder_context=True), intervened_query_share=0.5,
                      encoder_steps=1, decoder_steps=3)
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if "context_" in k}
    losses = trainer.run()
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "the context attention did not train"


def test_fresh_parts_train_at_a_scaled_learning_rate(tmp_path):
    from dataclasses import replace

    cfg = tiny_config(model=replace(TINY_MODEL, pair_features=4, decoder_context=True), encoder_steps=0,
                      decoder_steps=3, fresh_parts=("context_",), fresh_lr_scale=10.0, checkpoint_every=1)
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    trainer.run(max_seconds=None)
    plain, fresh = trainer.optimizer.param_groups
    assert fresh["lr"] == pytest.approx(10 * plain["lr"]) and plain["lr"] == pytest.approx(learning_rate(cfg, 2))
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert fresh["params"] and all("context_" in names[id(p)] for p in fresh["params"])
    assert not any("context_" in names[id(p)] for p in plain["params"])
    resumed = Trainer(cfg, tmp_path / "run", quiet=True)  # the scale is the config's after a resume too
    assert [g["lr_scale"] for g in resumed.optimizer.param_groups] == [1.0, 10.0]


def test_validation_scores_report_the_decoder_on_intervened_rows():
    from condfip.train import validation_scores

    model = CondFiP(TINY_MODEL)
    scores = validation_scores(model, 1, CPU)
    assert {"enc mean", "dec mean", "int mean"} <= scores.keys()
    assert all(math.isfinite(v) for v in scores.values())


# ---- exact resume in process --------------------------------------------------------------------------
def test_checkpoint_resume_in_process_is_bitwise_exact(tmp_path):
    cfg = tiny_config(encoder_steps=4, decoder_steps=2)  # the resumed part crosses the phase switch
    straight = Trainer(cfg, tmp_path / "straight", device=CPU, quiet=True)
    losses_straight = [straight.train_step() for _ in range(6)]

    first = Trainer(cfg, tmp_path / "resumed", device=CPU, quiet=True)
    losses = [first.train_step() for _ in range(3)]
    first.save()
    assert not (tmp_path / "resumed" / "checkpoint.pt.tmp").exists()
    del first
    torch.manual_seed(12345)  # a polluted global RNG must not matter: the checkpoint restores it
    resumed = Trainer(cfg, tmp_path / "resumed", device=CPU, quiet=True)
    assert resumed.step == 3
    losses += [resumed.train_step() for _ in range(3)]

    assert losses == losses_straight  # bitwise, not approximately
    _assert_states_equal(_params(resumed.model), _params(straight.model), "model")
    _assert_states_equal(resumed.ema, straight.ema, "EMA")


def test_cpu_bf16_autocast_is_deterministic_resumable_and_close_to_float32(tmp_path):
    cfg = tiny_config(encoder_steps=3, decoder_steps=2, cpu_bf16=True)
    straight = Trainer(cfg, tmp_path / "straight", device=CPU, quiet=True)
    losses_straight = [straight.train_step() for _ in range(5)]
    first = Trainer(cfg, tmp_path / "resumed", device=CPU, quiet=True)
    losses = [first.train_step() for _ in range(2)]
    first.save()
    resumed = Trainer(cfg, tmp_path / "resumed", device=CPU, quiet=True)
    losses += [resumed.train_step() for _ in range(3)]
    assert losses == losses_straight
    fp32 = Trainer(tiny_config(encoder_steps=3, decoder_steps=2), tmp_path / "fp32", device=CPU, quiet=True)
    loss_fp32 = fp32.train_step()
    assert loss_fp32 != losses[0]  # bf16 really ran ...
    assert abs(loss_fp32 - losses[0]) < 0.02 * loss_fp32  # ... and computes the same loss to bf16 precision


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    trainer = Trainer(tiny_config(), tmp_path, device=CPU, quiet=True)
    trainer.train_step()
    trainer.save()
    narrow = ModelConfig(width=8, heads=2, encoder_layers=1, code_layers=1, decoder_layers=1)
    other = tiny_config(model=narrow)
    with pytest.raises(ValueError, match="another model config"):
        Trainer(other, tmp_path, device=CPU, quiet=True)


# the config of the run `abL` in progress when the options were retired (issue 24), as written by the version
# before: it names the retired model options at their off values, and must still parse (and resume)
RUN_IN_PROGRESS = {
    "model": {"width": 64, "heads": 2, "node_heads": None, "pair_features": 8, "pair_values": True,
              "linear_feature": False, "decoder_linear": False, "decoder_pair_weights": True, "encoder_layers": 6,
              "code_layers": 1, "decoder_layers": 4, "mlp_ratio": 2, "max_context": 1000},
    "prior": "train", "seed": 22, "batch_size": 8, "chunks": 1, "context_sizes": [50, 100, 200, 400],
    "context_weights": [0.2, 0.35, 0.3, 0.15], "query_rows": 200, "encoder_steps": 0, "decoder_steps": 1800,
    "lr": 0.0003, "warmup": 100, "weight_decay": 0.01, "betas": [0.9, 0.95], "grad_clip": 1.0, "ema_decay": 0.995,
    "eval_every": 500, "eval_datasets": 3, "checkpoint_every": 50, "log_every": 10, "threads": 1,
    "cpu_bf16": True, "intervened_query_share": 0.5,
}


def test_the_config_of_a_run_in_progress_still_parses_and_warm_starts_from_the_shipped_weights():
    cfg = TrainConfig.from_dict(RUN_IN_PROGRESS)
    assert cfg.intervened_query_share == 0.5 and cfg.betas == (0.9, 0.95) and cfg.model.decoder_pair_weights
    shipped = json.loads((WEIGHTS_DIR / "condfip.json").read_text())["model"]
    assert cfg.model == ModelConfig.from_dict(shipped)  # --init-from pretrained: no growth needed
    assert set(load_state("pretrained", cfg.model)) == set(CondFiP(cfg.model).state_dict())


def test_a_checkpoint_written_before_the_retirement_resumes(tmp_path):
    trainer = Trainer(tiny_config(), tmp_path, device=CPU, quiet=True)
    trainer.train_step()
    trainer.save()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["config"]["model"].update(node_heads=None, linear_feature=False, decoder_linear=False)
    torch.save(state, tmp_path / "checkpoint.pt")
    assert Trainer(tiny_config(), tmp_path, device=CPU, quiet=True).step == 1


# ---- exact resume under SIGKILL of the command line ---------------------------------------------------
KILL_CONFIG = {
    "model": TINY_MODEL.to_dict(), "prior": TINY_PRIOR, "batch_size": 4, "context_sizes": [30, 40],
    "context_weights": [0.5, 0.5], "query_rows": 10, "encoder_steps": 12, "decoder_steps": 8, "warmup": 2,
    "eval_every": 10_000,
    "eval_datasets": 0,  # the final validation has nothing to simulate: keeps the run short
    "checkpoint_every": 4, "log_every": 10_000, "threads": 1,
}


def _train_command(out: Path, config: Path) -> list[str]:
    return [*CLI, "train", "--out", str(out), "--config", str(config), "--quiet"]


def _logged_losses(path: Path) -> dict[int, float]:
    """The last logged loss of every step in a losses.jsonl (a resumed run logs its replayed steps again)."""
    losses = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        losses[record["step"]] = record["loss"]
    return losses


def _kill_after_first_checkpoint(out: Path, config: Path, timeout: float = 600) -> tuple[int, int]:
    """Start ``condfip train``, SIGKILL it as soon as a checkpoint exists; returns (return code, step of the
    surviving checkpoint, 0 if none)."""
    proc = subprocess.Popen(_train_command(out, config), env=_subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            if (out / "checkpoint.pt").exists():
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        else:
            if proc.poll() is None:
                proc.kill()
                pytest.fail("condfip train wrote no checkpoint in time")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"condfip train failed: {err.decode()[-2000:]}")
    step = 0
    if (out / "checkpoint.pt").exists():  # atomic writes: whatever is there must load
        step = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["step"]
    return proc.returncode, step


@pytest.fixture(scope="module")
def killed_and_reference_runs(tmp_path_factory):
    """An uninterrupted `condfip train` run and one SIGKILLed after a checkpoint, then rerun to completion."""
    root = tmp_path_factory.mktemp("sigkill")
    config = root / "tiny.json"
    config.write_text(json.dumps(KILL_CONFIG))
    total = KILL_CONFIG["encoder_steps"] + KILL_CONFIG["decoder_steps"]
    reference = subprocess.Popen(_train_command(root / "reference", config), env=_subprocess_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for attempt in range(3):  # a kill that lands too late (or after the end) is retried in a fresh folder
            killed = root / f"killed{attempt}"
            returncode, resume_step = _kill_after_first_checkpoint(killed, config)
            if returncode == -signal.SIGKILL and resume_step <= total - 5:
                break
        else:
            pytest.fail("could not kill condfip train between two checkpoints in three attempts")
        after_kill = (killed / "losses.jsonl").read_text() if (killed / "losses.jsonl").exists() else ""
        rerun = subprocess.run(_train_command(killed, config), env=_subprocess_env(), capture_output=True,
                               timeout=900, check=False)
        assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
        _, err = reference.communicate(timeout=900)
        assert reference.returncode == 0, err.decode()[-2000:]
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    return {"reference": root / "reference", "killed": killed, "resume_step": resume_step, "total": total,
            "log_after_kill": after_kill}


def test_resume_says_so_and_logs_each_step_once(tmp_path, capsys):
    cfg = tiny_config(encoder_steps=4, decoder_steps=2)
    log = tmp_path / "run" / "losses.jsonl"
    first = Trainer(cfg, tmp_path / "run", device=CPU, quiet=True)
    first.run(log_path=log)
    assert "resuming" not in capsys.readouterr().out
    # an interrupted run: the checkpoint is at step 3, the log already has steps 4-6 that a resume replays
    first.step = 3
    first.save()
    resumed = Trainer(cfg, tmp_path / "run", device=CPU, quiet=True)
    assert "resuming from step 3" in capsys.readouterr().out
    resumed.run(log_path=log)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(1, cfg.total_steps + 1))


def test_sigkill_then_rerun_matches_uninterrupted_run_bitwise(killed_and_reference_runs):
    runs = killed_and_reference_runs
    resume, total = runs["resume_step"], runs["total"]
    reference = _logged_losses(runs["reference"] / "losses.jsonl")
    assert sorted(reference) == list(range(1, total + 1))
    resumed = _logged_losses(runs["killed"] / "losses.jsonl")
    after = [s for s in range(resume + 1, total + 1)]
    assert len(after) >= 5
    assert [resumed.get(s) for s in after] == [reference[s] for s in after]  # ==, not allclose
    # the final checkpoints agree bitwise too: model, EMA, step
    a = torch.load(runs["reference"] / "checkpoint.pt", map_location="cpu", weights_only=False)
    b = torch.load(runs["killed"] / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert a["step"] == b["step"] == total
    _assert_states_equal(b["model"], a["model"], "final model")
    _assert_states_equal(b["ema"], a["ema"], "final EMA")


def test_sigkill_keeps_the_loss_log_of_checkpointed_steps(killed_and_reference_runs):
    """Every step up to the surviving checkpoint must already be in losses.jsonl when the process dies:
    after the rerun the log then has one loss per step and no torn line."""
    runs = killed_and_reference_runs
    resume, total = runs["resume_step"], runs["total"]
    logged_before_kill = {json.loads(line)["step"] for line in runs["log_after_kill"].splitlines()}
    missing = sorted(set(range(1, resume + 1)) - logged_before_kill)
    assert not missing, (f"steps {missing} were trained and checkpointed (checkpoint at step {resume}) but "
                         "their losses never reached losses.jsonl before SIGKILL: the log is not flushed")
    assert sorted(_logged_losses(runs["killed"] / "losses.jsonl")) == list(range(1, total + 1))


# ---- data parallel under torchrun ---------------------------------------------------------------------
DDP_SCRIPT = """
import sys
from pathlib import Path

import torch
import torch.distributed as dist

{register}
from condfip.train import TrainConfig, Trainer, init_distributed

torch.set_num_threads(1)
out = Path(sys.argv[1])
cfg = TrainConfig.from_dict({config})
device = init_distributed()
assert dist.is_initialized() and dist.get_world_size() == 2
trainer = Trainer(cfg, out / "run", device=device, quiet=True)
losses, grads = [], []
for _ in range({steps}):
    losses.append(trainer.train_step())
    grads.append({{n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}})
state = {{"params": trainer.model.state_dict(), "ema": trainer.ema, "losses": losses, "grads": grads}}
torch.save(state, out / f"rank{{dist.get_rank()}}.pt")
dist.barrier()
dist.destroy_process_group()
"""


def _sample_key_bias(name: str, width: int) -> slice | None:
    """The key part of a sample-attention qkv bias: plain softmax is invariant to it, so its gradient is zero
    up to rounding (~1e-11) and Adam turns that noise into lr-sized steps that differ between two
    summation orders. Every other parameter must match DDP vs single process to 1e-6."""
    return slice(width, 2 * width) if ".sample_blocks." in name and name.endswith("qkv.bias") else None


def test_ddp_two_ranks_match_single_process(tmp_path):
    cfg = tiny_config(chunks=2, batch_size=4, encoder_steps=2, decoder_steps=2)  # crosses the phase switch
    steps = 3
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(register=REGISTER_PRIOR, config=repr(cfg.to_dict()), steps=steps))
    env = _subprocess_env()
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path)]
    try:
        result = subprocess.run(command, env=env, capture_output=True, timeout=600, cwd=tmp_path,
                                check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun with 2 ranks did not finish in 600 s (hung?)")
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    _assert_states_equal(r1["params"], r0["params"], "rank 1 vs rank 0 parameters")
    _assert_states_equal(r1["ema"], r0["ema"], "rank 1 vs rank 0 EMA")
    assert r0["losses"] == r1["losses"]

    single = Trainer(cfg, tmp_path / "single", device=CPU, quiet=True)  # one process simulates both chunks
    initial = _params(single.model)
    losses = []
    for step in range(steps):
        losses.append(single.train_step())
        grads = {n: p.grad for n, p in single.model.named_parameters() if p.grad is not None}
        # the ranks' averaged (and clipped) gradients are the single process's gradients
        assert grads.keys() == r0["grads"][step].keys()
        for name, g in grads.items():
            torch.testing.assert_close(r0["grads"][step][name], g, rtol=1e-4, atol=1e-6,
                                       msg=f"step {step}: averaged gradient of {name}")
            if (keys := _sample_key_bias(name, cfg.model.width)) is not None:
                assert g[keys].abs().max() < 1e-7  # the premise of the exception below
    assert r0["losses"] == pytest.approx(losses, rel=1e-5, abs=1e-6)
    params = _params(single.model)
    assert r0["params"].keys() == params.keys()
    for name, value in params.items():
        ddp = r0["params"][name].clone()
        if (keys := _sample_key_bias(name, cfg.model.width)) is not None:
            torch.testing.assert_close(ddp[keys], value[keys], rtol=0, atol=steps * cfg.lr)
            ddp[keys] = value[keys]
        torch.testing.assert_close(ddp, value, rtol=0, atol=1e-6, msg=f"DDP vs single process: {name}")
    assert any(not torch.equal(params[k], v) for k, v in initial.items())


# ---- exported weights ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    cfg = tiny_config(encoder_steps=2, decoder_steps=2, ema_decay=0.5)
    trainer = Trainer(cfg, root / "run", device=CPU, quiet=True)
    for _ in range(3):
        trainer.train_step()
    trainer.save()
    path = export_weights(root / "run" / "checkpoint.pt", root / "weights", {"note": "test export"})
    return trainer, root / "weights", path


def test_export_round_trip_reproduces_ema_outputs(exported):
    trainer, folder, path = exported
    assert path == folder / WEIGHTS_FILE
    assert not list(folder.glob("*.tmp"))
    network, card = build_network(folder)
    assert not network.training
    assert card["format_version"] == 1 and card["step"] == 3 and card["note"] == "test export"
    assert card["model"] == TINY_MODEL.to_dict()
    assert card["sha256"] == sha256(path)
    ema = trainer.ema_model()
    _assert_states_equal(network.state_dict(), ema.state_dict(), "exported weights vs EMA")
    live = trainer.model.state_dict()
    assert any(not torch.equal(trainer.ema[k], v) for k, v in live.items())  # the EMA is not the live model
    gen = torch.Generator().manual_seed(0)
    x, z = torch.randn(2, 12, 6, generator=gen), torch.randn(2, 4, 6, generator=gen)
    adj = torch.triu(torch.rand(2, 6, 6, generator=gen) < 0.5, diagonal=1)
    with torch.no_grad():
        assert torch.equal(network(x, z, adj), ema(x, z, adj))
        assert torch.equal(network.encoder(x, adj)[1], ema.encoder(x, adj)[1])
    # the safetensors file alone (path to the file, card beside it) works too
    network2, _ = build_network(path)
    _assert_states_equal(network2.state_dict(), network.state_dict(), "loaded by file path")
    # and load_state gives the same tensors for a warm start
    _assert_states_equal(load_state(folder, TINY_MODEL), network.state_dict(), "load_state")


def test_truncated_weights_raise_input_error_naming_the_file(exported, tmp_path):
    _, folder, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    data = (bad / WEIGHTS_FILE).read_bytes()
    for keep in (len(data) // 2, 7, 0):
        (bad / WEIGHTS_FILE).write_bytes(data[:keep])
        with pytest.raises(InputError) as info:
            build_network(bad)
        assert str(bad / WEIGHTS_FILE) in str(info.value)


def test_other_format_version_raises_input_error_naming_the_file(exported, tmp_path):
    _, folder, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    card = json.loads((bad / CARD_FILE).read_text())
    for version in (2, None, "1"):
        card["format_version"] = version
        (bad / CARD_FILE).write_text(json.dumps(card))
        with pytest.raises(InputError, match="format version") as info:
            build_network(bad)
        assert str(bad / WEIGHTS_FILE) in str(info.value)


def test_missing_card_or_weights_raise_input_error_naming_the_file(exported, tmp_path):
    _, folder, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / CARD_FILE).unlink()
    with pytest.raises(InputError) as info:
        build_network(bad)
    assert str(bad / CARD_FILE) in str(info.value)
    with pytest.raises(InputError) as info:
        build_network(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_weights_of_another_model_config_are_refused(exported):
    _, folder, _ = exported
    other = ModelConfig(width=8, heads=2, encoder_layers=1, code_layers=1, decoder_layers=1)
    with pytest.raises(InputError, match="model config"):
        load_state(folder, other)


def _assert_same_outputs(a: CondFiP, b: CondFiP) -> tuple[torch.Tensor, torch.Tensor]:
    """Both networks' encoder heads and decoders agree on a simulated dataset; returns its x and adj."""
    ds = simulate(get_prior("paper-in"), nodes=6, samples=60, seed=5, mechanism="rff")
    x, adj = ds.scm.batch.x.float(), ds.scm.batch.adj
    with torch.no_grad():
        torch.testing.assert_close(a.encoder(x, adj)[1], b.encoder(x, adj)[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(a(x[:, :40], x[:, 40:], adj), b(x[:, :40], x[:, 40:], adj), rtol=0, atol=1e-6)
    return x, adj


def test_a_deeper_network_warm_starts_from_shallower_weights_with_the_same_outputs(exported):
    """Growing adds identity blocks: the deeper network computes exactly what the exported one does (encoder
    head and decoder T), while its new blocks still get gradients, so training can use them."""
    _, folder, _ = exported
    network, _ = build_network(folder)
    with torch.no_grad():  # non-trivial decoder gates, so an appended block's identity is not a side effect of zeros
        for block in network.decoder.blocks:
            block.modulation.weight.normal_(0, 0.2)
            block.modulation.bias.normal_(0, 0.2)
    deeper_cfg = ModelConfig(**{**TINY_MODEL.to_dict(), "encoder_layers": 2, "code_layers": 2, "decoder_layers": 2})
    deeper = CondFiP(deeper_cfg)
    deeper.load_state_dict(grow_state(network.state_dict(), TINY_MODEL, deeper_cfg))
    deeper.eval()
    x, adj = _assert_same_outputs(deeper, network)
    deeper.train()
    deeper(x[:, :40], x[:, 40:], adj).pow(2).sum().backward()
    for new in (deeper.encoder.node_blocks[1].out.weight, deeper.decoder.node_blocks[1].mlp.proj.weight,
                deeper.decoder.blocks[1].modulation.weight):
        assert new.grad is not None and new.grad.abs().sum() > 0
    # the exported folder grows the same way through load_state, the warm start's entry point
    _assert_states_equal(load_state(folder, deeper_cfg), grow_state(load_state(folder, TINY_MODEL), TINY_MODEL,
                                                                     deeper_cfg), "grown state")
    with pytest.raises(InputError, match="can only add blocks"):
        grow_state(deeper.state_dict(), deeper_cfg, TINY_MODEL)


def test_a_warm_start_refuses_another_width(exported):
    _, folder, _ = exported
    with pytest.raises(InputError, match="can only add blocks"):
        load_state(folder, ModelConfig(**{**TINY_MODEL.to_dict(), "width": 2 * TINY_MODEL.width}))


def test_a_warm_start_may_switch_on_the_pair_bias_with_the_same_outputs(exported):
    """The pair bias starts at zero in the encoder and in the code blocks: the network computes what the weights
    did; switching it between two sizes is refused (the trained part would not fit)."""
    _, folder, _ = exported
    network, _ = build_network(folder)
    paired_cfg = ModelConfig(**{**TINY_MODEL.to_dict(), "pair_features": 4})
    paired = CondFiP(paired_cfg)
    paired.load_state_dict(load_state(folder, paired_cfg))
    _assert_same_outputs(paired.eval(), network)
    with pytest.raises(InputError, match="switch on pair_features"):
        grow_state(paired.state_dict(), paired_cfg, ModelConfig(**{**paired_cfg.to_dict(), "pair_features": 8}))
