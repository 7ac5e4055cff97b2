"""results.md: mean (standard error) per cell, one table per task, from the records of results.json; with
``--graph inferred`` also the discovered-graph section (``inferred_section``)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from condfip.bench.tasks import TASKS


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (std with ddof=1 over sqrt(k); NaN for a single value)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def _fmt(mean: float, se: float, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f}" + (f" ({se:.{digits}f})" if math.isfinite(se) else "")


def _cell_key(cell: str) -> tuple:
    """Sort cells by preset, mechanism, d, n (numerically)."""
    parts = cell.split("/")
    return tuple(int(p[1:]) if p[:1] in "dn" and p[1:].isdigit() else p for p in parts)


def ordered_methods(records: list[dict], preferred: tuple[str, ...]) -> list[str]:
    seen = {r["method"] for r in records}
    return [m for m in preferred if m in seen] + sorted(seen - set(preferred))


def cell_table(records: list[dict], task: str, methods: list[str], field: str = "value",
               digits: int = 3, ratio: bool = True) -> list[str]:
    """Markdown rows: one per cell, one column per method, 'mean (se)' over the cell's datasets, failures
    counted; a condfip/dowhy ratio of the means when both ran."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        if r["task"] == task:
            groups[(r["cell"], r["method"])].append(r)
    cells = sorted({c for c, _ in groups}, key=_cell_key)
    show_ratio = ratio and "condfip" in methods and "dowhy" in methods
    header = ["cell", *methods] + (["condfip/dowhy"] if show_ratio else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in cells:
        row, means = [cell], {}
        for m in methods:
            recs = groups.get((cell, m), [])
            ok = [r[field] for r in recs if r.get("status") == "ok"]
            mean, se = mean_se(ok)
            means[m] = mean
            text = _fmt(mean, se, digits) if recs else ""
            bad = [r["status"] for r in recs if r.get("status") != "ok"]
            if bad:
                counts = ", ".join(f"{bad.count(s)} {s}" for s in sorted(set(bad)))
                text = f"{text} [{counts}]".strip()
            row.append(text)
        if show_ratio:
            a, b = means.get("condfip", float("nan")), means.get("dowhy", float("nan"))
            row.append(f"{a / b:.2f}" if math.isfinite(a) and math.isfinite(b) and b > 0 else "—")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def dataset_seconds(records: list[dict]) -> dict[tuple[str, str, int], float]:
    """Wall seconds per (cell, method, dataset index): fit + the paper's four answers (every task's record repeats it)."""
    return {(r["cell"], r["method"], r["index"]): r["dataset_seconds"] for r in records
            if r.get("part") == "synthetic" and r.get("dataset_seconds") is not None}


def timing_table(records: list[dict], methods: list[str]) -> list[str]:
    """Mean wall seconds per dataset (fit + the paper's four answers) per method and cell."""
    rows = [{"cell": c, "method": m, "task": "time", "value": s, "status": "ok"}
            for (c, m, _), s in dataset_seconds(records).items()]
    return cell_table(rows, "time", methods, digits=2, ratio=True)


def inferred_section(records: list[dict], methods: list[str]) -> list[str]:
    """Markdown: per task and cell, each method on the inferred graph beside the true graph, with the SHD."""
    found = [r for r in records if r.get("part") == "discovery" and r.get("status") == "ok"]
    inferred = [r for r in records if r.get("part") == "synthetic-inferred"]
    if not inferred:
        return []
    true = [r for r in records if r.get("part") == "synthetic"]
    shown = [m for m in methods if any(r["method"] == m for r in inferred)]
    by, bad = defaultdict(list), defaultdict(list)
    for r in inferred + true:
        key = (r["part"], r["task"], r["cell"], r["method"])
        if r.get("status") == "ok":
            by[key].append(r["value"])
        else:
            bad[key].append(r.get("status"))
    shd = defaultdict(list)
    for r in found:
        shd[r["cell"]].append(r)
    cells = sorted({r["cell"] for r in inferred}, key=_cell_key)
    names = sorted({r["method"] for r in found})
    out = ["## inferred graph (no true graph given)", "",
           (f"Each dataset's graph discovered from its context rows by {', '.join(names) or '?'} "
           "(`condfip.discover`, no subsamples); every method fitted on that graph, beside the same method on "
           "the true graph; scores as above (nodes with true parents); failures and time-outs in brackets. SHD, "
           "skeleton precision / recall and orientation accuracy: mean over the cell's discovered graphs."), "",
           "| cell | SHD | precision | recall | orientation | discovery s |", "|---|---|---|---|---|---|"]
    for cell in cells:
        rs = shd.get(cell, [])

        def m(key, digits=2, rs=rs):
            mean, _ = mean_se([r.get(key) for r in rs])
            return "—" if not math.isfinite(mean) else f"{mean:.{digits}f}"
        out.append(f"| {cell} | {m('shd', 1)} | {m('precision')} | {m('recall')} | {m('orientation')} | "
                   f"{m('seconds')} |")
    out.append("")
    for task in TASKS:
        header = ["cell"] + [f"{m} ({g})" for m in shown for g in ("true", "inferred")]
        ratio = "condfip" in shown and "dowhy" in shown
        header += ["condfip/dowhy (inferred)"] if ratio else []
        out += [f"### {task}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cell in cells:
            row, means = [cell], {}
            for m in shown:
                for g, part in zip(("true", "inferred"), ("synthetic", "synthetic-inferred"), strict=True):
                    mean, se = mean_se(by.get((part, task, cell, m), []))
                    means[(m, g)] = mean
                    failed = bad.get((part, task, cell, m), [])
                    counts = ", ".join(f"{failed.count(x)} {x}" for x in sorted(set(failed)))
                    row.append(f"{_fmt(mean, se)} [{counts}]" if failed else _fmt(mean, se))
            if ratio:
                a, b = means[("condfip", "inferred")], means[("dowhy", "inferred")]
                row.append(f"{a / b:.2f}" if math.isfinite(a) and math.isfinite(b) and b > 0 else "—")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out


def render(records: list[dict], meta: dict, methods_order: tuple[str, ...]) -> str:
    synth = [r for r in records if r.get("part") == "synthetic"]
    sachs = [r for r in records if r.get("part") == "sachs"]
    scale = [r for r in records if r.get("part") == "scale"]
    out = ["# condfip benchmark", ""]
    out += ["| | |", "|---|---|"]
    for key in ("command", "date", "git_commit", "weights_sha256", "machine", "cpu_count", "load_start",
                "load_end", "wall_seconds", "versions", "mode", "dowhy_timeout_s", "dowhy_max_d", "notes"):
        if key in meta:
            value = meta[key]
            if isinstance(value, float):
                value = f"{value:.1f}"
            out.append(f"| {key} | {str(value).replace('|', '/')} |")
    out += ["", "Metric: RMSE per sample over the nodes that have parents (the intervened node excluded),",
            "in the standardised units of each dataset; mean (standard error) over the cell's datasets.",
            "Failures and time-outs are counted in brackets and left out of the means. Cells:",
            "preset/mechanism/d/context n; 400 query rows.", ""]
    if any(r.get("task") == "extrapolation" for r in synth):
        out += ["`extrapolation`: do(target) at 2 and 4 context SDs beyond the target's context range, scored",
                "on the target's descendants only.", ""]
    if synth:
        methods = ordered_methods(synth, methods_order)
        for task in TASKS:
            if any(r["task"] == task for r in synth):
                out += [f"## {task}", ""] + cell_table(synth, task, methods) + [""]
        out += ["## per-node RMSE / noise scale (mean over scored nodes)", "",
                "Each scored node's RMSE divided by the std of its true noise on the query rows.", ""]
        for task in TASKS:
            if any(r["task"] == task for r in synth):
                table = cell_table(synth, task, methods, field="value_scaled")
                out += ["<details>", f"<summary>{task} (scaled)</summary>", "", *table, "", "</details>", ""]
        out += ["## wall time per dataset (s): fit + the four answers", "", *timing_table(synth, methods), ""]
    if sachs:
        out += ["## Sachs: squared MMD, generated vs held-out rows", "",
                ("Unbiased estimate, Gaussian kernel, median-heuristic bandwidth on the pooled rows; "
                 "log-transformed, standardised data; 400 context / 400 held-out rows per random split; "
                 "`real` = the context half itself vs the held-out half."), "",
                "| method | MMD² mean (se) | splits ok | not ok | mean fit s |", "|---|---|---|---|---|"]
        for m in ordered_methods(sachs, ("real", *methods_order)):
            recs = [r for r in sachs if r["method"] == m]
            ok = [r for r in recs if r["status"] == "ok"]
            mean, se = mean_se([r["value"] for r in ok])
            fit = mean_se([r.get("fit_seconds") for r in ok if r.get("fit_seconds") is not None])[0]
            out.append(f"| {m} | {_fmt(mean, se, 4)} | {len(ok)} | {len(recs) - len(ok)} | "
                       f"{'—' if not math.isfinite(fit) else f'{fit:.2f}'} |")
        out.append("")
    if scale:
        out += ["## scale: condfip infer + sample(1000 rows), fresh process per cell", "",
                ("Contexts above the model's max_context are subsampled by infer (column 'context used'); "
                 "peak RSS is the process's high-water mark (Python, torch, weights and data included)."), "",
                ("| d | n | status | infer s | sample s | total s | peak RSS MiB | RSS before infer MiB "
                 "| context used |"),
                "|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(scale, key=lambda r: (r["d"], r["n_context"])):
            def f(k, digits=2, r=r):
                v = r.get(k)
                return "—" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))
            out.append(f"| {r['d']} | {r['n_context']} | {r['status']} | {f('infer_seconds')} | "
                       f"{f('sample_seconds')} | {f('seconds')} | {f('peak_rss_mb', 0)} | "
                       f"{f('base_rss_mb', 0)} | "
                       f"{f('context_used')} |")
        out.append("")
    out += inferred_section(records, list(methods_order))
    if meta.get("plots"):
        out += ["## plots", ""] + [f"- [{p}]({p})" for p in meta["plots"]] + [""]
    return "\n".join(out)
