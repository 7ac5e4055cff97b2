"""The benchmark: the paper's protocol with condfip, DoWhy-gcm and reference estimators side by side.

Entry point: ``condfip bench`` (``condfip.bench.run.run_bench``). Modules: ``suites`` (cells, seeds,
datasets), ``tasks`` (the four tasks and their scores), ``methods`` (the benchmarked methods), ``sachs_mmd``
(real data and the MMD), ``scale`` (time and memory per size), ``report`` (results.md), ``plots`` (PNG files),
``run`` (the whole run, resumable).
"""
