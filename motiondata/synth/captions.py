"""Captions for the synthetic pose corpus and the caption list of the pose10k run.

A caption is "<subject> [<adverb>] <phrase><tail>", e.g. "a woman slowly raises both arms above the head and
holds the pose", where the phrase is one of a family's training phrases (motiondata.synth.poses). The corpus
and the pose10k list use the same subjects, adverbs and tails, so every pose10k caption is made of words the
model was trained on; held-out phrases are only used for evaluation.

    python -m motiondata.synth.captions --out data/pose10k_captions.txt --n 10000 --seed 0
"""
import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from motiondata.atomic import atomic_write_text
from motiondata.synth.poses import FAMILIES, Family

SUBJECTS = ("a person", "a man", "a woman", "someone", "the person", "a human", "the man", "the woman", "a figure")
ADVERBS = ("", "slowly", "carefully")
TAILS = ("", " and holds the pose", " and stays still", " and holds still", " and stays there")


def compose(subject: str, adverb: str, phrase: str, tail: str) -> str:
    """Lower-case caption; the adverb goes before the verb ("a man slowly kneels down")."""
    if adverb and not phrase.startswith("is "):
        phrase = f"{adverb} {phrase}"
    return f"{subject} {phrase}{tail}"


def as_sentence(caption: str) -> str:
    """'a person waves' -> 'A person waves.' (how people type prompts)."""
    return caption[0].upper() + caption[1:] + "."


def caption_combinations(family: Family) -> list:
    """Every distinct training caption of a family, lower case, in a fixed order."""
    captions = []
    for phrase, subject, adverb, tail in itertools.product(family.captions, SUBJECTS, ADVERBS, TAILS):
        if adverb and phrase.startswith("is "):
            continue  # "a man slowly is walking" is not English
        captions.append(compose(subject, adverb, phrase, tail))
    return captions


def random_training_captions(family: Family, rng: np.random.Generator, count: int) -> list:
    """`count` captions of different phrases (fewer if the family has fewer phrases), randomly styled."""
    phrases = rng.permutation(len(family.captions))[:count]
    captions = []
    for index in phrases:
        caption = compose(SUBJECTS[rng.integers(len(SUBJECTS))], ADVERBS[rng.integers(len(ADVERBS))],
                          family.captions[index], TAILS[rng.integers(len(TAILS))])
        captions.append(as_sentence(caption) if rng.random() < 0.5 else caption)
    return captions


def evaluation_sentences(phrases) -> list:
    """Evaluation phrases as prompts: 'A person <phrase>.'"""
    return [as_sentence(f"a person {phrase}") for phrase in phrases]


def heldout_captions(family: Family) -> list:
    return evaluation_sentences(family.heldout)


def validation_captions(family: Family) -> list:
    return evaluation_sentences(family.validation)


def compose_captions(n: int, seed: int = 0) -> list:
    """n distinct (caption, family name) pairs, families in turn so that each gets n / len(FAMILIES)."""
    rng = np.random.default_rng(seed)
    pools = [[as_sentence(c) for c in rng.permutation(caption_combinations(family))] for family in FAMILIES]
    if n > sum(len(pool) for pool in pools):
        raise ValueError(f"only {sum(len(p) for p in pools)} distinct captions exist; ask for fewer or add "
                         "phrases / subjects to motiondata.synth")
    pairs = []
    for position in itertools.count():
        for family, pool in zip(FAMILIES, pools):
            if position < len(pool) and len(pairs) < n:
                pairs.append((pool[position], family.name))
        if len(pairs) == n:
            break
    return [pairs[i] for i in rng.permutation(n)]


# ---------------------------------------------------------------------------------------------------------
# crude part-of-speech tags for HumanML3D text lines ("word/POS" with verbs lemmatised)

_TAGS = {
    "DET": {"a", "an", "the", "both", "each", "one's"},
    "ADP": {"on", "in", "at", "to", "with", "over", "above", "of", "from", "into", "onto", "toward", "behind",
            "like", "off", "against", "across", "out", "as", "under"},
    "CCONJ": {"and", "or", "then"},
    "PRON": {"someone", "something", "somebody", "it", "there"},
    "ADV": {"slowly", "carefully", "still", "forward", "sideways", "backward", "up", "down", "high", "straight",
            "ahead", "overhead", "low", "politely", "slightly", "only", "together", "wide", "horizontally",
            "laterally", "upright", "flat"},
    "NUM": {"one", "two", "ii"},
    "ADJ": {"left", "right", "deep", "single", "neutral", "relaxed", "crossed", "folded",
            "front", "side", "military", "inner", "upside", "full", "downward", "respectful"},
}


_IRREGULAR = {"is": "be", "does": "do", "goes": "go", "lies": "lie", "tiptoes": "tiptoe"}


def _lemma(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, replacement in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            return word[:-len(suffix)] + replacement
    return word


def _verb_lemmas() -> set:
    """Verbs of the training vocabulary: the first word of every phrase, plus verbs used after 'and'."""
    first_words = {_lemma(phrase.split()[0]) for family in FAMILIES for phrase in family.captions}
    return (first_words | {"hold", "stay", "salute", "push", "look", "touch", "pick", "balance"}) - {"be"}


_VERBS = _verb_lemmas()


def pos_tagged(caption: str) -> str:
    """'a man kneels down' -> 'a/DET man/NOUN kneel/VERB down/ADV' (lower case, no punctuation)."""
    tokens = []
    for word in caption.lower().replace(".", " ").replace(",", " ").split():
        if word == "is":
            tokens.append("be/AUX")
        elif word not in _TAGS["ADJ"] and _lemma(word) in _VERBS and word not in _TAGS["ADV"]:
            tokens.append(f"{_lemma(word)}/VERB")
        else:
            tag = next((tag for tag, words in _TAGS.items() if word in words), "NOUN")
            tokens.append(f"{word}/{tag}")
    return " ".join(tokens)


def text_line(caption: str) -> str:
    """One line of a HumanML3D texts/<id>.txt file covering the whole clip."""
    return f"{caption}#{pos_tagged(caption)}#0.0#0.0"


# ---------------------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the pose10k caption list (one caption a line).")
    parser.add_argument("--out", type=Path, default=Path("data/pose10k_captions.txt"))
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families-out", type=Path, default=None,
                        help="optional JSONL of {caption, family} to evaluate generated poses with the checks")
    args = parser.parse_args(argv)
    pairs = compose_captions(args.n, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "".join(f"{caption}\n" for caption, _ in pairs))
    if args.families_out:
        atomic_write_text(args.families_out, "".join(
            json.dumps({"caption": caption, "family": family}) + "\n" for caption, family in pairs))
    print(f"wrote {len(pairs)} captions from {len(FAMILIES)} pose families to {args.out}")


if __name__ == "__main__":
    main()
