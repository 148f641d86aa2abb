"""RAG-Pose prompt normalisation: a user prompt distilled to its pose-defining core.

ASTRA (sec. 3.1.1) embeds a *canonical query*, not the raw prompt: "cinematic photo, 35mm,
golden hour: an elderly man cheering with both hands up at a stadium" is searched as "an elderly
man cheering with both hands up". Style, medium, quality, lens, lighting, scenery and clothing
move the embedding away from the library's pose descriptions without saying anything about the
body; who, how many, which action, its nuance and the camera view are what the library indexes.

Two normalisers share the `Normalizer` protocol:

- `RuleNormalizer`, the offline default: vocabulary-driven clause and phrase stripping. The
  vocabulary is data (`data/normalize_vocab.yaml`).
- `LLMNormalizer` (`normalize_llm.py`): Qwen2.5-1.5B-Instruct as in the paper, validated, with
  the rules as its fallback.

The same vocabulary serves `people_count.count_people`, for the retriever's people filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import yaml

VOCAB_PATH = Path(__file__).with_name("normalize_vocab.yaml")

DETERMINERS = frozenset(
    "a an the some his her their its our my your this that these those another one".split()
)
_CLAUSE_SPLIT = re.compile(r"[,;:|!?()\[\]{}\n]|\.(?!\d)|\s-{1,2}\s|\s—\s")
_TOKEN = re.compile(r"[a-z0-9&]+(?:['/.-][a-z0-9&]+)*")
_PROMPT_WEIGHT = re.compile(r"\(([^():]+):\s*[\d.]+\)")  # "(smiling:1.2)" -> "smiling"
_NAME_LIST = re.compile(r"\b[A-Z][a-z]+(?:(?:\s*,\s*|,?\s+(?:and|&)\s+)[A-Z][a-z]+)+\b")
_NAME_BEFORE_VERB = re.compile(r"\b([A-Z][a-z]+)(?='s\b|\s+[a-z]+ing\b)")
_COUNT_WORDS = {1: "a person", 2: "two people", 3: "three people", 4: "four people", 5: "five people"}


_OUTFIT_VERBS = frozenset({"wearing", "dressed", "clad", "sporting"})
_TAG = re.compile(r"\b(\d{1,2})\s?(girl|boy|woman|man|other|person|kid)(s?)\b")
_TAG_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}
_TAG_PLURAL = {"man": "men", "woman": "women", "person": "people", "other": "people", "kid": "kids"}
_SOLO_TAG = re.compile(r"(?:^|(?<=[,(]))\s*solo\s*(?=$|[,)])")
# A later tag that is only what the body rests on ("sitting, chair"): said as where the body is.
# (Never the first clause: "a chair" alone is a thing, not a tag.)
_SUPPORT_TAG = re.compile(r"(?<=,)\s*(?:a |the )?(chair|bed|sofa|couch|bench|stool|floor|ground|stairs)\s*(?=$|,)")


def expand_tags(text: str) -> str:
    """Booru-style counts as words: "1girl, 1boy, slow dance" -> "a girl, a boy, slow dance";
    "2boys" -> "two boys"; a bare "solo" tag goes (the count is `people_count.tag_count`'s); a
    bare support tag ("chair") becomes "on the chair"."""

    def words(match: re.Match) -> str:
        n, noun = int(match.group(1)), match.group(2)
        if n == 1:
            return "a person" if noun == "other" else f"a {noun}"
        plural = _TAG_PLURAL.get(noun, noun + "s")
        return f"{_TAG_WORDS.get(n, str(n))} {plural}"

    text = _SOLO_TAG.sub(" ", _TAG.sub(words, text))
    return _SUPPORT_TAG.sub(lambda m: f" on the {m.group(1)}", text)


SHORT_PROMPT_TOKENS = 8  # a prompt this short is a label or a few tags: every clause of it counts
_ALTERNATIVE = re.compile(r"(?<=[a-z])/(?=[a-z])")
_SHORT_ASIDE = re.compile(r"\(([^()]{1,40})\)")
_EXAMPLE = re.compile(r"\be\.g\.,?|\bi\.e\.,?|\betc\.?")
_OTHER_PERSON = re.compile(r"\b(?:the\s+)?other\s+person\b")
_ASIDE_LIST = re.compile(r"\s*,\s*")
# A pose-pack title names the action and then says "pose": "walking pose", "standing pose".
# Only after a verb in -ing: in "tree pose" or "child's pose" the word is part of the name.
# Not "a striking pose": after an article the -ing word is an adjective.
_ACTION_POSE = re.compile(r"(?<!\ba )(?<!\ban )(?<!\bthe )\b([a-z]{2,}ing) poses?(?=\s*(?:[,;.]|$))")


def dataset_label(text: str) -> str:
    """Action-dataset label conventions read as prose (NTU RGB+D 120, AVA, Kinetics):
    "run/jog" -> "run or jog"; "fight/hit (a person)" -> "fight or hit a person" (a short
    aside is part of the clause, not a clause of its own; its commas list alternatives:
    "talk to (e.g., self, a person)" -> "talk to self or a person"); "e.g." goes; "pushing
    other person" -> "pushing another person"; a pack title's "walking pose" -> "walking"."""
    text = _ALTERNATIVE.sub(" or ", text)
    text = _EXAMPLE.sub(" ", text)
    text = _SHORT_ASIDE.sub(lambda m: " " + _ASIDE_LIST.sub(" or ", m.group(1).strip(" ,")) + " ", text)
    text = _ACTION_POSE.sub(r"\1", text)
    return _OTHER_PERSON.sub("another person", text)


@runtime_checkable
class Normalizer(Protocol):
    """Turns a user prompt into the canonical query that RAG-Pose embeds."""

    def normalize(self, prompt: str) -> str: ...


def _phrases(words) -> frozenset[tuple[str, ...]]:
    words = list(words)
    odd = [w for w in words if not isinstance(w, str)]
    if odd:  # YAML reads a bare on/no/yes as a boolean
        raise ValueError(f"vocabulary entries must be strings, got {odd!r}: quote them in the YAML file")
    return frozenset(tuple(w.lower().split()) for w in words)


def _plural(noun: str, irregular: dict[str, str]) -> str:
    if noun in irregular:
        return irregular[noun]
    *head, last = noun.split()
    if last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*head, last])


