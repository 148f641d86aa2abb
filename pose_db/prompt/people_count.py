"""How many people a prompt describes: the retriever's people filter when the caller has no count.

"a couple" = 2, "three friends" = 3, "a trio of dancers" = 3, "a mother hugging her son" = 2,
"Mia and Leo shaking hands" = 2; "kids playing" and "a bowl of ramen" say nothing (None).
The words it knows (person nouns, number words, group nouns) are the normaliser's vocabulary,
`data/normalize_vocab.yaml`.
"""

from __future__ import annotations

import re

from .rules import DETERMINERS, NormalizeVocab, bare, default_vocab, match_at, tokenize

_NAMED_PAIR = re.compile(r"\b([A-Z][a-z]+)((?:\s*,\s*[A-Z][a-z]+)*),?\s+(?:and|&)\s+([A-Z][a-z]+)\b")
# Booru-style tags in gallery prompts: "1girl", "2boys", "3others", "solo" (one person),
# "multiple girls" (no fixed count). Each numbered tag counts its people; "solo" alone is one.
TAG_COUNT = re.compile(r"\b(\d{1,2})\s?(girls?|boys?|others?|women|woman|men|man|persons?|people|kids?)\b")
_SOLO = re.compile(r"(?:^|[,(])\s*solo\s*(?:$|[,)])")  # the tag, a clause of its own: not "a solo cup"
# Action-dataset labels (NTU RGB+D 120, AVA) name the second person as "other person":
# "pushing other person", "hugging other person", "touch another person's pocket".
# AVA writes the person acted on in brackets: "kiss (a person)", "lift (a person)", "grab (a person)".
_OTHER_PERSON = re.compile(r"\b(?:(?:the|an)\s+)?other\s+(?:person|people|persons)\b|\banother\s+person\b"
                           r"|\(\s*a\s+person\s*\)")


def tag_count(prompt: str) -> int | None:
    """People counted by booru-style tags ("1girl, 1boy" = 2, "2boys" = 2, "solo" = 1), or None."""
    text = prompt.lower()
    numbered = [int(n) for n, _ in TAG_COUNT.findall(text) if 0 < int(n) <= 10]
    if numbered:
        return sum(numbered)
    return 1 if _SOLO.search(text) else None


_NOT_AN_OBJECT = frozenset({"of", "for", "by", "like", "as"})  # "a photo of someone": one person


def _someone_is_the_object(tokens: list[str]) -> bool:
    """Is "someone" the object of a label with no subject ("hugging someone", "over someone")?"""
    for i, t in enumerate(tokens):
        if t in ("someone", "somebody"):
            return i > 0 and tokens[i - 1] not in _NOT_AN_OBJECT
    return False


def names_other_person(prompt: str) -> bool:
    """Does the prompt read like an action label with a second person ("kicking other person")?"""
    return bool(_OTHER_PERSON.search(prompt.lower()))


def count_people(prompt: str, vocab: NormalizeVocab | None = None) -> int | None:
    """How many people a prompt describes, or None when it does not say.

    Counts numbered plurals ("three friends", "2 dancers"), group nouns ("a couple", "a trio")
    and singular mentions ("a mother hugging her son" = 2). A bare plural ("kids playing") has
    no count, unless the prompt only makes sense for two ("friends hugging each other"); a
    prompt naming nobody (food, cars, landscapes) gives None.

    Args:
        prompt: the user's prompt (raw or normalised).
        vocab: the word lists; default the package's vocabulary.
    """
    vocab = vocab or default_vocab()
    tagged = tag_count(prompt)
    if tagged:
        return tagged
    if names_other_person(prompt):
        return 2  # "pushing other person": the one doing it and the other
    tokens = tokenize(prompt)
    count, bare_plural, seen = 0, False, set()
    i = 0
    while i < len(tokens):
        number = _number_at(tokens, i, vocab)
        if number:
            value, noun_end = number
            count += value
            i = noun_end
            continue
        group = _group_at(tokens, i, vocab)
        if group:
            value, i = group
            count += value
            continue
        n = match_at(tokens, i, vocab.person_singular)
        if n and _is_mention(tokens, i, n, vocab, seen):
            seen.add(tuple(tokens[i : i + n]))
            count += 1
        elif not n and (p := match_at(tokens, i, vocab.person_plural)):
            n = p
            if i == 0 or tokens[i - 1] not in ("the", "these", "those", "both"):
                bare_plural = True
        i += max(n, 1)
    count += _count_named(prompt, vocab)
    if count == 1 and seen <= {("someone",), ("somebody",)} and _someone_is_the_object(tokens):
        return 2  # "a hand on the wall over someone": the one doing it and someone
    if bare_plural:
        hinted = any(match_at(tokens, j, vocab.two_person_hints) for j in range(len(tokens)))
        return 2 if count == 0 and hinted else None
    return count or None


