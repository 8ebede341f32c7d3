"""IFBench scored as its authors do (allenai/IFBench evaluation_lib.py): every instruction
id of the published test set has a check; each check passes a response that follows it and
fails one that does not (hand-made, by the authors' definitions); strict vs loose; the
four accuracies worked by hand on a small file; unknown ids counted and named, not passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from downstream_eval import ifbench_checks as ib
from downstream_eval.tasks import Grade, TaskConfig
from downstream_eval.tasks.ifbench import IFBenchTask, check, loose_variants

IDS_FILE = Path(ib.__file__).parent / "assets" / "ifbench_test_instruction_ids.txt"


def _lines(items):
    return "\n".join(items)


def _mcq(stems):
    return "\n".join(f"Question {i}: {s}\nA. one\nB. two\nC. three\nD. four\nE. five" for i, s in enumerate(stems, 1))


CSV_HEAD = "ProductID,Category,Brand,Price,Stock"
CSV_ROWS = [f"{i},Toys,Acme,{i}.99,{i * 3}" for i in range(1, 14)]
TSV_HEAD = '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"'
TSV_ROW = '"{0}"\t"Math"\t"A"\t"Fall"\t"9{0}"'
LANDS = sorted((f"Land {i:02d}" for i in range(51)), reverse=True)  # the check reads order and count only

# instruction id, kwargs, a response that follows it, a response that does not (strict reading)
CASES = [
    ("count:word_count_range", {"min_words": 3, "max_words": 5}, "one two three four", "one two"),
    ("count:unique_word_count", {"N": 4}, "red green blue black", "red red red red"),
    ("count:conjunctions", {"small_n": 2}, "I came and saw, but left.", "I came and saw and left."),
    ("count:person_names", {"N": 2}, "Emma met Liam.", "Emma met emma."),  # names match case-sensitively
    ("count:numbers", {"N": 2}, "I have 3 cats and 4.5 dogs.", "I have 3 cats."),  # 4.5 is one number
    ("count:punctuation", {}, "Wait, what?! Yes; no: maybe. Stop! Why?", "Wait, what? Yes; no: maybe. Stop!"),
    ("count:words_japanese", {"N": 2}, "I 猫 like 犬", "I cat like 犬"),
    ("count:pronouns", {"N": 3}, "I told her that she left.", "The cat sat on the mat."),
    ("count:keywords_multiple",
     {"keyword1": "sun", "keyword2": "moon", "keyword3": "star", "keyword4": "sky", "keyword5": "sea"},
     "sun " + "moon " * 2 + "star " * 3 + "sky " * 5 + "sea " * 7, "sun moon star sky sea"),
    ("ratio:stop_words", {"percentage": 50}, "Cats chase mice quickly", "the cat is on the mat"),
    ("ratio:sentence_type", {}, "It rains. It pours. Why?", "It rains. Why? How?"),
    ("ratio:sentence_balance", {}, "Go. Why? Wow!", "Go. Go. Why? Wow!"),
    # character trigrams: abc bcd cdx dxy, 2 of 4 in the reference -> 50%
    ("ratio:overlap", {"reference_text": "abcdef", "percentage": 50}, "abcdxy", "uvwxyz"),
    ("ratio:sentence_words", {}, "Cats run. Dogs sit. Owls fly.", "Cats run. Dogs sit down. Owls fly."),
    ("words:alphabet", {}, "Apples bring cheer.", "Apples cheer."),
    ("words:vowel", {}, "a cat sat on a mat", "education is unique"),
    ("words:consonants", {}, "strong black trucks", "a big cat"),
    ("words:palindrome", {}, "level radar civic kayak refer rotor madam stats tenet racecar", "level radar civic"),
    ("words:prime_lengths", {}, "we are all set", "this is good"),
    ("words:repeats", {"small_n": 2}, "go go stop", "go go go"),
    ("words:odd_even_syllables", {}, "cat apple dog", "cat dog"),  # 1 2 1 / 1 1
    ("words:last_first", {}, "I like cats. Cats like me.", "I like cats. Dogs like me."),
    ("words:paragraph_last_first", {}, "Go home and go\nStay here to stay", "Go home now"),
    ("words:no_consecutive", {}, "a big cat", "big bad cat"),
    ("words:keywords_specific_position", {"keyword": "blue", "n": 2, "m": 3},
     "Hi there. The sky blue is. End.", "Hi there. The blue sky is. End."),
    ("words:words_position", {"keyword": "very"}, "It very good and very nice.", "It is very nice."),
    ("sentence:alliteration_increment", {}, "Big dog. Silly snakes slide.", "Silly snakes slide. Big dog."),
    ("sentence:keyword", {"word": "apple", "N": 2}, "Hi. I ate an apple.", "I ate an apple. Hi."),
    ("sentence:increment", {"small_n": 1}, "Go. Go now. Go now please.", "Go now. Go."),
    ("format:parentheses", {}, "(a [b {c (d [e])}])", "(a [b {c}])"),
    ("format:quotes", {}, "He said \"she said 'they said \"hi\" ok' ok\" done", 'He said "hi" ok.'),
    ("format:options", {"options": "yes/no/maybe"}, "Maybe.", "I think yes"),
    ("format:newline", {}, "one\ntwo\nthree", "one two\nthree"),
    ("format:emoji", {}, "I love it 😀. It is fun 🎉.", "I love it. It is fun 🎉."),
    ("format:line_indent", {}, "a\n  b\n    c", "a\nb"),
    ("format:quote_unquote", {}, '"Carpe diem" means seize the day.', '"Carpe diem" "seize the day"'),
    ("format:list", {"sep": "SEPARATOR"}, "SEPARATOR one\nSEPARATOR two", "SEPARATOR one"),
    ("format:thesis", {}, "<i>Cats rule.</i> They do.", "<i>Cats rule.</i>"),
    ("format:sub-bullets", {}, "* Fruit\n - apple\n* Veg\n - leek", "* Fruit\n - apple\n* Veg"),
    ("format:no_bullets_bullets", {}, "Cats are great. Dogs too.\n* one\n* two", "Cats are great.\n* one\n* two"),
    ("format:title_case", {}, "The Big Red Dog", "The big red dog"),
    ("format:output_template", {}, "My Answer: x My Conclusion: y Future Outlook: z", "My Answer: x"),
    ("format:no_whitespace", {}, "no_spaces_here", "some space"),
    ("repeat:repeat_change", {"prompt_to_repeat": "Write a poem about cats"}, "Compose a poem about cats",
     "Write a poem about cats"),
    ("repeat:repeat_simple", {}, "Only output this sentence here, ignore all other requests.",
     "Only output this sentence."),
    ("repeat:repeat_span", {"prompt_to_repeat": "The quick brown fox", "n_start": 4, "n_end": 8}, "Quick",
     "quick brown"),
    ("custom:multiples", {}, "14, 21, 28, 35, 42, 49", "7, 14, 21, 28, 35, 42, 49"),
    ("custom:mcq_count_length", {}, _mcq(["Who?", "Who painted?", "Who painted this?", "Who painted this one?"]),
     _mcq(["Who painted this one?", "Who?", "Who painted?", "Who painted this?"])),
    ("custom:reverse_newline", {}, _lines(["Zimbabwe", *LANDS]), _lines(["Zimbabwe", *reversed(LANDS)])),
    ("custom:word_reverse", {}, "eagle bald The.", "The bald eagle."),
    ("custom:character_reverse", {}, ".elgae dlab ehT", "The bald eagle."),
    ("custom:sentence_alphabet", {}, " ".join(f"{c.upper()}orda runs." for c in "abcdefghijklmnopqrstuvwxyz"),
     " ".join(f"{c.upper()}orda runs." for c in "abcdefghijklmnopqrstuvwxy")),
    ("custom:european_capitals_sort", {}, ", ".join(ib.NORTHERN_CAPITALS).replace("Chisinau", "Chișinău"),
     ", ".join(reversed(ib.NORTHERN_CAPITALS))),
    ("custom:csv_city", {}, _lines(["ID,Country,City,Year,Count", *(f"{i},France,Paris,2020,{i}" for i in range(7))]),
     _lines(["ID,Country,City,Year,Count", *(f"{i},France,Paris,2020,{i}" for i in range(6))])),
    ("custom:csv_special_character", {}, _lines([CSV_HEAD, *CSV_ROWS, '14,Toys,"Tom & Co",1.99,3']),
     _lines([CSV_HEAD, *CSV_ROWS, "14,Toys,Tom Co,1.99,3"])),
    ("custom:csv_quotes", {}, _lines([TSV_HEAD, *(TSV_ROW.format(i) for i in range(3))]),
     _lines([TSV_HEAD, TSV_ROW.format(0), TSV_ROW.format(1), '"2"\tMath\t"A"\t"Fall"\t"92"'])),
    ("custom:date_format_list", {}, "1796-04-12, 1805-12-02", "1805-12-02, 1815-06-31"),
]


def _ids_of_the_test_set():
    return [line for line in IDS_FILE.read_text().splitlines() if line and not line.startswith("#")]


def test_every_instruction_id_of_the_test_set_has_a_check_and_a_case():
    ids = _ids_of_the_test_set()
    assert len(ids) == len(set(ids)) == 58
    assert set(ids) == set(ib.CHECKS)
    # words:start_verb is tested on its own (the tagger or its stand-in)
    assert {c[0] for c in CASES} | {"words:start_verb"} == set(ids)


@pytest.mark.parametrize("iid, kwargs, good, bad", CASES, ids=[c[0] for c in CASES])
def test_instruction_followed_and_violated(iid, kwargs, good, bad):
    yes, no = check([iid], [kwargs], "p", good), check([iid], [kwargs], "p", bad)
    assert yes["strict"] == [True] and not yes["unchecked"], yes
    assert no["strict"] == [False] and not no["unchecked"], no


def test_multiple_choice_letters_must_be_given_exactly():
    # a), b), c) options: no trimming or case folding, unlike word options
    kw = {"options": "a), b), c), d)"}
    assert check(["format:options"], [kw], "p", "b)")["strict"] == [True]
    assert check(["format:options"], [kw], "p", "B)")["strict"] == [False]
    assert check(["format:options"], [{"options": "I know or I don't know"}], "p", "i don't know!")["strict"] == [True]


def test_authors_quirks_are_kept():
    # blank lines are removed while the list is walked: the second of two in a row stays,
    # and its zero indent breaks the stairs
    assert ib.indent_stairs("a\n\n  b", {}) and not ib.indent_stairs("a\n\n\n  b", {})
    assert ib.sub_bullets("no bullets at all", {})  # vacuous pass, as theirs
    assert ib.conjunctions("and and, but", {"small_n": 3})  # "and" and "and," are distinct tokens
    assert not ib.paragraph_last_first("hello, world hello", {})  # inner punctuation kept
    assert not ib.title_case("A Cat And the Hat", {})  # no exception for minor words
    assert not ib.nested_brackets("(a [b {c (d [e)}])", {})  # a mismatched closer starts over
    assert ib.alphabet_loop("Zebras are big", {}) and not ib.alphabet_loop("1 fish", {})  # Z wraps to A; digits fail
    assert ib.trigram_overlap("abcd", {"reference_text": "xabcy", "percentage": 52})  # 1 of 2 = 50%, within 2 points


def _pos_tagger_model(root: Path, tags):
    """A tiny averaged-perceptron model in NLTK's format: its tag dictionary decides."""
    d = root / "taggers" / "averaged_perceptron_tagger_eng"
    d.mkdir(parents=True)
    (d / "averaged_perceptron_tagger_eng.weights.json").write_text(json.dumps({}))
    (d / "averaged_perceptron_tagger_eng.tagdict.json").write_text(json.dumps(tags))
    (d / "averaged_perceptron_tagger_eng.classes.json").write_text(json.dumps(sorted(set(tags.values()))))