@dataclass(frozen=True)
class NormalizeVocab:
    """The normaliser's word lists, read from `data/normalize_vocab.yaml` (see its comments)."""

    drop: frozenset[tuple[str, ...]]
    drop_patterns: tuple[re.Pattern, ...]
    scenery_prepositions: frozenset[tuple[str, ...]]
    scenery_nouns: frozenset[tuple[str, ...]]
    clothing_prepositions: frozenset[tuple[str, ...]]
    clothing_nouns: frozenset[tuple[str, ...]]
    lead_ins: frozenset[tuple[str, ...]]
    keep: frozenset[tuple[str, ...]]
    person_singular: frozenset[tuple[str, ...]]
    person_plural: frozenset[tuple[str, ...]]
    person_modifier_heads: frozenset[str]
    person_non_mentions: frozenset[tuple[str, ...]]
    number_words: dict[tuple[str, ...], int]
    group_nouns: dict[str, int]
    two_person_hints: frozenset[tuple[str, ...]]
    pose_words: frozenset[str]
    stopwords: frozenset[str]
    views: dict[str, frozenset[tuple[str, ...]]]
    person_pronouns: frozenset[str]
    ing_nouns: frozenset[str]
    thing_verbs: frozenset[str] = frozenset()
    label_action_verbs: frozenset[str] = frozenset()

    def is_action_word(self, token: str) -> bool:
        """A verb in -ing ("waving"), not a noun that ends like one ("morning", "building")."""
        return token.endswith("ing") and len(token) > 4 and token not in self.ing_nouns

    def is_library_verb(self, token: str) -> bool:
        """A verb the pose library's phrases use, in -ing or in the base form of a dataset
        label: "make" (making), "check", "run" (running), "kneel"."""
        forms = {token, token + "ing", token[:-1] + "ing" if token.endswith("e") else "", token + token[-1:] + "ing"}
        return bool(forms & self.label_action_verbs)

    @classmethod
    def load(cls, path: str | Path | None = None) -> NormalizeVocab:
        """Read a vocabulary file (default: the package's `data/normalize_vocab.yaml`)."""
        data = yaml.safe_load(Path(path or VOCAB_PATH).read_text(encoding="utf-8"))
        irregular = data["irregular_plurals"]
        persons = data["person_nouns"]
        return cls(
            drop=_phrases(w for group in data["drop_phrases"].values() for w in group),
            drop_patterns=tuple(re.compile(p) for p in data["drop_patterns"]),
            scenery_prepositions=_phrases(data["scenery_prepositions"]),
            scenery_nouns=_phrases(
                [*data["scenery_nouns"], *(_plural(w, {}) for w in data["scenery_nouns"])]
            ),
            clothing_prepositions=_phrases(data["clothing_prepositions"]),
            clothing_nouns=_phrases(
                [*data["clothing_nouns"], *(_plural(w, {}) for w in data["clothing_nouns"])]
            ),
            lead_ins=_phrases(data["lead_ins"]),
            keep=_phrases(data["keep_phrases"]),
            person_singular=_phrases(persons),
            person_plural=_phrases(_plural(w, irregular) for w in persons),
            person_modifier_heads=frozenset(data["person_modifier_heads"]),
            person_non_mentions=_phrases(data["person_non_mentions"]),
            number_words={tuple(k.split()): int(v) for k, v in data["number_words"].items()},
            group_nouns={k: int(v) for k, v in data["group_nouns"].items()},
            two_person_hints=_phrases(data["two_person_hints"]),
            pose_words=frozenset(data["pose_words"]),
            stopwords=frozenset(data["stopwords"]),
            views={view: _phrases(words) for view, words in data.get("views", {}).items()},
            person_pronouns=frozenset(data.get("person_pronouns", [])),
            ing_nouns=frozenset(data.get("ing_nouns", [])),
            thing_verbs=frozenset(data.get("thing_verbs", [])),
            label_action_verbs=frozenset(data.get("label_action_verbs", [])),
        )


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; possessives, hyphens and "3/4" stay inside their word."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return _TOKEN.findall(text)


