"""IFBench's 58 out-of-distribution instruction checks, written from the definitions in
allenai/IFBench (``ifbench/instructions.py``, NeurIPS 2025 D&B; arXiv 2507.02833).

Each check is a function ``(response, args) -> bool`` registered under its IFBench id;
``args`` are the record's kwargs with nulls dropped. The rules follow the authors' checks
as they are written, their quirks included (e.g. ``ratio:overlap`` compares character
trigrams, ``format:sub-bullets`` passes a response with no ``*``), because the point is a
score comparable with theirs; where the authors' code would crash on a response (an empty
CSV field), the check fails instead.

Offline: sentences and words come from NLTK with the suite's local Punkt model
(downstream_eval/nltk_offline.py) instead of the downloaded one, so an abbreviation outside
its list can split a sentence where the authors' would not; NLTK's English stop words are
listed here (only the ones a ``\\w+`` token can match). ``words:start_verb`` needs NLTK's
averaged-perceptron tagger: used when its model is on NLTK's path (``nltk.download
('averaged_perceptron_tagger_eng')`` done beforehand), otherwise a verb lexicon stands in
and the verdict is marked approximate (:func:`start_verb_exact`).
"""

from __future__ import annotations

import csv
import io
import re
import string
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any, Callable, Dict, List, Mapping, Sequence

Args = Mapping[str, Any]
Check = Callable[[str, Args], bool]

PUNCT = string.punctuation
_NO_PUNCT = str.maketrans("", "", PUNCT)
CHECKS: Dict[str, Check] = {}
REQUIRED: Dict[str, Sequence[str]] = {}  # the kwargs a check cannot do without


def check(iid: str, *required: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[iid], REQUIRED[iid] = fn, required
        return fn
    return register


# ---------------------------------------------------------------- text helpers
def no_punct(text: str) -> str:
    return text.translate(_NO_PUNCT)


def trim(word: str) -> str:
    """A token with ASCII punctuation and spaces cut from both ends."""
    return word.strip(PUNCT + " ")


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def sentences(text: str) -> List[str]:
    import nltk

    _punkt()
    return nltk.sent_tokenize(text)


def tokens(text: str) -> List[str]:
    import nltk

    _punkt()
    return nltk.word_tokenize(text)


@lru_cache(maxsize=1)
def _punkt() -> None:
    from downstream_eval.nltk_offline import ensure_punkt

    ensure_punkt()


def ascii_fold(text: str) -> str:
    """'São Tomé' -> 'Sao Tome': decomposed, marks and other non-ASCII dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


# NLTK's English stop-word list, the entries a \w+ token can equal (its contractions cannot).
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself
it its itself they them their theirs themselves what which who whom this that these those am is are was were be
been being have has had having do does did doing a an the and but if or because as until while of at by for with
about against between into through during before after above below to from up down in out on off over under again
further then once here there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven
isn ma mightn mustn needn shan shouldn wasn weren won wouldn
""".split())

CONJUNCTIONS = frozenset("and but for nor or so yet".split())
PERSON_NAMES = tuple("""Emma Liam Sophia Jackson Olivia Noah Ava Lucas Isabella Mason Mia Ethan Charlotte Alexander
Amelia Benjamin Harper Leo Zoe Daniel Chloe Samuel Lily Matthew Grace Owen Abigail Gabriel Ella Jacob Scarlett Nathan
Victoria Elijah Layla Nicholas Audrey David Hannah Christopher Penelope Thomas Nora Andrew Aria Joseph Claire Ryan
Stella Jonathan""".split())
PRONOUNS = frozenset("""i me we us you he him she her it they them my mine our ours your yours his hers its their
theirs myself ourselves yourself yourselves himself herself itself themselves this that these those who whom whose
which what whoever whomever whatever whichever anybody anyone anything everybody everyone everything nobody nothing
somebody someone something each either neither both all some any none""".split())
PRIMES = frozenset(p for p in range(2, 100) if all(p % d for d in range(2, p)))
CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")
# capitals of European countries north of 45 degrees, highest latitude first (the authors' answer key)
NORTHERN_CAPITALS = ("Reykjavik Helsinki Oslo Tallinn Stockholm Riga Moscow Copenhagen Vilnius Minsk Dublin Berlin "
                     "Amsterdam Warsaw London Brussels Prague Luxembourg Paris Vienna Bratislava Budapest Vaduz "
                     "Chisinau Bern Ljubljana Zagreb").split()
REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."


# ---------------------------------------------------------------- count:
@check("count:word_count_range", "min_words", "max_words")
def word_count_range(text: str, a: Args) -> bool:
    return a["min_words"] <= word_count(text) <= a["max_words"]


@check("count:unique_word_count", "N")
def unique_word_count(text: str, a: Args) -> bool:
    # an all-punctuation token trims to "" and counts as one more distinct word, as theirs does
    return len({trim(w) for w in text.lower().split()}) >= a["N"]


@check("count:conjunctions", "small_n")
def conjunctions(text: str, a: Args) -> bool:
    # distinct as written: "and" and "and," are two, as in the authors' count
    return len({w for w in text.split() if trim(w).lower() in CONJUNCTIONS}) >= a["small_n"]


@check("count:person_names", "N")
def person_names(text: str, a: Args) -> bool:
    return sum(1 for n in PERSON_NAMES if re.search(rf"\b{re.escape(n)}\b", text)) >= a["N"]


@check("count:numbers", "N")
def numbers(text: str, a: Args) -> bool:
    return len(re.findall(r"\d+", no_punct(text))) == a["N"]  # 3.14 and 1,000 are one number each


@check("count:punctuation")
def punctuation_cover(text: str, a: Args) -> bool:
    if not any(s in text for s in ("?!", "!?", "\u203d")):
        return False
    rest = text.replace("?!", "", 1)
    if rest == text:
        rest = text.replace("!?", "", 1)  # the interrobang's two marks do not count for ! and ?
    return set(".,!?;:") <= set(rest)


@check("count:words_japanese", "N")
def words_japanese(text: str, a: Args) -> bool:
    n = a["N"]
    for i, w in enumerate(text.split(), start=1):
        w = trim(w)
        if i % n == 0 and w and not w.isdigit() and not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", w):
            return False
    return True


@check("count:pronouns", "N")
def pronouns(text: str, a: Args) -> bool:
    return sum(1 for t in tokens(text.replace("/", " ").lower()) if t in PRONOUNS) >= a["N"]


@check("count:keywords_multiple", "keyword1", "keyword2", "keyword3", "keyword4", "keyword5")
def keywords_multiple(text: str, a: Args) -> bool:
    low = text.lower()
    wanted = zip((a[f"keyword{i}"].strip().lower() for i in range(1, 6)), (1, 2, 3, 5, 7))
    return all(low.count(kw) == n for kw, n in wanted)  # substring occurrences, as theirs


# ---------------------------------------------------------------- ratio:
@check("ratio:stop_words", "percentage")
def stop_words(text: str, a: Args) -> bool:
    n = word_count(text)
    stops = sum(1 for t in re.findall(r"\w+", text) if t.lower() in STOP_WORDS)
    return n > 0 and 100 * stops / n <= a["percentage"]


def _endings(text: str) -> Counter:
    return Counter(s[-1] for s in sentences(text) if s and s[-1] in ".?!")


@check("ratio:sentence_type")
def sentence_type(text: str, a: Args) -> bool:
    c = _endings(text)
    return c["."] == 2 * c["?"]


@check("ratio:sentence_balance")
def sentence_balance(text: str, a: Args) -> bool:
    c = _endings(text)
    return c["."] == c["?"] == c["!"]