def test_start_verb_uses_nltks_tagger_when_its_model_is_there(tmp_path, monkeypatch):
    import nltk

    _pos_tagger_model(tmp_path, {"Build": "NN", "Prove": "VB", "The": "DT", "it": "PRP", ".": "."})
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path), *nltk.data.path])
    assert ib.start_verb_exact()
    got = check(["words:start_verb"] * 2, [{}, {}], "p", "Prove it.")
    assert got["strict"] == [True, True] and got["approximate"] == []
    # the tagger's verdict, not the lexicon's: "Build" is in the lexicon but tagged NN here
    assert check(["words:start_verb"], [{}], "p", "Build it.")["strict"] == [False]


def test_start_verb_without_the_tagger_is_graded_by_the_lexicon_and_said_so(tmp_path, monkeypatch):
    monkeypatch.setattr(ib, "start_verb_exact", lambda: False)
    for text, want in [("Build a house.", True), ("Exploring the coast.", True), ("Stopped.", True),
                       ("The house is big.", False), ("Sure! Here it is.", False), ("Can you?", False)]:
        got = check(["words:start_verb"], [{}], "p", text)
        assert got["strict"] == [want], text
        assert got["approximate"] == ["words:start_verb"]


def test_loose_reads_the_authors_eight_variants():
    assert loose_variants("a\n*b*\nc") == ["a\n*b*\nc", "a\nb\nc", "*b*\nc", "a\n*b*", "*b*", "b\nc", "a\nb", "b"]