def bare(token: str) -> str:
    """A token without its possessive: "man's" -> "man", "kids'" -> "kids"."""
    return token[:-2] if token.endswith("'s") else token.rstrip("'")


def match_at(tokens: list[str], i: int, phrases: frozenset[tuple[str, ...]], longest: int = 4) -> int:
    """Length of the longest phrase of `phrases` starting at token i (0 if none)."""
    for n in range(min(longest, len(tokens) - i), 0, -1):
        if tuple(bare(t) for t in tokens[i : i + n]) in phrases:
            return n
    return 0


class RuleNormalizer:
    """The offline normaliser: vocabulary rules that keep who, how many, what and from where.

    A prompt is cut into clauses; each clause loses its style, medium, quality, lens, lighting,
    scenery and clothing phrases; clauses that still say something about a person or a body
    are kept, in order. A prompt with no such clause (a bowl of soup) keeps its cleaned text, so
    the retriever's gate, not the normaliser, decides that nothing matches.

    Args:
        vocab: the word lists; default the package's `data/normalize_vocab.yaml`.
    """

    def __init__(self, vocab: NormalizeVocab | None = None) -> None:
        self.vocab = vocab or default_vocab()

    def normalize(self, prompt: str, names: list[str] | None = None) -> str:
        """The canonical query of `prompt` (lower case, clauses joined by ", ").

        Args:
            prompt: the user's prompt.
            names: the subjects' names when the caller knows them (the studio does); names are
                also guessed from the prompt ("Mia and Leo shaking hands"). Either way they become
                "person"/"two people": the library describes people, not who they are.
        """
        text = _PROMPT_WEIGHT.sub(r"\1", replace_names(str(prompt), names, self.vocab).lower())
        text = expand_tags(text)
        text = dataset_label(text)
        for pattern in self.vocab.drop_patterns:
            text = pattern.sub(" ", text)
        clauses = [self._strip_clause(c) for c in _CLAUSE_SPLIT.split(text)]
        clauses = [c for c in clauses if c]
        posed = [c for c in clauses if self._bears_pose(c)]
        if len(tokenize(text)) <= SHORT_PROMPT_TOKENS and not any(map(self._names_action, posed)):
            posed = clauses  # a label or a few tags ("talk to, a person"): the action is a word we do not know
        canonical = ", ".join(" ".join(c) for c in (posed or clauses))
        return canonical or " ".join(tokenize(prompt))

    # -- one clause ----------------------------------------------------------------------------

    def _strip_clause(self, clause: str) -> list[str]:
        tokens = tokenize(clause)
        tokens = self._drop_lead_in(tokens)
        if tokens and tokens[0] in _OUTFIT_VERBS and not any(self._is_person_or_pose(t) or self.vocab.is_action_word(t) for t in tokens[1:]):
            return []  # "wearing a sports bra and black shorts": a clause of clothes says nothing of the pose
        keep = self._protected(tokens)
        drop = [False] * len(tokens)
        self._mark_phrases(tokens, keep, drop, self.vocab.drop)
        self._mark_prepositional(tokens, keep, drop, self.vocab.scenery_prepositions, self.vocab.scenery_nouns)
        self._mark_prepositional(tokens, keep, drop, self.vocab.clothing_prepositions, self.vocab.clothing_nouns)
        kept = [(t, k) for t, k, d in zip(tokens, keep, drop) if not d]
        return self._trim(kept)

    def _drop_lead_in(self, tokens: list[str]) -> list[str]:
        """ "a close-up photo of a dancer" -> "a dancer": the picture's introduction goes."""
        for i in range(min(len(tokens), 6)):
            n = match_at(tokens, i, self.vocab.lead_ins)
            if n:
                return tokens[i + n :]
        return tokens

    def _protected(self, tokens: list[str]) -> list[bool]:
        keep = [False] * len(tokens)
        for i in range(len(tokens)):
            n = match_at(tokens, i, self.vocab.keep, longest=5)
            keep[i : i + n] = [True] * n
        return keep

    def _mark_phrases(self, tokens, keep, drop, phrases) -> None:
        i = 0
        while i < len(tokens):
            n = match_at(tokens, i, phrases)
            if n and not any(keep[i : i + n]):
                drop[i : i + n] = [True] * n
                i += n
            else:
                i += 1

    def _mark_prepositional(self, tokens, keep, drop, prepositions, heads) -> None:
        """Drop "PREP [det] [up to 3 modifiers] HEAD [of ...]" phrases: "at a crowded stadium"."""
        i = 0
        while i < len(tokens):
            n = match_at(tokens, i, prepositions)
            end = self._phrase_end(tokens, i + n, keep, heads) if n and not keep[i] else None
            if end is None:
                i += 1
                continue
            drop[i:end] = [True] * (end - i)
            i = end

    def _phrase_end(self, tokens, j, keep, heads) -> int | None:
        if j < len(tokens) and tokens[j] in DETERMINERS:
            j += 1
        for modifiers in range(4):
            k = j + modifiers
            if k >= len(tokens) or keep[k] or self._is_person_or_pose(tokens[k]):
                return None
            n = match_at(tokens, k, heads)
            if n:
                end = k + n
                while end < len(tokens) and not keep[end] and (more := match_at(tokens, end, heads)):
                    end += more  # compounds: "leather jacket", "city street"
                if self._modifies_next(tokens, end):
                    return None  # "on a park bench": the scenery word names a prop, which stays
                end = self._extend_and(tokens, end, keep, heads)
                return self._extend_of(tokens, end, keep)
        return None

    def _modifies_next(self, tokens, end) -> bool:
        """Is the word after a scenery noun a noun it modifies ("park bench", "kitchen table")?"""
        if end >= len(tokens):
            return False
        word = tokens[end]
        return not (
            word in self.vocab.stopwords or word in DETERMINERS or word.isdigit()
            or word.endswith(("ing", "ed", "ly")) or self._is_person_or_pose(word)
            or (word,) in self.vocab.drop or match_at(tokens, end, self.vocab.keep, longest=5)
            or match_at(tokens, end, self.vocab.scenery_prepositions) or match_at(tokens, end, self.vocab.clothing_prepositions)
        )

    def _extend_and(self, tokens, end, keep, heads) -> int:
        """ "in a red jacket and cargo pants": "and [det] [up to 2 modifiers] HEAD" continues the phrase."""
        while end < len(tokens) and tokens[end] == "and":
            j = end + 1
            if j < len(tokens) and tokens[j] in DETERMINERS:
                j += 1
            for k in range(j, min(j + 3, len(tokens))):
                if keep[k] or self._is_person_or_pose(tokens[k]) or self.vocab.is_action_word(tokens[k]):
                    return end
                n = match_at(tokens, k, heads)
                if n:
                    end = k + n
                    break
            else:
                return end
        return end

    def _extend_of(self, tokens, end, keep) -> int:
        """ "the streets of old paris": an "of" complement belongs to the scenery."""
        if end < len(tokens) and tokens[end] == "of":
            stop = end + 1
            while stop < min(len(tokens), end + 4) and not keep[stop] and not self._is_person_or_pose(tokens[stop]):
                stop += 1
            return stop
        return end

    def _is_person_or_pose(self, token: str) -> bool:
        word = bare(token)
        return (
            (word,) in self.vocab.person_singular
            or (word,) in self.vocab.person_plural
            or word in self.vocab.pose_words
        )

    def _trim(self, kept: list[tuple[str, bool]]) -> list[str]:
        """Drop dangling function words left at the ends ("a man walking his dog along the")."""
        stop = self.vocab.stopwords

        def dangling(item, words) -> bool:
            token, protected = item
            return not protected and token in words

        while kept and dangling(kept[-1], stop):
            kept.pop()
        while kept and dangling(kept[0], stop - DETERMINERS):
            kept.pop(0)
        tokens = [t for t, _ in kept]
        return tokens if any(t not in stop or p for t, p in kept) else []

    def _names_action(self, tokens: list[str]) -> bool:
        """Does a clause name what the body does (a verb in -ing, a pose word), not only who?"""
        return any(bare(t) in self.vocab.pose_words or self.vocab.is_action_word(t) for t in tokens)

    def _bears_pose(self, tokens: list[str]) -> bool:
        """Does a clause say something about a person or a body (else it is scenery or mood)?"""
        if any(self._is_person_or_pose(t) or self.vocab.is_action_word(t) for t in tokens):
            return True
        if any(t in self.vocab.group_nouns for t in tokens):
            return True
        return any(match_at(tokens, i, self.vocab.keep, longest=5) for i in range(len(tokens)))


