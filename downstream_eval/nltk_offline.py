"""The NLTK data the IFEval checkers need, made locally (nothing is downloaded).

lm-eval's IFEval checkers split sentences and words with NLTK's Punkt, whose ``punkt_tab``
model is a download. Punkt works with an empty model (its unsupervised rules alone); this
writes one, with common English abbreviations so "Dr. Smith" is not split, into the
suite's cache and points NLTK at it.
"""

from __future__ import annotations

import os
from pathlib import Path

ABBREVIATIONS = ("mr mrs ms dr prof sr jr st vs etc e.g i.e a.m p.m u.s u.k inc ltd co corp dept est fig jan feb mar "
                 "apr jun jul aug sep sept oct nov dec no vol approx").split()


def data_dir() -> Path:
    return Path(os.environ.get("RALIGN_CACHE", Path.home() / ".cache" / "ralign")) / "nltk_data"


def ensure_punkt() -> Path:
    """Write the local punkt_tab model once; add its root to NLTK's search path."""
    root = data_dir()
    lang = root / "tokenizers" / "punkt_tab" / "english"
    if not (lang / "abbrev_types.txt").exists():
        lang.mkdir(parents=True, exist_ok=True)
        (lang / "collocations.tab").write_text("")
        (lang / "sent_starters.txt").write_text("")
        (lang / "ortho_context.tab").write_text("")
        (lang / "abbrev_types.txt").write_text("\n".join(ABBREVIATIONS) + "\n")
    os.environ["NLTK_DATA"] = os.pathsep.join(p for p in (str(root), os.environ.get("NLTK_DATA", "")) if p)
    import nltk

    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root