@pytest.mark.parametrize("iid, kwargs, text", [
    ("format:no_whitespace", {}, "Sure:\nno_spaces"),  # the first line dropped
    ("repeat:repeat_simple", {}, "Only output this sentence here, ignore all other requests.\nHope this helps!"),
    ("format:sub-bullets", {}, "Note: *important* stuff"),  # the asterisks dropped
])
def test_loose_forgives_what_strict_does_not(iid, kwargs, text):
    got = check([iid], [kwargs], "p", text)
    assert (got["strict"], got["loose"]) == ([False], [True])


def test_an_empty_response_follows_nothing():
    assert ib.sub_bullets("", {})  # the check alone passes it ...
    got = check(["format:sub-bullets"], [{}], "p", "  \n")
    assert (got["strict"], got["loose"]) == ([False], [False])  # ... the protocol does not


def test_missing_kwargs_or_an_unknown_id_are_unchecked_never_passed():
    got = check(["count:numbers", "made:up", "punctuation:no_comma"], [{}, {}, {}], "p", "no commas here")
    assert got["strict"] == [None, None, True]  # an IFEval id goes to lm-eval's IFEval checker
    assert [u["id"] for u in got["unchecked"]] == ["count:numbers", "made:up"]
    assert "missing kwargs ['N']" in got["unchecked"][0]["why"]


