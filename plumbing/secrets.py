"""Keep secrets (API keys, tokens, passwords) out of MLflow, logs and artifacts.

Two nets: keys whose *name* says secret are masked wherever they appear in a config, and
the *values* of those keys and of secret-looking environment variables are scrubbed from any
text before it is logged.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping

MASK = "***REDACTED***"

_SECRET_NAME = re.compile(
    r"(?i)^(.*[_-])?(api[_-]?key|apikey|secret|secret[_-]?key|password|passwd|authorization|"
    r"credentials?|private[_-]?key|access[_-]?token|auth[_-]?token|bearer|token)$"
)
# Tokenizer fields are not secrets.
_NOT_SECRET = re.compile(r"(?i)^(pad|eos|bos|unk|sep|cls|mask|max|num|special)[_-]?tokens?$")
_MIN_SECRET_LEN = 6


def is_secret_key(key: str) -> bool:
    """True when a config key or env var name denotes a secret (``api_key``, ``HF_TOKEN``...)."""
    last = re.split(r"[.\[\]]", str(key).strip())
    name = [x for x in last if x][-1] if any(last) else str(key)
    return bool(_SECRET_NAME.match(name)) and not _NOT_SECRET.match(name)


def secret_values_from_env(environ: Mapping[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if is_secret_key(k) and v and len(v) >= _MIN_SECRET_LEN}


# ``key=value`` inside a string: an override carried as data (``stage_overrides``, a step's
# ``overrides``), whose key may name a secret.
_VALUE = r"('[^']*'|\"[^\"]*\"|[^\s,'\"\]}]+)"
_OVERRIDE = re.compile(r"([+~]*[A-Za-z_][\w.\[\]@-]*)=" + _VALUE)
# ``genrm={api_key:sk-...}``: Hydra's dict form
_DICT_ITEM = re.compile(r"([A-Za-z_][\w-]*)\s*:\s*" + _VALUE)
# ``https://user:password@host``: credentials in a URL
_URL_CRED = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]+:([^/@\s]+)@")
_ENV_NAME = re.compile(r"(?i)^(.*[_-])?(api[_-]?key|token|secret|password)[_-]env$")


def _literal(value: str) -> str:
    v = value.strip()
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" else v


def override_secrets(text: str) -> set[str]:
    """The literal values of secret-named keys in the ``key=value`` overrides (and Hydra dict
    items) a string holds, and passwords in URLs; ``${oc.env:...}`` is not a value."""
    found = {_literal(v) for k, v in _OVERRIDE.findall(text) if is_secret_key(k.lstrip("+~"))}
    if "{" in text:
        found |= {_literal(v) for k, v in _DICT_ITEM.findall(text) if is_secret_key(k)}
    found |= set(_URL_CRED.findall(text))
    return {v for v in found if v and not v.startswith("${")}


def collect_secret_values(obj: Any, found: set[str] | None = None,
                          environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of secrets anywhere in a nested dict/list structure: under secret-named keys,
    in ``key=value`` overrides held as strings, and in the environment variables that
    ``*api_key_env``-style keys name (whatever those variables are called)."""
    env = os.environ if environ is None else environ
    found = set() if found is None else found
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if is_secret_key(str(k)) and isinstance(v, str) and v:
                found.add(v)
            elif _ENV_NAME.match(str(k)) and isinstance(v, str) and env.get(v):
                found.add(env[v])
            else:
                collect_secret_values(v, found, env)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            if _secret_flag(obj, i - 1) and isinstance(v, str) and v:
                found.add(v)  # ["--api-key", "sk-..."]: a server's command line (serve.extra_args)
            else:
                collect_secret_values(v, found, env)
    elif isinstance(obj, str):
        found |= override_secrets(obj)
    return found


def _secret_flag(items: Any, i: int) -> bool:
    """Whether ``items[i]`` is a command-line flag naming a secret (``--api-key``), whose value
    is the next item."""
    flag = items[i] if 0 <= i < len(items) else None
    return isinstance(flag, str) and flag.startswith("-") and "=" not in flag and is_secret_key(flag.lstrip("-"))


def redact_override_text(text: str) -> str:
    """``text`` with the value of every secret-named ``key=value`` (and dict item) in it and
    every password in a URL masked."""
    def mask(m: "re.Match[str]") -> str:
        secret = is_secret_key(m.group(1).lstrip("+~")) and not m.group(2).startswith("${")
        return f"{m.group(1)}={MASK}" if secret else m.group(0)

    out = _OVERRIDE.sub(mask, text)
    if "{" in out:
        out = _DICT_ITEM.sub(lambda m: f"{m.group(1)}:{MASK}" if is_secret_key(m.group(1)) else m.group(0), out)
    return _URL_CRED.sub(lambda m: m.group(0).replace(m.group(1), MASK), out)


def redact_tree(obj: Any) -> Any:
    """A copy of a nested dict/list structure with every secret-named key's value masked
    (also inside ``key=value`` strings)."""
    if isinstance(obj, Mapping):
        return {
            k: (MASK if is_secret_key(str(k)) and v not in (None, "") else redact_tree(v))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [MASK if _secret_flag(obj, i - 1) else redact_tree(v) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        return redact_override_text(obj)
    return obj


class Scrubber:
    """Replaces known secret values in text. Built once per run from config and environment."""

    def __init__(self, values: Iterable[str] = ()):
        vals = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN}
        vals |= secret_values_from_env()
        # Longest first so a secret that contains another is masked whole.
        self._values = sorted(vals, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self._values)) if vals else None

    def __call__(self, text: str) -> str:
        if not self._pattern or not isinstance(text, str):
            return text
        return self._pattern.sub(MASK, text)

    def override(self, item: str) -> str:
        """Mask the value of a Hydra override such as ``llm.api_key=sk-...``."""
        key, sep, _ = item.partition("=")
        if sep and is_secret_key(key.lstrip("+~")):
            return f"{key}={MASK}"
        return self(redact_override_text(item))


def digest_secrets(obj: Any) -> Any:
    """A copy with the value of every secret-named key replaced by a digest of it: still tells
    two keys apart (a cache identity), never shows one."""
    import hashlib

    if isinstance(obj, Mapping):
        return {k: (f"sha256:{hashlib.sha256(str(v).encode()).hexdigest()[:16]}"
                    if is_secret_key(str(k)) and v not in (None, "") else digest_secrets(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [digest_secrets(v) for v in obj]
    return obj


def secret_paths(obj: Any, prefix: str = "") -> list:
    """Dotted keys of the secret-named keys that hold a value, in a nested dict/list."""
    out = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            where = f"{prefix}.{k}" if prefix else str(k)
            if is_secret_key(str(k)) and isinstance(v, str) and v:
                out.append(where)
            else:
                out += secret_paths(v, where)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += secret_paths(v, f"{prefix}[{i}]")
    return out