def requested_view(prompt: str, vocab: NormalizeVocab | None = None) -> str | None:
    """The camera view a prompt asks for ("side view" -> "side"), or None when it names none.

    The first view named wins: "from behind, low angle" asks for "back".
    """
    vocab = vocab or default_vocab()
    tokens = tokenize(prompt.replace("-", " - ").replace(" - ", "-"))
    for i in range(len(tokens)):
        for view, phrases in vocab.views.items():
            if match_at(tokens, i, phrases, longest=4):
                return view
    return None


def replace_names(prompt: str, names: list[str] | None = None, vocab: NormalizeVocab | None = None) -> str:
    """`prompt` with subject names replaced by people nouns: "Mia and Leo hugging" -> "two people hugging".

    Names are the caller's `names` (any case) and capitalised words that read as names: a list
    joined by "and" ("Mia, Leo and Sam") or a capitalised word before a verb in -ing or a
    possessive ("Mia waving", "Leo's arm"). Words the vocabulary knows ("Portrait", "Two") are
    never names.
    """
    vocab = vocab or default_vocab()
    known = vocab.stopwords | vocab.pose_words | vocab.group_nouns.keys() | DETERMINERS

    def is_name(word: str) -> bool:
        low = word.lower()
        return not (low in known or (low,) in vocab.drop or (low,) in vocab.person_singular
                    or (low,) in vocab.person_plural or (low,) in vocab.number_words or (low,) in vocab.lead_ins
                    or (low,) in vocab.keep or (low,) in vocab.scenery_nouns or (low,) in vocab.clothing_nouns)

    for name in sorted({n.strip() for n in names or [] if n and n.strip()}, key=len, reverse=True):
        prompt = re.sub(rf"(?i)\b{re.escape(name)}\b", "Someone", prompt)  # placeholder, counted below

    def listed(match: re.Match) -> str:
        words = re.findall(r"[A-Z][a-z]+", match.group(0))
        if not all(is_name(w) or w == "Someone" for w in words):
            return match.group(0)
        return _COUNT_WORDS.get(len(words), f"{len(words)} people")

    prompt = _NAME_LIST.sub(listed, prompt)
    prompt = _NAME_BEFORE_VERB.sub(lambda m: "a person" if is_name(m.group(1)) or m.group(1) == "Someone" else m.group(1), prompt)
    return re.sub(r"\bSomeone\b", "a person", prompt)


@lru_cache(maxsize=1)
def default_vocab() -> NormalizeVocab:
    """The package's vocabulary, parsed once: the file is read-only data of this package."""
    return NormalizeVocab.load()
