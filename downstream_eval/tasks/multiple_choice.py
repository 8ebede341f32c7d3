"""Multiple choice (GPQA-style): options shuffled with a fixed seed, the letter read back.

Records (GPQA's field names by default): ``Question``, ``Correct Answer``, ``Incorrect
Answer 1..3``, ``Record ID``. Params: ``question_field``, ``correct_field``,
``incorrect_fields`` (list), ``id_field``, ``seed`` (the shuffle of each question depends
on it and on the question's id, so reruns and other models see the same order).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from downstream_eval.tasks import Doc, Grade, Task
from genrm.parsing import boxed
from plumbing.config.schema import Problems
from plumbing.data import FieldError

LETTERS = "ABCDEFGHIJ"
_ANSWER = re.compile(r"(?:answer|choice|option)\s*(?:is|:)?\s*\(?\*{0,2}([A-J])\b", re.IGNORECASE)
_LONE = re.compile(r"^\s*\(?([A-J])\)?[.:)]?\s*$", re.MULTILINE)


def extract_letter(text: str, n_options: int) -> Optional[str]:
    """The chosen letter: the last boxed letter, else the last "answer: X", else a lone letter line."""
    valid = LETTERS[:n_options]
    for content in reversed(boxed(text or "")):
        inner = re.sub(r"\\text\{([^}]*)\}", r"\1", content).strip().strip("()").upper()
        if len(inner) == 1 and inner in valid:
            return inner
    for pattern in (_ANSWER, _LONE):
        found = [x.upper() for x in pattern.findall(text or "") if x.upper() in valid]
        if found:
            return found[-1]
    return None


def shuffled(options: List[str], correct: int, key: str, seed: int) -> tuple:
    """(options in a fixed pseudo-random order, index of the correct one)."""
    rng = random.Random(int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), 16))
    order = list(range(len(options)))
    rng.shuffle(order)
    return [options[i] for i in order], order.index(correct)


@dataclass
class MultipleChoiceParams:
    question_field: str = "Question"
    correct_field: str = "Correct Answer"
    incorrect_fields: List[str] = field(
        default_factory=lambda: ["Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"])
    id_field: str = "Record ID"  # missing in a record: <task>-<line>
    seed: int = 0  # of the options' order (with the question's id)

    def check(self) -> Problems:
        n = len(self.incorrect_fields) + 1
        return [] if 2 <= n <= len(LETTERS) else [("incorrect_fields", f"gives {n} options; 2 to {len(LETTERS)} fit")]


class MultipleChoiceTask(Task):
    Params = MultipleChoiceParams

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        q_field, c_field, wrong_fields = o.question_field, o.correct_field, o.incorrect_fields
        for name in [q_field, c_field, *wrong_fields]:
            if not isinstance(rec.get(name), str) or not rec[name].strip():
                raise FieldError(name, "missing or empty")
        rid = str(rec.get(o.id_field, f"{self.cfg.name}-{index}"))
        options, correct = shuffled([rec[c_field].strip()] + [rec[f].strip() for f in wrong_fields], 0, rid, o.seed)
        listing = "\n".join(f"({LETTERS[i]}) {opt}" for i, opt in enumerate(options))
        text = (f"{rec[q_field].strip()}\n\n{listing}\n\nThink it through, then give the letter of the correct "
                f"option within \\boxed{{}}, e.g. \\boxed{{A}}.")
        return Doc(rid, self.prompt(text), LETTERS[correct], {"options": options})

    def grade_one(self, doc: Doc, output: str) -> Grade:
        letter = extract_letter(output, len(doc.meta["options"]))
        if letter is None:
            return Grade(0.0, None, "no_answer")
        return Grade(1.0 if letter == doc.target else 0.0, letter, "correct" if letter == doc.target else "wrong")