@check("ratio:overlap", "reference_text", "percentage")
def trigram_overlap(text: str, a: Args) -> bool:
    """Character trigrams (the authors feed strings to nltk.ngrams): the share of the
    response's distinct trigrams found in the reference, within 2 points of the target."""
    mine = {text[i:i + 3] for i in range(len(text) - 2)}
    ref = a["reference_text"]
    theirs = {ref[i:i + 3] for i in range(len(ref) - 2)}
    if not mine:
        return False
    return abs(100 * len(mine & theirs) / len(mine) - a["percentage"]) <= 2


@check("ratio:sentence_words")
def same_length_sentences(text: str, a: Args) -> bool:
    # three sentences of equal length in characters; the authors do not test the words
    sents = sentences(text)
    return len(sents) == 3 and len({len(s.strip()) for s in sents}) == 1


# ---------------------------------------------------------------- words:
@check("words:alphabet")
def alphabet_loop(text: str, a: Args) -> bool:
    words = no_punct(text).split()
    if not words:
        return False
    letter = words[0][0].lower()  # may lower to two characters ("İ"): then no letter
    if len(letter) != 1 or letter not in string.ascii_lowercase:
        return False
    for w in (w.lower() for w in words[1:]):
        letter = chr((ord(letter) - ord("a") + 1) % 26 + ord("a"))
        if w[0] != letter:
            return False
    return True


@check("words:vowel")
def three_vowels(text: str, a: Args) -> bool:
    lines = text.strip().split("\n")
    return len(lines) == 1 and len(set(lines[0].lower()) & set("aeiou")) <= 3


@check("words:consonants")
def consonant_clusters(text: str, a: Args) -> bool:
    def cluster(w: str) -> bool:
        return any(x in CONSONANTS and y in CONSONANTS for x, y in zip(w, w[1:]))
    return all(cluster(w) for w in text.lower().split())  # punctuation stays: "a." has none


@check("words:palindrome")
def palindromes(text: str, a: Args) -> bool:
    return sum(1 for w in no_punct(text).lower().split() if len(w) >= 5 and w == w[::-1]) >= 10


@check("words:prime_lengths")
def prime_lengths(text: str, a: Args) -> bool:
    return all(len(w) in PRIMES for w in no_punct(text).split())


def start_verb_exact() -> bool:
    """Whether NLTK's tagger model is available here (the authors' check) or the lexicon
    stands in for it."""
    import nltk

    try:
        nltk.data.find("taggers/averaged_perceptron_tagger_eng/")
        return True
    except LookupError:
        return False


# Stand-in for the tagger's first-token verdict: verbs a response is likely to open with
# (imperatives, auxiliaries, their -s/-ed/-ing forms); modals are not VB* and are left out.
VERBS = frozenset("""
be is are was were am been being do does did done doing have has had having get got go went gone make made take took
taken give gave given let keep kept put see saw seen say said tell told think thought know knew known find found
feel felt become became begin began begun bring brought build built buy bought choose chose come came consider
create cut draw drew drive drove eat ate fall fell fight fought fly flew forget forgot grow grew hear heard hold held
imagine leave left lose lost meet met pay paid read run ran seek sought sell sold send sent set show shown sit sat
sleep slept speak spoke spend spent stand stood swim swam teach taught throw threw understand understood wake woke
wear wore win won write wrote written accept achieve act add adjust adopt allow analyze apply approach arrange ask
assess assume attach avoid balance believe boost break browse calculate call care change check clarify clean close
collect combine compare complete connect contact continue convert cook copy count craft cycle dance decide define
delete deliver describe design determine develop discover discuss dive divide double download drink drop edit
eliminate embrace emphasize enable encourage engage enhance enjoy ensure enter establish estimate evaluate examine
expand experience explain explore express fill finish fix focus follow gather generate guide handle help highlight
hire identify ignore implement improve include increase install introduce invest invite join jump keep kick launch
learn limit link list listen live locate look maintain manage map measure mix monitor move name navigate need note
notice observe obtain offer open order organize outline paint pick place plan plant play practice prepare present
prevent prioritize produce protect provide pull push question reach recall recognize recommend reduce reflect
register relax remember remove repeat replace research reset resolve respond rest restart return review rewrite
save schedule search secure select serve share shift simplify skip solve sort start stay step stop store study
submit suggest summarize support suppose take talk test thank track train transform translate travel treat try turn
unlock update upgrade use validate verify visit wait walk want warm wash watch welcome wonder work worry wrap
""".split())


