"""Secret detection and masking."""

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
