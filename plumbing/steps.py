"""A pipeline's steps: one step, and the variant matrix that writes the steps of many GenRMs.

A paper's experiment runs the same steps for every GenRM it compares (evaluate it, train a
policy with it as the reward, evaluate the policy), so an experiment lists its GenRM
*variants* and its step *templates* once, and ``expand`` writes a step per template and
variant (and seed), named ``<template>_<variant>`` (``_s<seed>`` appended when
``matrix.seeds`` lists seeds):

- a variant is trained here (``train``: the overrides of the ``matrix.train`` template's step,
  e.g. its base model and reward) or taken off the shelf (``model``: a hub id, a local path,
  another step's result, or, with ``overrides``, a served endpoint); it names its
  ``family`` (size, reward, ...), which its runs carry as ``family_<key>`` tags;
- in a template, ``@genrm`` is the variant's GenRM (its training step's result, or its
  ``model``), and ``@run:T`` / ``@dir:T`` naming a template ``T`` is the same variant's (and
  seed's) step of ``T``;
- a step outside the matrix that comes ``after`` a template comes after all of its steps,
  so correlate and compare follow the variants by themselves.

Adding a variant from the command line is one override, e.g.
``'+matrix.variants.rrm_32b={model: Reward-Reasoning/RRM-32B, family: {size: 32b}}'``;
dropping one is ``~matrix.variants.NAME`` (or ``matrix.variants.NAME.enabled=false``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional

from omegaconf import MISSING

from plumbing.config.schema import Problems
from plumbing.tags import FAMILY  # a variant's family key `size` is its runs' tag `family_size`

REF = re.compile(r"@(run|dir):([A-Za-z0-9_.-]+)")
# a variant's GenRM in a template's overrides; never the `llm@genrm=` of a config group
GENRM = re.compile(r"(?<![\w.@])@genrm(?![\w:])")


@dataclass
class PipelineStep:
    stage: str = MISSING
    overrides: List[str] = field(default_factory=list)
    after: List[str] = field(default_factory=list)
    enabled: bool = True
    variant: Optional[str] = None  # the GenRM variant its results belong to (tag `variant`, for analysis)
    # cluster=slurm: this step's job resources over cluster.slurm (nodes, gpus_per_node, time, ...)
    slurm: Dict[str, Any] = field(default_factory=dict)
    seed: Optional[int] = None  # default: the pipeline's seed
    tags: Dict[str, str] = field(default_factory=dict)  # more tags on its run (a variant's family)
    template: Optional[str] = None  # the matrix template it was written from (set by expand)
    # (set by expand) per override, the variant's key it comes from ("" for the template's own)
    origins: List[str] = field(default_factory=list)

    def key(self, name: str, path: str, override: Optional[int] = None) -> str:
        """The config key a problem with this step's ``path`` (its ``override``-th override) is
        fixed at: for a step the matrix wrote, the template's or the variant's, naming the step."""
        origin = self.origins[override] if override is not None and override < len(self.origins) else ""
        if origin:
            return f"matrix.variants.{self.variant}.{origin} (step {name})"
        if self.template is None:
            return f"steps.{name}.{path}"
        own = f"; this variant only: matrix.variants.{self.variant}.slurm.{self.template}.{path[6:]}" \
            if path.startswith("slurm.") else ""
        return f"matrix.steps.{self.template}.{path} (step {name}{own})"

    def needs(self) -> List[str]:
        """The steps it comes after: ``after`` and those its overrides name."""
        refs = [m.group(2) for o in self.overrides for m in REF.finditer(o)]
        return list(dict.fromkeys([*self.after, *refs]))


@dataclass
class Variant:
    """A GenRM the experiment compares: trained here or taken off the shelf."""

    # trained here: the overrides of its `matrix.train` step (its base model, its reward, ...)
    train: Optional[List[str]] = None
    # off the shelf: a hub id, a local path or another step's result (@run:STEP, @dir:STEP/...)
    model: Optional[str] = None
    # per template: more overrides of this variant's step (e.g. a served endpoint:
    # {genrm_eval: [llm@genrm=openai, genrm.base_url=http://host:8000/v1]})
    overrides: Dict[str, List[str]] = field(default_factory=dict)
    slurm: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # per template: its job's resources
    family: Dict[str, str] = field(default_factory=dict)  # what it is (size, reward, ...)
    enabled: bool = True


@dataclass
class Matrix:
    """GenRM variants x step templates (x seeds): see the module docstring."""

    variants: Dict[str, Variant] = field(default_factory=dict)
    steps: Dict[str, PipelineStep] = field(default_factory=dict)  # the templates, in order
    train: Optional[str] = None  # the template that trains a variant's GenRM (only for variants with `train`)
    seeds: List[int] = field(default_factory=list)  # each variant's steps once per seed; default: the pipeline's

    def names(self, template: str, variant: str) -> List[str]:
        """The steps a template writes for a variant, one per seed."""
        return [step_name(template, variant, s if self.seeds else None) for s in self.seeds or [None]]

    def check(self) -> Problems:
        """Keys relative to the matrix (the validator runs it at ``matrix``)."""
        p: Problems = []
        if self.variants and not self.steps:
            p.append(("steps", "the variants need step templates to run (genrm_eval, policy_train, ...)"))
        if self.train is not None and self.train not in self.steps:
            p.append(("train", f"no template named {self.train!r} (templates: {list(self.steps)})"))
        if len(set(self.seeds)) != len(self.seeds):
            p.append(("seeds", f"a seed is listed twice: {self.seeds}"))
        for name, v in self.variants.items():
            key = f"variants.{name}"
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                p.append((key, "a variant's name is part of its steps' names: letters, digits, '_', '.', '-'"))
            if (v.train is None) == (v.model is None):
                p.append((key, "give either `train` (the overrides of its training step) or `model` "
                               "(an off-the-shelf GenRM: hub id, path or @run:/@dir: reference), not both"))
            if v.train is not None and self.train is None:
                p.append((f"{key}.train", "the matrix has no training template: set matrix.train"))
            for t in [*v.overrides, *v.slurm]:
                if t not in self.steps:
                    p.append((f"{key}.overrides" if t in v.overrides else f"{key}.slurm",
                              f"no template named {t!r} (templates: {list(self.steps)})"))
            for k, value in v.family.items():
                if not re.fullmatch(r"[A-Za-z0-9_]+", str(k)):
                    p.append((f"{key}.family.{k}", "a family key becomes the tag family_<key>: letters, digits, '_'"))
                if not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(value)):
                    p.append((f"{key}.family.{k}", f"{value!r}: a family value is one word (letters, digits, _ . + -)"))
        return p


def step_name(template: str, variant: str, seed: Optional[int]) -> str:
    return f"{template}_{variant}" + (f"_s{seed}" if seed is not None else "")


def _refs(text: str, rename: Callable[[str], str]) -> str:
    return REF.sub(lambda m: f"@{m.group(1)}:{rename(m.group(2))}", text)


def expand(steps: Dict[str, PipelineStep], matrix: Matrix) -> Dict[str, PipelineStep]:
    """The pipeline's steps with the matrix written out: for each enabled variant, seed and
    template, a step (template by template, so every GenRM is evaluated before any is used);
    the experiment's own steps before them, but those that come ``after`` a template, whose
    ``after`` is widened to that template's steps (a written step named without its seed: to
    each seed's). Pure; ``clashes`` says where names collide."""
    variants = {n: v for n, v in matrix.variants.items() if v.enabled}
    templates = {n: t for n, t in matrix.steps.items() if t.enabled}
    seeds: List[Optional[int]] = list(matrix.seeds) or [None]
    written = {step_name(t, v, None) for t in templates for v in variants}
    out: Dict[str, PipelineStep] = {}
    for tname, template in templates.items():  # template-major: all GenRMs are evaluated, then used
        for vname, variant in variants.items():
            if tname == matrix.train and variant.train is None:
                continue  # an off-the-shelf GenRM is not trained here
            for seed in seeds:
                def rename(ref: str, vname: str = vname, seed: Optional[int] = seed) -> str:
                    """A reference as written for one seed of one variant, to the step it means."""
                    if ref in matrix.steps:  # a disabled template's too: refused as a step that is not there
                        return step_name(ref, vname, seed)
                    if ref in written and seed is not None:  # another variant's step, the same seed
                        return f"{ref}_s{seed}"
                    return ref

                if variant.train is not None and matrix.train in templates:
                    genrm = f"@run:{step_name(matrix.train, vname, seed)}"
                else:
                    genrm = _refs(variant.model or "", rename)
                own = list(variant.train or []) if tname == matrix.train else []
                extra = variant.overrides.get(tname, [])
                overrides = [GENRM.sub(lambda _: genrm, _refs(o, rename))
                             for o in [*template.overrides, *own, *extra]]
                origins = ["model" if variant.model is not None and GENRM.search(o) else ""  # @genrm: its model
                           for o in template.overrides] + ["train"] * len(own) + [f"overrides.{tname}"] * len(extra)
                out[step_name(tname, vname, seed)] = replace(
                    template, overrides=overrides, origins=origins, after=[rename(a) for a in template.after],
                    variant=vname, seed=seed if seed is not None else template.seed, template=tname,
                    slurm={**template.slurm, **variant.slurm.get(tname, {})},
                    tags={**template.tags, **{f"{FAMILY}{k}": str(v) for k, v in variant.family.items()}})
    late = set(matrix.steps) | written  # the experiment's own steps that follow a template (or such a step) go last
    while True:
        more = {n for n, st in steps.items() if n not in late and set(st.needs()) & late}
        if not more:
            break
        late |= more
    before: Dict[str, PipelineStep] = {}
    for name, step in steps.items():
        after: List[str] = []
        for a in step.after:
            # a template's steps, those written (none of a disabled template or variant: order only)
            if a in matrix.steps:
                after += [s for v in variants for s in matrix.names(a, v) if s in out]
            elif a in written and matrix.seeds:  # a written step named as without seeds: every seed's
                after += [f"{a}_s{seed}" for seed in matrix.seeds]
            else:
                after.append(a)
        (out if name in late else before)[name] = replace(step, after=list(dict.fromkeys(after)))
    return {**before, **out}


def clashes(steps: Dict[str, PipelineStep], matrix: Matrix) -> Problems:
    """Names the matrix would write twice, or over a step of the experiment's own."""
    p: Problems = []
    seen: Dict[str, str] = {}
    for vname, variant in matrix.variants.items():
        if not variant.enabled:
            continue
        for tname in matrix.steps:
            for s in matrix.names(tname, vname):
                where = f"template {tname!r} x variant {vname!r}"
                if s in steps:
                    p.append((f"steps.{s}", f"{where} writes a step of this name too; rename one"))
                elif s in seen:
                    p.append((f"matrix.variants.{vname}", f"{where} and {seen[s]} both write step {s!r}; rename one"))
                seen[s] = where
    for t in matrix.steps:
        if t in steps:
            p.append((f"steps.{t}", f"a step and a template are both named {t!r}: a reference to it would be ambiguous"))
    return p
