"""Secret detection and masking."""

import pytest

from plumbing.secrets import MASK, Scrubber, collect_secret_values, is_secret_key, redact_tree


def test_secret_key_names():
    for key in ["api_key", "llm.api_key", "OPENAI_API_KEY", "HF_TOKEN", "password", "db.secret",
                "access_token", "authorization", "metarm.credentials"]:
        assert is_secret_key(key), key
    for key in ["max_tokens", "pad_token", "eos_token", "tokenizer", "api_key_env", "model", "num_tokens",
                "key", "token_budget"]:
        assert not is_secret_key(key), key


def test_redact_tree_masks_values_under_secret_keys_only():
    tree = {"llm": {"api_key": "sk-abc123456", "api_key_env": "OPENAI_API_KEY", "model": "m"},
            "list": [{"token": "t0k3n-value"}], "empty": {"api_key": None}}
    out = redact_tree(tree)
    assert out["llm"] == {"api_key": MASK, "api_key_env": "OPENAI_API_KEY", "model": "m"}
    assert out["list"] == [{"token": MASK}]
    assert out["empty"] == {"api_key": None}
    assert collect_secret_values(tree) == {"sk-abc123456", "t0k3n-value"}


def test_scrubber_masks_config_and_environment_secrets(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "env-secret-999")
    scrub = Scrubber({"sk-config-secret", "abc"})  # too short to be treated as a secret
    text = "url=http://x?key=sk-config-secret and env-secret-999 and abc"
    assert scrub(text) == f"url=http://x?key={MASK} and {MASK} and abc"
    assert scrub.override("llm.api_key=sk-whatever") == f"llm.api_key={MASK}"
    assert scrub.override("+llm.api_key=zzz") == f"+llm.api_key={MASK}"
    assert scrub.override("llm.model=foo") == "llm.model=foo"


def test_keys_inside_override_strings_and_behind_env_names_are_found_and_masked():
    from plumbing.secrets import collect_secret_values, redact_tree

    config = {"stage_overrides": {"genrm_eval": ["genrm.api_key=sk-in-a-list-123", "data.path=/x"]},
              "metarm": {"api_key_env": "JUDGE_CRED", "model": "m"}}
    assert collect_secret_values(config, environ={"JUDGE_CRED": "value-of-a-plain-name"}) == {
        "sk-in-a-list-123", "value-of-a-plain-name"}
    assert redact_tree(config)["stage_overrides"]["genrm_eval"] == ["genrm.api_key=***REDACTED***", "data.path=/x"]


def test_a_key_that_would_be_written_into_a_job_is_refused_with_the_fix():

    from plumbing.config.hydra_app import compose
    from plumbing.config.validate import ConfigError

    with pytest.raises(ConfigError) as e:  # a pipeline step's overrides go into its sbatch script
        compose("pipeline", ["experiment=ralign_paper_8b", "+stage_overrides.genrm_eval=['metarm.api_key=sk-abcdef12']"])
    assert any("metarm.api_key_env=NAME" in msg for _, msg in e.value.problems)
    with pytest.raises(ConfigError) as e:  # OpenRLHF: the judge settings are a module on shared disk
        compose("genrm_train", ["experiment=genrm_ralign_qwen3_8b", "llm@metarm=openai",
                                "metarm.base_url=http://h:1/v1", "metarm.api_key=sk-abcdef12"])
    assert ("metarm.api_key", ) == tuple(k for k, _ in e.value.problems if k == "metarm.api_key")


@pytest.mark.parametrize("text,secret", [
    ("genrm.api_key='sk-quoted-1234'", "sk-quoted-1234"),
    ('+stage_overrides.genrm_eval=["genrm.api_key=\'sk-inner-5678\'"]', "sk-inner-5678"),
    ("genrm={api_key:sk-dict-9012,model:m}", "sk-dict-9012"),
    ("genrm.base_url=https://alice:hunter2secret@api.example/v1", "hunter2secret"),
])
def test_every_hydra_spelling_of_a_key_is_found_and_masked(text, secret):
    from plumbing.secrets import override_secrets, redact_override_text, redact_tree

    assert override_secrets(text) == {secret}
    assert secret not in redact_override_text(text) and secret not in str(redact_tree({"o": [text]}))


def test_an_environment_interpolation_is_not_a_key_value():
    from plumbing.secrets import override_secrets, redact_override_text

    assert override_secrets("genrm.api_key=${oc.env:JUDGE_KEY}") == set()
    assert redact_override_text("genrm.api_key=${oc.env:JUDGE_KEY}") == "genrm.api_key=${oc.env:JUDGE_KEY}"


def test_a_key_passed_to_a_server_as_a_flag_is_found_and_masked():
    """``genrm.serve.extra_args=[--api-key,sk-...]``: the flag's value is a key, in the list
    form (value in the next item) and the ``--flag=value`` form."""
    from plumbing.secrets import MASK, collect_secret_values, redact_tree

    cfg = {"genrm": {"serve": {"extra_args": ["--port", "8001", "--api-key", "sk-server-123456", "--dtype", "bf16"]}},
           "judge": {"serve": {"extra_args": ["--api-key=sk-other-654321"]}}}
    assert collect_secret_values(cfg, environ={}) == {"sk-server-123456", "sk-other-654321"}
    masked = redact_tree(cfg)
    assert masked["genrm"]["serve"]["extra_args"] == ["--port", "8001", "--api-key", MASK, "--dtype", "bf16"]
    assert "sk-other-654321" not in str(masked)
