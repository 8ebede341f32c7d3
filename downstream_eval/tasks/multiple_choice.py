"""Multiple choice (GPQA-style): options shuffled with a fixed seed, the letter read back.

Records (GPQA's field names by default): ``Question``, ``Correct Answer``, ``Incorrect
Answer 1..3``, ``Record ID``. Options: ``question_field``, ``correct_field``,
``incorrect_fields`` (list), ``id_field``, ``seed`` (the shuffle of each question depends
on it and on the question's id, so reruns and other models see the same order).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Dict, List, Optional

from downstream_eval.tasks import Doc, Grade, Task
from genrm.parsing import boxed
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


class MultipleChoiceTask(Task):
    kind = "multiple_choice"

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.cfg.options
        q_field = o.get("question_field", "Question")
        c_field = o.get("correct_field", "Correct Answer")
        wrong_fields = o.get("incorrect_fields", ["Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"])
        for name in [q_field, c_field, *wrong_fields]:
            if not isinstance(rec.get(name), str) or not rec[name].strip():
                raise FieldError(name, "missing or empty")
        rid = str(rec.get(o.get("id_field", "Record ID"), f"{self.cfg.name}-{index}"))
        options, correct = shuffled([rec[c_field].strip()] + [rec[f].strip() for f in wrong_fields], 0, rid,
                                    int(o.get("seed", 0)))
        listing = "\n".join(f"({LETTERS[i]}) {opt}" for i, opt in enumerate(options))
        text = (f"{rec[q_field].strip()}\n\n{listing}\n\nThink it through, then give the letter of the correct "
                f"option within \\boxed{{}}, e.g. \\boxed{{A}}.")
        return Doc(rid, self.prompt(text), LETTERS[correct], {"options": options})

    def grade_one(self, doc: Doc, output: str) -> Grade:
        letter = extract_letter(output, len(doc.meta["options"]))
        if letter is None:
            return Grade(0.0, None, "no_answer")
        return Grade(1.0 if letter == doc.target else 0.0, letter, "correct" if letter == doc.target else "wrong")
