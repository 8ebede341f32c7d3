"""Analysis: which GenRM metric predicts a better policy?

Python API (works on any DataFrame, no notebook needed):

    from analysis import collect, correlate_table, build_report
    table = collect("sqlite:///runs/mlflow.db", ["ralign_paper_8b"])        # one row per GenRM variant
    # (the newest run per variant and seed; intervals in the columns <metric>:lo, :hi, :n, :interval)
    result = correlate_table(table, ["helpsteer3/l_acc", "helpsteer3/f_score"], "downstream/avg")
    build_report(table, {}, Path("report"), "My GenRMs")                    # report.md + report.html
    union = collect("sqlite:///runs/mlflow.db", ["paper_a", "paper_b"])    # the union, family_<key> columns
    seeds = collect("sqlite:///runs/toy_check/mlflow.db", ["toy_check"], by=["seed"])  # a row per variant and seed
    compare_seeds(seeds, "toy_test/s_corr", "outcome", "ralign", "lower")   # means, intervals, paired difference

Command line: ``python -m analysis.correlate``, ``python -m analysis.compare``, ``python -m analysis.seeds``.
"""

from analysis.collect import FamilyWarning, MixedConfigWarning, collect, resolve_variants, runs_table, search
from analysis.compare import build_report
from analysis.stats import TableError, compare_seeds, correlate_table, correlation, mean_interval, statistic
from genrm.metrics import wilson_interval

__all__ = ["collect", "search", "runs_table", "resolve_variants", "correlate_table", "correlation", "statistic",
           "build_report", "TableError", "compare_seeds", "mean_interval", "wilson_interval", "MixedConfigWarning",
           "FamilyWarning"]
