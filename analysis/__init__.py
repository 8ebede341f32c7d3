"""Analysis: which GenRM metric predicts a better policy?

Python API (works on any DataFrame, no notebook needed):

    from analysis import collect, correlate_table, build_report
    table = collect("sqlite:///runs/mlflow.db", ["ralign_paper_8b"])        # one row per GenRM variant
    result = correlate_table(table, ["helpsteer3/l_acc", "helpsteer3/f_score"], "downstream/avg")
    build_report(table, {}, Path("report"), "My GenRMs")                    # report.md + report.html

Command line: ``python -m analysis.correlate`` and ``python -m analysis.compare``.
"""

from analysis.collect import collect, resolve_variants, runs_table, search
from analysis.compare import build_report
from analysis.stats import TableError, correlate_table, correlation, statistic

__all__ = ["collect", "search", "runs_table", "resolve_variants", "correlate_table", "correlation", "statistic",
           "build_report", "TableError"]
