"""math-verify in the grading path: in-process (the old grader, math-verify's timeouts off in
threads) vs the killable worker process with a hard limit (downstream_eval.math_verifier),
side by side in one run on the same answer pairs (toy_math-like: short numbers and fractions).

    python benchmarks/math_grading.py [N]
"""

from __future__ import annotations

import sys
import time

from downstream_eval import math_verifier

PAIRS = [("4", "4"), ("\\frac{1}{2}", "0.5"), ("7", "8"), ("\\sqrt{2}", "\\sqrt{2}"), ("12", "\\boxed{12}")]


def main(n: int) -> None:
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    math_verifier._equivalent("1", "1")  # math-verify's import and first parse, outside the timing
    t0 = time.perf_counter()
    inproc = [math_verifier._equivalent(g, a) for g, a in pairs]
    t_in = time.perf_counter() - t0
    t0 = time.perf_counter()
    math_verifier.check("1", "1", 10.0)  # the worker's start (python + math-verify import), paid once per run
    t_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    worker = [math_verifier.check(g, a, 10.0)[0] == "correct" for g, a in pairs]
    t_worker = time.perf_counter() - t0
    assert inproc == worker, "the worker must give the in-process verdicts"
    print(f"{n} checks: in-process {t_in:.2f} s ({1e3 * t_in / n:.2f} ms/check); worker {t_worker:.2f} s "
          f"({1e3 * t_worker / n:.2f} ms/check) + start {t_start:.2f} s once; same verdicts")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