def _verb_form(word: str) -> bool:
    w = word.lower()
    if w in VERBS:
        return True
    for suffix, repl in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("d", ""), ("es", ""), ("s", ""),
                         ("ied", "y"), ("ies", "y")):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            stem = w[: -len(suffix)] + repl
            if stem in VERBS or (suffix in ("ing", "ed") and len(stem) > 2 and stem[-1] == stem[-2]
                                 and stem[:-1] in VERBS):  # running, stopped
                return True
    return False


@check("words:start_verb")
def start_verb(text: str, a: Args) -> bool:
    toks = tokens(text)
    if not toks:
        return False
    if start_verb_exact():
        import nltk

        return "VB" in nltk.pos_tag(toks)[0][1]
    return _verb_form(toks[0])


@check("words:repeats", "small_n")
def limited_repeats(text: str, a: Args) -> bool:
    counts = Counter(no_punct(text.lower()).split())
    return all(c <= a["small_n"] for c in counts.values())


@check("words:odd_even_syllables")
def odd_even_syllables(text: str, a: Args) -> bool:
    import syllapy

    parity = [syllapy.count(w) % 2 for w in no_punct(text).lower().split()]
    return all(x != y for x, y in zip(parity, parity[1:]))


@check("words:last_first")
def last_word_first(text: str, a: Args) -> bool:
    sents = sentences(text)
    for this, nxt in zip(sents, sents[1:]):
        last, first = this.rstrip(PUNCT + " ").split(), nxt.lstrip(PUNCT + " ").split()
        if not last or not first or last[-1].lower() != first[0].lower():
            return False
    return True


@check("words:paragraph_last_first")
def paragraph_last_first(text: str, a: Args) -> bool:
    for line in text.split("\n"):
        words = trim(line.strip().lower()).split()  # inner punctuation stays: "end," != "end"
        if words and words[0] != words[-1]:
            return False
    return True


@check("words:no_consecutive")
def no_consecutive_letter(text: str, a: Args) -> bool:
    words = no_punct(text.lower()).split()
    return all(x[0] != y[0] for x, y in zip(words, words[1:]))


def _words_no_punct(text: str) -> List[str]:
    return [t for t in tokens(text) if any(c.isalnum() for c in t)]


@check("words:keywords_specific_position", "keyword", "n", "m")
def keyword_at_position(text: str, a: Args) -> bool:
    sents, n, m = sentences(text), a["n"], a["m"]
    if len(sents) < n:
        return False
    words = _words_no_punct(sents[n - 1])
    return len(words) >= m and words[m - 1].lower() == a["keyword"].strip().lower()


@check("words:words_position", "keyword")
def second_and_second_last(text: str, a: Args) -> bool:
    toks, kw = tokens(text), a["keyword"].strip().lower()
    if len(toks) < 2:
        return False
    if toks[-1] in PUNCT:  # a closing mark is a token: the word before it counts as last
        return len(toks) >= 3 and toks[1].lower() == toks[-3].lower() == kw
    return toks[1].lower() == toks[-2].lower() == kw


# ---------------------------------------------------------------- sentence:
@check("sentence:alliteration_increment")
def alliteration_increment(text: str, a: Args) -> bool:
    """Per sentence, the words in runs sharing a first letter (a run of k counts k); each
    sentence must have more than the one before."""
    prev = -1
    for sent in sentences(text):
        words = [w for w in (w.lstrip(PUNCT + " ") for w in sent.lower().split()) if w]
        score, in_run = 0, False
        for x, y in zip(words, words[1:]):
            same = x[0] == y[0]
            score += (1 if in_run else 2) if same else 0
            in_run = same
        if score <= prev:
            return False
        prev = score
    return True


