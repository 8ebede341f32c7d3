"""The variant matrix (plumbing/steps.py): GenRM variants x step templates (x seeds) written
out as the pipeline's steps, composed the way a user gives them (presets, command line)."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError
from plumbing.pipeline import Plan
from plumbing.steps import GENRM, Matrix, PipelineStep, Variant

OFFLINE = "+matrix.variants.mine={model: /models/my-rm, family: {size: 8b, reward: mine}}"


class NoStore:
    run_id, uri = None, ""


def graph(*overrides):
    obj, _ = compose("pipeline", ["output_dir=/tmp/m", *overrides])
    return obj, obj.graph().steps


def test_the_paper_matrix_with_an_off_the_shelf_and_a_command_line_variant():
    obj, steps = graph("experiment=ralign_paper", OFFLINE)
    variants = ["qwen3_8b", "rlvr_8b", "ralign_8b", "qwen3_14b", "rlvr_14b", "ralign_14b", "rrm_32b", "mine"]
    trained = ["rlvr_8b", "ralign_8b", "rlvr_14b", "ralign_14b"]
    assert {s.variant for s in steps.values() if s.variant} == set(variants)
    # a GenRM training only for the variants trained here; every variant evaluated, used, its policy evaluated
    assert sorted(n for n, s in steps.items() if s.stage == "genrm_train") == sorted(f"genrm_{v}" for v in trained)
    for v in variants:
        assert steps[f"genrm_eval_{v}"].stage == "genrm_eval" and steps[f"policy_{v}"].stage == "policy_train"
        assert steps[f"downstream_{v}"].needs() == [f"policy_{v}"]
        assert f"model.path=@run:policy_{v}" in steps[f"downstream_{v}"].overrides
    # @genrm: the training step's result, or the off-the-shelf model as given
    assert "genrm.model=@run:genrm_ralign_14b" in steps["policy_ralign_14b"].overrides
    assert steps["policy_ralign_14b"].needs() == ["genrm_ralign_14b"]
    assert "genrm.model=Reward-Reasoning/RRM-32B" in steps["genrm_eval_rrm_32b"].overrides
    assert "genrm.model=/models/my-rm" in steps["policy_mine"].overrides and steps["policy_mine"].needs() == []
    assert "llm@genrm=vllm" in steps["genrm_eval_mine"].overrides  # a config group's package is not a reference
    assert "experiment=genrm_ralign_qwen3_14b" in steps["genrm_ralign_14b"].overrides
    # resources: the template's, the variant's own over them
    assert steps["genrm_ralign_8b"].slurm == {"nodes": 3, "time": "48:00:00"}
    assert steps["genrm_rlvr_8b"].slurm == {"nodes": 3, "time": "48:00:00"}  # its monitor's node
    assert steps["genrm_eval_rrm_32b"].slurm == {"nodes": 1, "time": "12:00:00"}  # the template's alone
    # the family as tags; correlate follows every variant's evaluation and downstream steps
    assert steps["downstream_mine"].tags == {"family_size": "8b", "family_reward": "mine"}
    assert steps["correlate"].needs() == [f"genrm_eval_{v}" for v in variants] + [f"downstream_{v}" for v in variants]
    assert "mlflow.experiment=[ralign_paper]" in steps["correlate"].overrides
    assert steps["compare"].needs() == ["correlate"]
    # the plan: every step composes, and its run carries variant and family
    plan = Plan(obj, NoStore())
    assert len(plan.names) == 4 + 3 * 8 + 2
    ov = plan.overrides("genrm_eval_mine")
    assert "++tracking.tags.variant=mine" in ov and "++tracking.tags.family_reward=mine" in ov


def test_dropping_a_variant_is_one_override_and_the_family_presets_are_the_matrix():
    _, steps = graph("experiment=ralign_paper", "~matrix.variants.rrm_32b")
    assert not [n for n in steps if n.endswith("rrm_32b")]
    assert not [d for d in steps["correlate"].needs() if "rrm" in d]
    _, steps = graph("experiment=ralign_paper", "matrix.variants.rlvr_8b.enabled=false")
    assert "genrm_rlvr_8b" not in steps and "policy_rlvr_8b" not in steps
    _, steps = graph("experiment=ralign_paper_14b")
    assert {s.variant for s in steps.values() if s.variant} == {"qwen3_14b", "rlvr_14b", "ralign_14b"}
    assert "mlflow.experiment=[ralign_paper_14b]" in steps["correlate"].overrides  # its own experiment


def test_seeds_multiply_the_matrix_and_references_stay_within_a_seed():
    obj, steps = graph("experiment=smoke", "matrix.seeds=[3,4]")
    assert "genrm_outcome_s3" in steps and "downstream_base_s4" in steps and "genrm_outcome" not in steps
    # the ralign policy starts from the outcome policy's warm start of the same seed
    assert steps["policy_ralign_s4"].seed == 4 and steps["policy_ralign_s4"].needs() == ["genrm_ralign_s4",
                                                                                           "policy_outcome_s4"]
    # another variant's step named in a variant (the base GenRM is the outcome run's warm start)
    assert "genrm.model=@dir:genrm_outcome_s4/warm_start/checkpoint" in steps["eval_base_s4"].overrides
    assert "model.path=@dir:genrm_outcome_s3/warm_start/checkpoint" in steps["genrm_ralign_s3"].overrides
    assert len([d for d in steps["correlate"].needs() if d.startswith("eval_")]) == 6
    plan = Plan(obj, NoStore())
    assert "seed=4" in plan.overrides("policy_ralign_s4") and "seed=3" in plan.overrides("policy_ralign_s3")
    assert plan.hashes["policy_ralign_s3"] != plan.hashes["policy_ralign_s4"]


def test_the_smoke_matrix_writes_the_smoke_s_steps():
    """The smoke experiment as a matrix: the same steps, overrides and order as when each was
    written out by hand (so the same runs and numbers)."""
    _, steps = graph("experiment=smoke")
    assert list(steps) == ["preflight", "genrm_outcome", "genrm_ralign", "eval_base", "eval_outcome", "eval_ralign",
                           "policy_base", "policy_outcome", "policy_ralign", "downstream_base", "downstream_outcome",
                           "downstream_ralign", "correlate", "compare"]
    warm = "@dir:genrm_outcome/warm_start/checkpoint"
    assert steps["genrm_ralign"].overrides == ["experiment=toy_genrm", "reward=ralign", f"model.path={warm}",
                                               "warm_start.steps=0"]
    assert steps["eval_base"].overrides == ["experiment=toy_genrm_eval", f"genrm.model={warm}"]
    assert steps["policy_outcome"].overrides == ["experiment=toy_policy", "genrm.model=@run:genrm_outcome"]
    policy_warm = "@dir:policy_outcome/warm_start/checkpoint"  # one policy warm start per seed, not one per variant
    for variant in ("base", "ralign"):
        assert steps[f"policy_{variant}"].overrides[-2:] == [f"policy.path={policy_warm}", "warm_start.steps=0"]
    assert steps["downstream_ralign"].overrides == ["suite=smoke_toy", "model.path=@run:policy_ralign",
                                                    "checkpoints.evaluate=all", "checkpoints.tasks=[toy_math]"]
    assert steps["correlate"].after == ["eval_base", "eval_outcome", "eval_ralign", "downstream_base",
                                        "downstream_outcome", "downstream_ralign"]


def test_a_step_or_a_variant_given_on_the_command_line_is_typed_and_checked():
    _, steps = graph("experiment=smoke_chain", "+steps.again={stage: preflight, after: [downstream]}")
    assert isinstance(steps["again"], PipelineStep) and steps["again"].needs() == ["downstream"]
    with pytest.raises(ConfigError) as e:
        graph("experiment=smoke_chain", "+steps.again={stage: preflight, aftr: [downstream]}")
    assert "aftr" in str(e.value)
    with pytest.raises(ConfigError) as e:
        graph("experiment=ralign_paper", "+matrix.variants.bad={model: m, train: ['reward=outcome'], family: {size: '8 b'}}",
              "+matrix.variants.odd={model: m, overrides: {nope: ['x=1']}}")
    keys = [k for k, _ in e.value.problems]
    assert "matrix.variants.bad" in keys and "matrix.variants.bad.family.size" in keys  # all at once
    assert "matrix.variants.odd.overrides" in keys


def test_names_the_matrix_would_write_twice_are_refused():
    with pytest.raises(ConfigError) as e:
        graph("experiment=smoke", "+steps.eval_base={stage: preflight}")
    assert any(k == "steps.eval_base" for k, _ in e.value.problems)
    # template t x variant a_b and template t_a x variant b would both be step t_a_b
    m = Matrix(variants={"a_b": Variant(model="x"), "b": Variant(model="y")},
               steps={"t": PipelineStep(stage="genrm_eval"), "t_a": PipelineStep(stage="genrm_eval")})
    from plumbing.steps import clashes
    assert [k for k, _ in clashes({}, m)] == ["matrix.variants.b"]


def test_genrm_placeholder_is_a_value_never_a_config_group_package():
    assert GENRM.sub("M", "genrm.model=@genrm") == "genrm.model=M"
    assert GENRM.sub("M", "llm@genrm=vllm") == "llm@genrm=vllm"
    assert GENRM.sub("M", "+llm@genrm=openai") == "+llm@genrm=openai"
    assert GENRM.sub("M", "x=[@genrm,b]") == "x=[M,b]"


def test_a_served_genrm_is_a_variant_whose_steps_call_its_endpoint():
    served = ["llm@genrm=openai", "genrm.base_url=http://host:8000/v1"]
    obj, steps = graph("experiment=ralign_paper", "+matrix.variants.served={model: my-rm, overrides: "
                       f"{{genrm_eval: {served}, policy: {served}}}}}".replace("'", '"'))
    assert "genrm_served" not in steps  # not trained here
    for name in ("genrm_eval_served", "policy_served"):
        sub, _ = compose(steps[name].stage, [*steps[name].overrides, "output_dir=/tmp/m/s"])
        assert (sub.genrm.name, sub.genrm.model, sub.genrm.base_url) == ("openai", "my-rm", "http://host:8000/v1")


def test_a_matrix_problem_is_reported_once_at_its_own_key():
    with pytest.raises(ConfigError) as e:
        graph("experiment=smoke", "+matrix.variants.z={model: m, family: {a: 'x y'}}")
    assert [k for k, _ in e.value.problems] == ["matrix.variants.z.family.a"]


def test_a_step_may_come_after_a_disabled_step_or_template_but_not_use_its_result():
    obj, steps = graph("experiment=smoke", "steps.correlate.enabled=false")  # compare is after correlate
    plan = Plan(obj, NoStore())
    assert "compare" in plan.names and "correlate" not in plan.names
    obj, steps = graph("experiment=smoke", "matrix.steps.downstream.enabled=false")  # correlate is after it
    assert steps["correlate"].after == ["eval_base", "eval_outcome", "eval_ralign"]
    assert "correlate" in Plan(obj, NoStore()).names
    with pytest.raises(ConfigError) as e:  # downstream's model.path=@run:policy
        graph("experiment=smoke", "matrix.steps.policy.enabled=false")
    assert ("matrix.steps.downstream.overrides (step downstream_base)", "no step named 'policy_base'") \
        in e.value.problems


def test_a_step_after_a_written_step_follows_it_in_every_seed():
    _, steps = graph("experiment=smoke", "matrix.seeds=[1,2]", "+steps.x={stage: compare, after: [policy_outcome]}")
    assert steps["x"].after == ["policy_outcome_s1", "policy_outcome_s2"]


def test_a_misspelled_key_in_an_entry_given_on_the_command_line_gets_a_hint():
    with pytest.raises(ConfigError) as e:
        graph("experiment=smoke", "+matrix.variants.z={model: m, famly: {a: b}}")
    (key, msg), = e.value.problems
    assert key == "matrix.variants.z.famly" and "did you mean 'family'?" in msg
    with pytest.raises(ConfigError) as e:  # every stage's entries: a data set's
        compose("preflight", ["model=tiny_qwen3", "+data.preflight_prompts.lmit=3"])
    (key, msg), = e.value.problems
    assert key == "data.preflight_prompts.lmit" and "did you mean 'limit'?" in msg


def test_a_key_value_in_a_variant_is_refused_at_the_variant_s_key():
    with pytest.raises(ConfigError) as e:
        graph("experiment=ralign_paper", "+matrix.variants.s={model: m, overrides: {genrm_eval: "
              "['llm@genrm=openai', 'genrm.api_key=sk-abcdefabcdef0123456789']}}",
              "+matrix.variants.t={train: ['experiment=genrm_rlvr_qwen3_8b', "
              "'metarm.api_key=sk-abcdefabcdef0123456789']}",
              "+matrix.variants.u={model: 'https://me:hunter2secret@host/my-rm'}")
    assert sorted(k for k, _ in e.value.problems) == [
        "matrix.variants.s.overrides.genrm_eval (step genrm_eval_s)", "matrix.variants.t.train (step genrm_t)",
        "matrix.variants.u.model (step genrm_eval_u)", "matrix.variants.u.model (step policy_u)"]
