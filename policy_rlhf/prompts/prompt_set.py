"""Prompt records: ``prompt`` (text or [{role, content}]), optional ``reference`` (a response
to compare the policy with), ``domain``, ``id``. Params rename the fields
(``prompt_field``, ``reference_field``, ``domain_field``) or fix the domain (``domain``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Optional

from genrm.records import conversation
from plumbing.config.schema import Problems, check_choice
from plumbing.data import FieldError
from policy_rlhf.prompts import DOMAINS, PromptFormat, PromptItem, domain_of


@dataclass
class PromptSetParams:
    prompt_field: str = "prompt"
    reference_field: str = "reference"
    domain_field: str = "domain"
    domain: Optional[str] = None  # every prompt's domain, whatever its record says

    def check(self) -> Problems:
        p: Problems = []
        if self.domain is not None:
            check_choice(p, "domain", self.domain, DOMAINS)
        return p


class PromptSet(PromptFormat):
    Params = PromptSetParams

    def convert(self, rec: Dict[str, Any]) -> PromptItem:
        o = self.params
        if o.prompt_field not in rec:
            raise FieldError(o.prompt_field, "missing")
        context = conversation(rec[o.prompt_field], o.prompt_field)
        reference = rec.get(o.reference_field)
        if reference is not None and not isinstance(reference, str):
            raise FieldError(o.reference_field, "expected text")
        domain = o.domain or domain_of(rec.get(o.domain_field))
        rid = rec.get("id") or hashlib.sha256(repr(context).encode()).hexdigest()[:16]
        return PromptItem(str(rid), context, domain, reference or None)
