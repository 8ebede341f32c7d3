"""The contributor's experiment: a new component (a reward with its own params, a task kind
with a new metric, a CSV data format, an LLM backend) is a module and a YAML in a folder of
the contributor's own, outside the suite, run through its stage's CLI on tiny local data,
its metric visible in MLflow. No file of the suite is edited: the module is found on
PYTHONPATH, the YAML through Hydra's search path."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def contribution(tmp_path: Path, files: dict) -> tuple:
    """Write the contributor's files under tmp_path/contrib; return (env, searchpath override)."""
    root = tmp_path / "contrib"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    env = {"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return env, f"hydra.searchpath=[file://{root / 'conf'}]"


def only_run(out: Path):
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


LENGTH_REWARD = {
    "my_rewards.py": '''
        """A reward from outside the suite: the outcome reward minus a length penalty."""
        from dataclasses import dataclass

        from genrm.rewards.base import DIAGNOSTICS, RewardParams
        from genrm.rewards.outcome import OutcomeReward


        @dataclass
        class LengthParams(RewardParams):
            per_char: float = 0.001
            cap: float = 0.5

            def check(self):
                return [("cap", "must be <= 1")] if self.cap > 1 else []


        class LengthPenalizedOutcome(OutcomeReward):
            Params = LengthParams
            produces = DIAGNOSTICS + ("length_penalty",)

            def score(self, rollouts):
                results = super().score(rollouts)
                for res, ro in zip(results, rollouts):
                    penalty = min(self.cfg.cap, self.cfg.per_char * len(ro.completion))
                    res.reward -= penalty
                    res.diagnostics["length_penalty"] = penalty
                return results
    ''',
    "conf/reward/length_penalized_outcome.yaml": '''
        # the outcome reward minus params.per_char per character of the GenRM's output, capped
        _target_: my_rewards.LengthPenalizedOutcome
        params:
          per_char: 0.002
    ''',
}


def test_a_reward_with_its_own_params_from_outside_the_suite(tmp_path, cli, python):
    env, searchpath = contribution(tmp_path, LENGTH_REWARD)
    out = tmp_path / "out"
    base = [python, "-m", "genrm.train", "experiment=smoke_genrm", "reward=length_penalized_outcome", searchpath]
    # its params are checked like the suite's own, every problem at once, before any work
    bad = cli(base + [f"output_dir={tmp_path / 'bad'}", "reward.params.per_char=-1", "reward.params.cap=2",
                      "+reward.params.typo=1"], cwd=tmp_path, env=env)
    assert bad.returncode == 2, bad.stderr[-2000:]
    for key in ("reward.params.per_char: must be >= 0", "reward.params.cap: must be <= 1", "reward.params.typo: "
                "LengthPenalizedOutcome takes no param"):
        assert key in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path / "bad" / "mlflow.db").exists()

    proc = cli(base + [f"output_dir={out}"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(out)
    assert run.info.status == "FINISHED"
    assert run.data.tags["reward"] == "length_penalized_outcome"  # the option's file name is its name
    assert run.data.metrics["genrm_reward/length_penalty"] > 0  # the metric it declares reaches MLflow
    assert run.data.params["reward.params.per_char"] == "0.002"


FIXED_VERDICT_BACKEND = {
    "my_backends.py": '''
        """An LLM backend from outside the suite: a GenRM that always prefers the same answer."""
        from dataclasses import dataclass

        from plumbing.llm.types import ChatResult, LLMBackend


        @dataclass
        class FixedParams:
            verdict: str = "A"

            def check(self):
                return [] if self.verdict in ("A", "B") else [("verdict", "must be A or B")]


        class FixedVerdict(LLMBackend):
            """No model_id of its own: the suite keys its cache on the class, model and params."""

            Params = FixedParams

            def __init__(self, verdict):
                super().__init__()
                self.verdict = verdict

            @classmethod
            def from_config(cls, cfg, params):
                return cls(params.verdict)

            def _complete(self, requests, on_result, progress):
                out = []
                for i, _ in enumerate(requests):
                    res = ChatResult(text=f"Always this one. \\\\boxed{{{self.verdict}}}", finish_reason="stop")
                    on_result(i, res)
                    out.append(res)
                return out
    ''',
    "conf/llm/fixed_verdict.yaml": '''
        # a GenRM that always prefers answer params.verdict, no model
        _target_: my_backends.FixedVerdict
        model: fixed
        params:
          verdict: B
    ''',
}


def _pairs(path: Path, labels: str) -> Path:
    """A tiny R-Align-format benchmark, one pair per golden label."""
    import json

    rows = [{"id": f"p{i}", "conversations": [{"role": "user", "content": f"What is {i} + 1?"}],
             "response_A": f"{i + 1}.", "response_B": f"{i + 2}.", "gt_label": label,
             "gt_judgment": f"Answer {label} is better.", "source": {"subset": "sums"}}
            for i, label in enumerate(labels)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_llm_backend_with_its_own_params_from_outside_the_suite(tmp_path, cli, python):
    env, searchpath = contribution(tmp_path, FIXED_VERDICT_BACKEND)
    data = _pairs(tmp_path / "pairs.jsonl", "BBAB")
    cache = tmp_path / "calls.sqlite"  # one call cache for both runs: it must tell the backends apart
    base = [python, "-m", "genrm.evaluate", "data=[smoke_pairs]", f"data.smoke_pairs.path={data}",
            "llm@genrm=fixed_verdict", f"genrm.cache.path={cache}", searchpath]
    # its params are checked like the suite's own, every problem at once, before any work
    bad = cli(base + [f"output_dir={tmp_path / 'bad'}", "genrm.params.verdict=C", "+genrm.params.typo=1"],
              cwd=tmp_path, env=env)
    assert bad.returncode == 2, bad.stderr[-2000:]
    for problem in ("genrm.params.verdict: must be A or B", "genrm.params.typo: FixedVerdict takes no param"):
        assert problem in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path / "bad" / "mlflow.db").exists()

    for verdict, l_acc in (("B", 0.75), ("A", 0.25)):
        out = tmp_path / f"out_{verdict}"
        proc = cli(base + [f"output_dir={out}", f"genrm.params.verdict={verdict}"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run = only_run(out)
        assert run.info.status == "FINISHED"
        assert run.data.metrics["smoke_pairs/l_acc"] == l_acc  # its answers, not the other run's cached ones
        assert run.data.params["genrm.name"] == "fixed_verdict"  # the option's file name is its name
        assert run.data.params["genrm.params.verdict"] == verdict


EXACT_MATCH_TASK = {
    "my_tasks.py": '''
        """A task kind from outside the suite: short answers matched exactly, with a metric of its own."""
        from dataclasses import dataclass

        from downstream_eval.tasks import Doc, Grade, Task
        from plumbing.data import FieldError


        @dataclass
        class ExactMatchParams:
            answer_field: str = "answer"
            case_sensitive: bool = False
            max_answer_chars: int = 200  # longer outputs are cut before matching

            def check(self):
                return [("max_answer_chars", "must be >= 1")] if self.max_answer_chars < 1 else []


        class ExactMatchTask(Task):
            Params = ExactMatchParams

            def doc(self, rec, index):
                if self.params.answer_field not in rec:
                    raise FieldError(self.params.answer_field, "missing")
                return Doc(str(rec["id"]), self.prompt(rec["question"]), str(rec[self.params.answer_field]))

            def grade_one(self, doc, output):
                answer = output.strip()[:self.params.max_answer_chars]
                same = answer == doc.target if self.params.case_sensitive else answer.lower() == doc.target.lower()
                return Grade(float(same), answer, "exact" if same else "different", {"chars": len(answer)})

            def summarize(self, grades):
                out = super().summarize(grades)
                flat = [g for gs in grades for g in gs]
                out["answer_length"] = sum(g.detail.get("chars", 0) for g in flat) / len(flat) if flat else None
                return out
    ''',
    "capitals.jsonl": '''
        {"id": "fr", "question": "Capital of France?", "gold": "Paris"}
        {"id": "jp", "question": "Capital of Japan?", "gold": "Tokyo"}
    ''',
    "conf/task/capitals.yaml": '''
        # @package tasks.capitals
        # Capitals, answered in one word, matched exactly (case aside).
        _target_: my_tasks.ExactMatchTask
        domain: general
        path: {data}
        params:
          answer_field: gold
    ''',
}


def test_a_task_kind_with_a_new_metric_from_outside_the_suite(tmp_path, cli, python):
    files = dict(EXACT_MATCH_TASK)
    files["conf/task/capitals.yaml"] = files["conf/task/capitals.yaml"].replace(
        "{data}", str(tmp_path / "contrib" / "capitals.jsonl"))
    env, searchpath = contribution(tmp_path, files)
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"task_id": "fr", "output": "paris"}\n{"task_id": "jp", "output": "Kyoto, I think"}\n')
    out = tmp_path / "out"
    base = [python, "-m", "downstream_eval.run", "~suite", "task=[capitals]", f"predictions={preds}", searchpath]
    # its params are checked like the suite's own kinds', every problem at once, before any work
    bad = cli(base + [f"output_dir={tmp_path / 'bad'}", "tasks.capitals.params.max_answer_chars=0",
                      "tasks.capitals.params.case_sensitive=maybe", "tasks.capitals.params.typo=1"],
              cwd=tmp_path, env=env)
    assert bad.returncode == 2, bad.stderr[-2000:]
    for key in ("tasks.capitals.params.max_answer_chars: must be >= 1", "tasks.capitals.params.case_sensitive: ",
                "tasks.capitals.params.typo: ExactMatchTask takes no param 'typo'"):
        assert key in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path / "bad" / "mlflow.db").exists()

    proc = cli(base + [f"output_dir={out}"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    task = json.loads((out / "summary.json").read_text())["tasks"]["capitals"]
    assert task["kind"] == "my_tasks.ExactMatchTask" and task["score"] == 0.5  # its YAML's answer_field was read
    assert task["answer_length"] == (len("paris") + len("Kyoto, I think")) / 2
    run = only_run(out)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["downstream/capitals"] == 0.5
    assert run.data.metrics["downstream/capitals/answer_length"] == task["answer_length"]  # the new metric


CSV_BENCHMARK = {
    "my_csv_bench.py": '''
        """A benchmark format from outside the suite: pairwise judgements in a CSV file, one
        comparison a row (id, question, answer_a, answer_b, the preferred answer, topic)."""
        import csv
        from dataclasses import dataclass

        from genrm.benchmarks import PairwiseFormat
        from genrm.records import PairwiseSample, label_field
        from plumbing.data import FieldError


        @dataclass
        class CsvParams:
            delimiter: str = ","
            label_column: str = "winner"

            def check(self):
                return [("delimiter", "must be one character")] if len(self.delimiter) != 1 else []


        class CsvPairs(PairwiseFormat):
            Params = CsvParams

            def read(self, path):  # its own reader: rows numbered by their line in the file
                with open(path, newline="", encoding="utf-8") as fh:
                    rows = csv.DictReader(fh, delimiter=self.params.delimiter)
                    for row in rows:
                        yield rows.line_num, row, None

            def convert(self, row):
                for name in ("id", "question", "answer_a", "answer_b"):
                    if not (row.get(name) or "").strip():
                        raise FieldError(name, "missing")
                column = self.params.label_column
                return PairwiseSample(id=row["id"], context=[{"role": "user", "content": row["question"]}],
                                      response_a=row["answer_a"], response_b=row["answer_b"],
                                      gt_label=label_field(row.get(column), column), subset=row.get("topic") or None)
    ''',
    "conf/data/my_csv_pairs.yaml": '''
        # @package data.my_csv_pairs
        # Pairwise judgements from a CSV file: data=my_csv_pairs data.my_csv_pairs.path=FILE
        _target_: my_csv_bench.CsvPairs
        params:
          label_column: preferred
    ''',
}
# The rule judge (genrm.testing) picks the answer marked <<good>>: right on 3 of the 4 rows.
PAIRS_CSV = '''id,question,answer_a,answer_b,preferred,topic
p1,2+2?,4 <<good>>,5,A,math
p2,Capital of France?,Lyon,Paris <<good>>,B,geo
p3,3+3?,6 <<good>>,7,B,math
p4,Agree?,"yes, ""fully"" <<good>>",no,a,chat
'''


def test_a_csv_benchmark_format_from_outside_the_suite(tmp_path, cli, python):
    from genrm.testing import rule_responder
    from plumbing.testing.loopback import LoopbackServer

    env, searchpath = contribution(tmp_path, CSV_BENCHMARK)
    data = tmp_path / "pairs.csv"
    data.write_text(PAIRS_CSV)
    out = tmp_path / "out"
    with LoopbackServer(responder=rule_responder) as srv:
        base = [python, "-m", "genrm.evaluate", "data=my_csv_pairs", searchpath, "llm@genrm=openai",
                f"genrm.base_url={srv.base_url}", "genrm.model=rule-judge", "genrm.max_retries=0"]
        # its params are checked like the suite's own, every problem at once, before any work
        bad = cli(base + [f"output_dir={tmp_path / 'bad'}", f"data.my_csv_pairs.path={data}",
                          "data.my_csv_pairs.params.delimiter=tab", "data.my_csv_pairs.params.label_colum=x"],
                  cwd=tmp_path, env=env)
        assert bad.returncode == 2, bad.stderr[-2000:]
        for key in ("data.my_csv_pairs.params.delimiter: must be one character",
                    "data.my_csv_pairs.params.label_colum: CsvPairs takes no param 'label_colum'"):
            assert key in bad.stderr, bad.stderr[-2000:]
        # a bad row stops the run before any call, naming the file, the row's line and the field
        broken = tmp_path / "broken.csv"
        broken.write_text(PAIRS_CSV.replace("p3,3+3?,6 <<good>>,7,B", "p3,3+3?,6 <<good>>,,B"))
        refused = cli(base + [f"output_dir={tmp_path / 'refused'}", f"data.my_csv_pairs.path={broken}"],
                      cwd=tmp_path, env=env)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert f"{broken}:4: field 'answer_b': missing" in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr and srv.chat_requests == 0
        assert not (tmp_path / "bad" / "mlflow.db").exists()

        proc = cli(base + [f"output_dir={out}", f"data.my_csv_pairs.path={data}"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(out)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["my_csv_pairs/n"] == 4
    assert run.data.metrics["my_csv_pairs/l_acc"] == pytest.approx(3 / 4)
    assert run.data.params["data.my_csv_pairs.params.label_column"] == "preferred"
