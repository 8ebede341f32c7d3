"""Prompt records: ``prompt`` (text or [{role, content}]), optional ``reference`` (a response
to compare the policy with), ``domain``, ``id``. Options rename the fields
(``prompt_field``, ``reference_field``, ``domain_field``) or fix the domain (``domain``)."""

from __future__ import annotations

import hashlib
from typing import Any, Dict

from genrm.records import conversation
from plumbing.data import FieldError
from policy_rlhf.prompts import PromptItem, domain_of

PRODUCES = "policy_prompts"


def convert(rec: Dict[str, Any], options: Dict[str, Any]) -> PromptItem:
    field = options.get("prompt_field", "prompt")
    if field not in rec:
        raise FieldError(field, "missing")
    context = conversation(rec[field], field)
    ref_field = options.get("reference_field", "reference")
    reference = rec.get(ref_field)
    if reference is not None and not isinstance(reference, str):
        raise FieldError(ref_field, "expected text")
    domain = options.get("domain") or domain_of(rec.get(options.get("domain_field", "domain")))
    rid = rec.get("id") or hashlib.sha256(repr(context).encode()).hexdigest()[:16]
    return PromptItem(str(rid), context, domain, reference or None)
