"""How the encoder head should see query rows: the validation suite's encoder-head noise RMSE per cell when the
400 query rows are appended to the 400 context rows in chunks of k rows (one pass per chunk; the query rows of a
chunk see each other) and when each query row sees only the context and itself (``appended_rows_mask``, one pass).

    python experiments/encoder_query_rows.py [--per-cell 9] [--weights FOLDER] [--chunks 400 100 50]

Validation seed only (a design choice: the benchmark's seeds are not used).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from condfip.metrics import nodes_with_parents, rmse_per_sample
from condfip.model import appended_rows_mask
from condfip.pretrained import build_network
from condfip.train import VALIDATION_CELLS, validation_dataset


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-cell", type=int, default=9)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--chunks", type=int, nargs="+", default=[400, 100, 50])
    args = parser.parse_args()
    network, _ = build_network(args.weights)
    protocols = [f"chunk {k}" for k in args.chunks] + ["each row alone"]
    scores = {p: [] for p in protocols}
    print("cell".ljust(26) + "".join(p.rjust(16) for p in protocols))
    for preset, mechanism, d in VALIDATION_CELLS:
        cell = {p: [] for p in protocols}
        for k in range(args.per_cell):
            ds = validation_dataset(preset, mechanism, d, k)
            batch = ds.scm.batch
            x, adj = batch.x.float(), batch.adj
            truth, scored = batch.noise[0, 400:].numpy(), nodes_with_parents(adj[0].numpy())
            for size in args.chunks:
                f = torch.cat([network.encoder(torch.cat([x[:, :400], x[:, s:s + size]], dim=1), adj)[1][:, 400:]
                               for s in range(400, 800, size)], dim=1)
                cell[f"chunk {size}"].append(rmse_per_sample(truth, (x[:, 400:] - f)[0].numpy(), scored))
            f = network.encoder(x, adj, appended_rows_mask(400, 800))[1][:, 400:]
            cell["each row alone"].append(rmse_per_sample(truth, (x[:, 400:] - f)[0].numpy(), scored))
        print(f"{preset}/{mechanism}/d{d}".ljust(26) + "".join(f"{np.mean(cell[p]):16.4f}" for p in protocols),
              flush=True)
        for p in protocols:
            scores[p].append(np.mean(cell[p]))
    print("mean".ljust(26) + "".join(f"{np.mean(scores[p]):16.4f}" for p in protocols))


if __name__ == "__main__":
    main()