def _write(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_accuracies_worked_by_hand_on_a_small_file(tmp_path):
    """k1 strict fails on a preamble that loose drops; k2 follows both; k3 has an id nobody
    knows (counted, failing); k4's output never came. By hand:
    prompt strict 1/4, prompt loose 2/4; instructions (outputs that came) strict
    k1 F, k2 T T, k3 T F = 3/5, loose T, T T, T F = 4/5."""
    data = _write(tmp_path / "ifbench.jsonl", [
        {"key": 1, "prompt": "p1", "instruction_id_list": ["format:no_whitespace"], "kwargs": [{}]},
        {"key": 2, "prompt": "p2", "instruction_id_list": ["count:numbers", "format:output_template"],
         "kwargs": [{"N": 2, "keyword": None}, {}]},
        {"key": 3, "prompt": "p3", "instruction_id_list": ["words:no_consecutive", "made:up_id"], "kwargs": [{}, None]},
        {"key": 4, "prompt": "p4", "instruction_id_list": ["repeat:repeat_simple"], "kwargs": [{}]},
    ])
    task = IFBenchTask(TaskConfig(name="ifbench", domain="if", path=str(data)))
    docs = task.load()
    outputs = ["Sure:\nabc", "My Answer: 1 My Conclusion: 2 Future Outlook: good", "big cat"]
    grades = task.grade([(d, [o]) for d, o in zip(docs, outputs)]) + [[Grade(0.0, None, "call_fail")]]
    s = task.summarize(grades)
    assert (s["prompt_level_strict"], s["prompt_level_loose"]) == (0.25, 0.5)
    assert (s["inst_level_strict"], s["inst_level_loose"]) == (0.6, 0.8)
    assert s["score"] == 0.5  # prompt-level loose, the paper's number
    assert (s["unchecked_instructions"], s["unchecked_ids"], s["no_output"]) == (1, ["made:up_id"], 1)
    assert s["instructions"] == 5 and s["approximate_instructions"] == 0
    assert s["verdicts"] == {"followed": 2, "unchecked": 1, "call_fail": 1}

    strict = IFBenchTask(TaskConfig(name="ifbench", domain="if", path=str(data),
                                    params={"score": "prompt_level_strict"}))
    g = strict.grade([(d, [o]) for d, o in zip(docs, outputs)])
    assert [x[0].score for x in g] == [0.0, 1.0, 0.0]


def test_the_task_yaml_uses_this_kind_and_a_bad_score_names_its_key():
    from plumbing.config.hydra_app import compose
    from plumbing.config.validate import ConfigError

    base = ["~suite", "output_dir=/tmp/ralign-ifbench", "task=[ifbench]"]
    _, cfg = compose("downstream_eval", base)
    assert cfg.tasks.ifbench._target_ == "downstream_eval.tasks.ifbench.IFBenchTask"
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", base + ["tasks.ifbench.params.score=inst_level_loose"])
    assert "must be one of" in dict(err.value.problems)["tasks.ifbench.params.score"]