def person_evidence(prompt: str, vocab: NormalizeVocab | None = None) -> int:
    """How plainly a prompt describes a person: 2 names one, 1 only describes a body or an action, 0 neither.

    2: a person noun ("a man", "dancers"), a pronoun ("she"), a group ("a couple") or a count.
    1: body or pose words ("handstand", "arms raised") or a verb in -ing ("waving hello").
    0: nothing of the kind ("a spiral staircase viewed from above"), or an action whose named
       subject is a thing ("an acoustic guitar resting on a chair": `names_a_thing`). The
       retriever asks more of the similarity score the less a prompt says about a person
       (`PoseRetriever.threshold_for`).
    """
    vocab = vocab or default_vocab()
    tokens = tokenize(prompt)
    words = {bare(t) for t in tokens}
    if count_people(prompt, vocab) or words & (vocab.person_pronouns | set(vocab.group_nouns)):
        return 2
    for i in range(len(tokens)):
        if match_at(tokens, i, vocab.person_singular) or match_at(tokens, i, vocab.person_plural):
            return 2
    if words & vocab.pose_words:
        return 1
    if any(vocab.is_action_word(t) for t in tokens):
        return 0 if names_a_thing(tokens, vocab) else 1
    return 1 if label_action(prompt, vocab) else 0


LABEL_TOKENS = 6  # a dataset label is a few words: "make victory sign", "check time (from watch)"


def label_action(prompt: str, vocab: NormalizeVocab | None = None) -> bool:
    """Is the prompt a short dataset label that opens with a verb the library uses, in the base
    form or in -ing ("make victory sign", "move heavy objects", "kneeling")? Such a label names
    an action, so a person doing it, though it names nobody."""
    vocab = vocab or default_vocab()
    tokens = tokenize(prompt)
    first = bare(tokens[0]).split("/")[0] if tokens else ""  # "crouch/kneel": the first alternative
    return 0 < len(tokens) <= LABEL_TOKENS and vocab.is_library_verb(first)


_DETERMINERS = frozenset({"a", "an", "the"})


def names_a_thing(tokens: list[str], vocab: NormalizeVocab) -> bool:
    """Does the prompt open with a subject that is neither a person nor a pose, at rest?

    "an acoustic guitar resting on a chair", "a bicycle leaning against a wall": a determiner,
    then the subject's words, then a verb things do too (`thing_verbs` of the vocabulary).
    Called only for prompts without a person noun or a pose word, so the subject is a thing
    (or an animal). A label without a determiner ("sitting down"), a verb right after it, or a
    verb only people do ("a janitor sweeping", where the vocabulary lacks "janitor") keeps its
    evidence: the vocabulary of person nouns is never complete.
    """
    if len(tokens) < 3 or tokens[0] not in _DETERMINERS:
        return False
    verb = next((i for i, t in enumerate(tokens) if vocab.is_action_word(t)), None)
    return verb is not None and verb >= 2 and tokens[verb] in vocab.thing_verbs


def _number_at(tokens, i, vocab) -> tuple[int, int] | None:
    """ "three young friends" at i -> (3, index after "friends"); None if no counted people."""
    value = None
    n = 0
    for length in (3, 2, 1):
        key = tuple(tokens[i : i + length])
        if key in vocab.number_words:
            value, n = vocab.number_words[key], length
            break
    if value is None and tokens[i].isdigit() and 0 < int(tokens[i]) <= 20:
        value, n = int(tokens[i]), 1
    if value is None:
        return None
    for j in range(i + n, min(len(tokens), i + n + 3)):
        p = match_at(tokens, j, vocab.person_plural)
        if p:
            return value, j + p
        if tokens[j] in vocab.group_nouns:  # "two couples"
            return value * vocab.group_nouns[tokens[j]], j + 1
    return None


def _count_named(prompt: str, vocab: NormalizeVocab) -> int:
    """Subjects named in a list, as the studio's prompts do: "Mia and Leo shaking hands" = 2."""
    known = vocab.stopwords | vocab.pose_words
    names = set()
    for match in _NAMED_PAIR.finditer(prompt):
        for name in re.findall(r"[A-Z][a-z]+", match.group(0)):
            word = name.lower()
            if word not in known and (word,) not in vocab.drop and (word,) not in vocab.person_singular:
                names.add(name)
    return len(names)


def _group_at(tokens, i, vocab) -> tuple[int, int] | None:
    """ "a couple" / "a trio of dancers" at i -> (size, index after it); "a pair of shoes" -> None."""
    size = vocab.group_nouns.get(bare(tokens[i]))
    if size is None:
        return None
    if i + 1 < len(tokens) and tokens[i + 1] == "of":
        for j in range(i + 2, min(len(tokens), i + 5)):
            p = match_at(tokens, j, vocab.person_plural)
            if p:
                return size, j + p
        return None
    return size, i + 1


def _is_mention(tokens, i, n, vocab, seen) -> bool:
    """Is the person noun at tokens[i:i+n] a new person (not "superhero pose", "the man" again)?"""
    after = tokens[i + n] if i + n < len(tokens) else ""
    if after in vocab.person_modifier_heads:
        return False
    if match_at(tokens, i + n, vocab.person_singular) or match_at(tokens, i + n, vocab.person_plural):
        return False  # "a woman doctor", "a figure skater": the first noun modifies the second
    for length in (2, 1):
        if i >= length and tuple(tokens[i - length : i]) in vocab.person_non_mentions:
            return False
        if i >= length + 1 and tuple(tokens[i - length - 1 : i - 1]) in vocab.person_non_mentions:
            if tokens[i - 1] in DETERMINERS:
                return False  # "dressed as a pirate"
    previous = tokens[i - 1] if i else ""
    return not (previous in ("the", "this", "that") and tuple(tokens[i : i + n]) in seen)
