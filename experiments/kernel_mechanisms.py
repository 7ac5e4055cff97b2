"""Kernel mechanisms (``condfip.kernel_mechanisms``) against the shipped decoder on the validation suite.

    python experiments/kernel_mechanisms.py --per-cell 3 --context 400

Per validation cell (``condfip.train.VALIDATION_CELLS``, seed ``VALIDATION_SEED``): the decoder-abduction noise
RMSE on 400 query rows (``dec``; ``encoder noise``: the encoder head's, each chunk of query rows appended to the
context; ``auto noise``: ``abduction="auto"``, per node the kernel's where ``KernelMechanisms.certain`` says
its line leaves no doubt, else the encoder head's) and the mechanism RMSE on 400 rows under interventions up to
3 context SDs
beyond the context (``int``), as ``tools/compare_weights.py`` scores them, for the shipped decoder T and the
kernel regressions (``kernel``; ``--baseline``: another version beside), all from the first ``--context`` rows; ``kernel s``: seconds per fit and
prediction. One thread.
"""

import argparse
import importlib.util
import json
import sys
import time

import numpy as np
import torch

from condfip.kernel_mechanisms import KernelMechanisms
from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.pretrained import build_network
from condfip.train import VALIDATION_CELLS, validation_dataset, validation_intervened_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-cell", type=int, default=3)
    parser.add_argument("--context", type=int, default=400)
    parser.add_argument("--baseline", nargs="+", default=[],
                        help="files defining other KernelMechanisms (e.g. an earlier version of the module, "
                             "`git show REV:src/condfip/kernel_mechanisms.py > F`), scored beside as 'baseline', "
                             "'baseline2', ...")
    args = parser.parse_args()
    torch.set_num_threads(1)
    others = {}
    for number, path in enumerate(args.baseline, start=1):
        name = "baseline" if number == 1 else f"baseline{number}"
        spec = importlib.util.spec_from_file_location(f"{name}_kernel", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        others[name] = module.KernelMechanisms
    net, _ = build_network(None)
    net.eval()
    table = {}
    with torch.no_grad():
        for preset, mechanism, d in VALIDATION_CELLS:
            acc: dict[str, list] = {}
            for k in range(args.per_cell):
                ds = validation_dataset(preset, mechanism, d, k)
                batch = ds.scm.batch
                x, noise, adj = batch.x.float(), batch.noise[0, 400:].numpy(), batch.adj
                a = adj[0].numpy() != 0
                scored = nodes_with_parents(a)
                ctx = x[:, :args.context]
                z, f = validation_intervened_rows(ds, k)
                code = net.dataset_code(ctx, adj)
                memory = net.decoder.context_memory(code, adj)
                rows = torch.cat([x[:, 400:], z], dim=1)
                t_rows = net.decoder(code, rows, adj, memory=memory)[0].double().numpy()
                q, nodes = x[0, 400:].double().numpy(), np.arange(d)
                answers = {"decoder": t_rows}
                start = time.perf_counter()
                mech = KernelMechanisms(ctx[0].double().numpy(), a)
                answers["kernel"] = mech.predict(rows[0].double().numpy(), nodes)
                acc.setdefault("kernel s", []).append(time.perf_counter() - start)
                # noise abduction: the encoder head (each chunk of query rows appended to the context, as
                # InferredSCM.noise does) and abduction "auto": the kernel's x - f(x) on its certain nodes
                query, f_enc = x[:, 400:], []
                for lo in range(0, 400, args.context):
                    _, f_hat = net.encoder(torch.cat([ctx, query[:, lo:lo + args.context]], 1), adj)
                    f_enc.append(f_hat[:, args.context:])
                f_enc = torch.cat(f_enc, 1)[0].double().numpy()
                _, f_ctx = net.encoder(ctx, adj)
                rival = (ctx[0] - f_ctx[0]).double().pow(2).mean(0).sqrt().numpy()
                hybrid = np.where(mech.certain(d, rival_rmse=rival), answers["kernel"][:400], f_enc)
                acc.setdefault("encoder noise", []).append(rmse_per_sample(noise, q - f_enc, scored))
                acc.setdefault("auto noise", []).append(rmse_per_sample(noise, q - hybrid, scored))
                for name, other in others.items():
                    start = time.perf_counter()
                    fitted = other(ctx[0].double().numpy(), a)
                    answers[name] = fitted.predict(rows[0].double().numpy(), nodes)
                    acc.setdefault(f"{name} s", []).append(time.perf_counter() - start)
                    mixed = np.where(fitted.certain(d, rival_rmse=rival), answers[name][:400], f_enc)
                    acc.setdefault(f"{name} auto noise", []).append(rmse_per_sample(noise, q - mixed, scored))
                for name, t in answers.items():
                    acc.setdefault(f"{name} dec", []).append(rmse_per_sample(noise, q - t[:400], scored))
                    acc.setdefault(f"{name} int", []).append(rmse_per_sample(f[0].numpy(), t[400:], scored))
            cell = f"{preset}/{mechanism}/d{d}"
            table[cell] = {key: float(np.mean(v)) for key, v in acc.items()}
            print(cell, json.dumps({key: round(v, 3) for key, v in table[cell].items()}), flush=True)
    keys = next(iter(table.values())).keys()
    print("mean", json.dumps({key: round(float(np.mean([r[key] for r in table.values()])), 4) for key in keys}))


if __name__ == "__main__":
    main()