@check("sentence:keyword", "word", "N")
def keyword_in_sentence(text: str, a: Args) -> bool:
    sents, n = sentences(text), int(a["N"])
    return len(sents) >= n and re.search(rf"\b{re.escape(a['word'])}\b", sents[n - 1], re.IGNORECASE) is not None


@check("sentence:increment", "small_n")
def increment_words(text: str, a: Args) -> bool:
    counts = [len(no_punct(s).split()) for s in sentences(text)]
    return bool(counts) and all(y == x + a["small_n"] for x, y in zip(counts, counts[1:]))


# ---------------------------------------------------------------- format:
@check("format:parentheses")
def nested_brackets(text: str, a: Args) -> bool:
    """A matched group closed after brackets were open 5 deep (a mismatch starts over)."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: List[str] = []
    deepest = 0
    for ch in text:
        if ch in "([{":
            stack.append(ch)
            deepest = max(deepest, len(stack))
        elif ch in pairs:
            if stack and stack[-1] == pairs[ch]:
                stack.pop()
                if deepest >= 5:
                    return True
            else:
                stack, deepest = [], 0
    return False


@check("format:quotes")
def nested_quotes(text: str, a: Args) -> bool:
    """A quote mark equal to the innermost open one closes it; any other opens a level; passes
    once three levels have been open and closed."""
    stack: List[str] = []
    reached = 0
    for ch in text:
        if stack and ch == stack[-1]:
            stack.pop()
            if reached - len(stack) >= 3:
                return True
        elif ch in "\"'":
            stack.append(ch)
            reached = max(reached, len(stack))
    return False


@check("format:options", "options")
def one_of_options(text: str, a: Args) -> bool:
    opts = a["options"]
    letters = re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", opts) is not None  # a), b), c): exact answer only
    sep = "/" if "/" in opts else "or" if "or" in opts else ","
    choices = [o.strip() for o in opts.split(sep)]
    if letters:
        return text in choices
    return any(trim(o).lower() == trim(text).lower() for o in choices)


@check("format:newline")
def word_per_line(text: str, a: Args) -> bool:
    bare = no_punct(text).strip()
    return len([line for line in bare.split("\n") if line != ""]) == len(bare.split())


@check("format:emoji")
def emoji_per_sentence(text: str, a: Args) -> bool:
    """Every sentence ends with an emoji (in its last two characters once ASCII punctuation
    is gone), or the next sentence starts with one (the tokenizer put it there)."""
    from emoji import is_emoji

    sents = [no_punct(s).strip() for s in sentences(text)]
    for i, s in enumerate(sents):
        if not s:
            return False
        if is_emoji(s[-1]) or is_emoji(s[-2] if len(s) > 1 else s[-1]):
            continue
        if i == len(sents) - 1 or not sents[i + 1] or not is_emoji(sents[i + 1][0]):
            return False
    return True


@check("format:line_indent")
def indent_stairs(text: str, a: Args) -> bool:
    lines = text.split("\n")
    # blank lines are dropped the way the authors' loop does it (list.remove while iterating
    # over the list), which keeps a blank line that directly follows a dropped one
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            lines.remove(lines[i])
        i += 1
    indent = [len(line) - len(line.lstrip(" ")) for line in lines]
    return all(y > x for x, y in zip(indent, indent[1:]))


@check("format:quote_unquote")
def quote_then_explanation(text: str, a: Args) -> bool:
    """No two quoted phrases back to back, and the response does not end on a quote
    (straight double quotes only, whitespace ignored)."""
    s = "".join(text.replace("'\"'", "").split())
    if '""' in s:
        return False
    s = s.strip(string.digits + PUNCT.replace('"', ""))
    return not s.endswith('"')


@check("format:list", "sep")
def special_bullets(text: str, a: Args) -> bool:
    return len(re.findall(re.escape(a["sep"]), text)) >= 2


@check("format:thesis")
def italic_thesis(text: str, a: Args) -> bool:
    start = text.find("<i>")
    if start == -1:
        start = text.find("<em>")
        if start == -1:
            return False
    rest = text[start:]
    end = rest.find("</i>")
    if end == -1:
        end = rest.find("</em>")
        if end == -1:
            return False
    # the authors' offsets (3 and 4) are those of <i>; with <em> a stray character rides along
    return rest[3:end].strip() != "" and rest[end + 4:].strip() != ""


@check("format:sub-bullets")
def sub_bullets(text: str, a: Args) -> bool:
    return all("-" in part for part in text.split("*")[1:])


@check("format:no_bullets_bullets")
def sentences_then_bullets(text: str, a: Args) -> bool:
    """Lines of prose (at least two sentences) and then at least two ``*`` lines, nothing
    after them. A blank line in the prose ends it as the authors' loop does: prose may not
    follow it."""
    prose: Any = True  # truthy while prose may continue: the last line's sentences
    n_sent = n_bullets = 0
    for line in text.split("\n"):
        if line.strip().startswith("*"):
            prose = False
            if n_sent < 2:
                return False
            n_bullets += 1
        elif prose:
            prose = sentences(line.strip())
            n_sent += len(prose)
        else:
            return False
    return n_bullets >= 2


@check("format:title_case")
def title_case(text: str, a: Args) -> bool:
    for w in tokens(text):
        if not w or not w[0].isalpha():
            continue
        if len(w) == 1:
            if w.islower():
                return False
        elif w[0].islower() and (w[1:].isupper() or w[1:].islower()):
            return False  # "the", "tHE"; mixed like "iPhone" and capitals like "USA" pass
    return True


@check("format:output_template")
def output_template(text: str, a: Args) -> bool:
    return all(s in text for s in ("My Answer:", "My Conclusion:", "Future Outlook:"))


@check("format:no_whitespace")
def no_whitespace(text: str, a: Args) -> bool:
    return not any(c.isspace() for c in text)


# ---------------------------------------------------------------- repeat:
@check("repeat:repeat_change", "prompt_to_repeat")
def repeat_change(text: str, a: Args) -> bool:
    p = a["prompt_to_repeat"]
    return p != text and p.split()[1:] == text.split()[1:]


@check("repeat:repeat_simple")
def repeat_simple(text: str, a: Args) -> bool:
    return text.strip().lower() == REPEAT_SIMPLE.lower()


@check("repeat:repeat_span", "prompt_to_repeat", "n_start", "n_end")
def repeat_span(text: str, a: Args) -> bool:
    span = a["prompt_to_repeat"][a["n_start"]:a["n_end"] + 1]  # both ends inclusive
    return text.strip().lower() == span.strip().lower()


# ---------------------------------------------------------------- custom: (one fixed prompt each)
@check("custom:multiples")
def multiples_of_7(text: str, a: Args) -> bool:
    return re.findall(r"\d+", text.replace(",", ", ")) == ["14", "21", "28", "35", "42", "49"]


@check("custom:mcq_count_length")
def four_mcqs(text: str, a: Args) -> bool:
    """Nothing before the first "Question"; 4 questions of 5 lettered options each, question
    texts strictly longer one after another."""
    if not text.startswith("Question"):
        return False
    parts = [q.strip() for q in re.split(r"\n*(?:Question \d+[\.|\):;]?\s*)", text) if q.strip()]
    if len(parts) != 4:
        return False
    lengths = []
    for q in parts:
        stem, n_opts = "", 0
        for line in q.split("\n"):
            if re.match(r"^[A-Ea-e][\.|\)]\s*\w+", line.strip()):
                n_opts += 1
            elif n_opts == 0:
                stem += " " + line.strip()
        if n_opts != 5:
            return False
        lengths.append(len(stem.strip()))
    return all(x < y for x, y in zip(lengths, lengths[1:]))


@check("custom:reverse_newline")
def africa_reverse(text: str, a: Args) -> bool:
    lines = [trim(line) for line in text.split("\n") if trim(line)]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None or len(lines) - start < 52:
        return False
    names = [ascii_fold(line) for line in lines[start:]]
    return names == sorted(names, reverse=True)


@check("custom:word_reverse")
def word_reverse(text: str, a: Args) -> bool:
    back = " ".join(no_punct(text.lower().strip()).split()[::-1])
    return "bald eagle" in back and back in sentences(back)


@check("custom:character_reverse")
def character_reverse(text: str, a: Args) -> bool:
    return "elgae dlab" in text.lower()


@check("custom:sentence_alphabet")
def sentence_alphabet(text: str, a: Args) -> bool:
    sents = sentences(text)
    if len(sents) != 26:
        return False
    firsts = [s.split()[0].lower()[0] if s.split() else "" for s in sents]
    return firsts == list(string.ascii_lowercase)


@check("custom:european_capitals_sort")
def european_capitals(text: str, a: Args) -> bool:
    names = [c.strip() for c in ascii_fold(text).split(",") if c.strip()]
    return names == NORTHERN_CAPITALS


def _csv(text: str, **kw: Any) -> List[List[str]]:
    return list(csv.reader(io.StringIO(text), **kw))


@check("custom:csv_city")
def csv_city(text: str, a: Args) -> bool:
    rows = _csv(text)
    return (len(rows) == 8 and rows[0] == ["ID", "Country", "City", "Year", "Count"]
            and all(len(r) == 5 for r in rows[1:]))


def _header(text: str, names: Sequence[str], sep: str) -> bool:
    cols = sep.join(f'({n}|"{n}")' for n in names)
    return re.match(f"^{cols}$", text.split("\n")[0].strip()) is not None


@check("custom:csv_special_character")
def csv_special_character(text: str, a: Args) -> bool:
    """Header, 14 rows of 5 fields, one field a quoted value holding a special character.
    Quotes are tripled before parsing so they survive as part of the field, as theirs; the
    rows are read until the first such field (those after it unchecked, as theirs)."""
    if not _header(text, ("ProductID", "Category", "Brand", "Price", "Stock"), ",[ \\t]*"):
        return False
    rows = _csv(text.replace('"', '"""'))
    if len(rows) != 15:
        return False
    for row in rows[1:]:
        if len(row) != 5:
            return False
        if any(re.match(r'".*[^\d\w\s].*"', f) for f in row):
            return True
    return False


@check("custom:csv_quotes")
def csv_quotes(text: str, a: Args) -> bool:
    if not _header(text, ("StudentID", "Subject", "Grade", "Semester", "Score"), "\\t *"):
        return False
    rows = _csv(text.replace('"', '"""'), delimiter="\t")

    def quoted(f: str) -> bool:
        f = f.strip()
        return len(f) > 0 and f[0] == '"' and f[-1] == '"'  # an empty field: theirs crashes; here it fails
    return len(rows) == 4 and all(len(r) == 5 and all(quoted(f) for f in r) for r in rows)


@check("custom:date_format_list")
def napoleon_dates(text: str, a: Args) -> bool:
    """Comma-separated YYYY-MM-DD dates in Napoleon's lifetime (1769-1821); month at most 12
    and day within the month (the authors' bounds: month or day 00 passes)."""
    longest = {1: 31, 3: 31, 5: 31, 7: 31, 8: 31, 10: 31, 12: 31, 4: 30, 6: 30, 9: 30, 11: 30, 2: 29}
    for d in text.strip().split(","):
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", d.strip()):
            return False
        y, m, day = (int(x) for x in d.strip().split("-"))
        if not 1769 <= y <= 1821 or m > 12 or day > longest.get(m, 99):
            return False
    return True
