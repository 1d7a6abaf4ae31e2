"""Caption -> file stem: `<stem>.png`, `<stem>.json`, `<stem>.npy` in one output folder.

The original rule (kept, so existing outputs keep their names): drop the characters <>:"/\\|?*,
spaces -> "_", drop a leading "A_person_" (case-sensitive), at most 200 characters.

Hardening on top, so any caption gives a name every common filesystem accepts:
  - Unicode NFC; every whitespace character counts as a space; control/format/unassigned/surrogate
    characters (Unicode category C*) are removed
  - runs of dots collapse to one dot, so no ".." survives; no leading or trailing "_", "." or space
  - Windows reserved names (CON, NUL, COM1, ... also as "con.x") get "_pose" appended to the part before
    the first dot
  - `<stem>_NNNNN.json` fits in 255 UTF-8 bytes (MAX_STEM_BYTES), cut at a character boundary
  - an empty result becomes "pose_<id>"

`assign_names` makes the stems unique up to case (NAME_KEY: casefold + NFC), deterministically from the
full input, so the table must be computed once from the whole caption list, never per rank or per chunk.
"""
import unicodedata

DROPPED_CHARACTERS = '<>:"/\\|?*'
MAX_CHARS = 200                 # the original rule
MAX_FILENAME_BYTES = 255        # NAME_MAX on Linux/macOS/Windows filesystems
LONGEST_EXTENSION = ".json"     # 5 bytes; .png and .npy are 4
COLLISION_SUFFIX_BYTES = len("_NNNNN")
MAX_STEM_BYTES = MAX_FILENAME_BYTES - len(LONGEST_EXTENSION) - COLLISION_SUFFIX_BYTES  # 244
RESERVED_SUFFIX = "_pose"

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
WINDOWS_RESERVED |= {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}


def sanitize(caption: str, id: int) -> str:
    name = unicodedata.normalize("NFC", caption)
    name = "".join(" " if char.isspace() else char for char in name)
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C")).strip(" ")
    name = "".join(char for char in name if char not in DROPPED_CHARACTERS)
    name = name.replace(" ", "_")
    if name.startswith("A_person_"):
        name = name[len("A_person_"):]
    name = fit_length(collapse_dots(name))
    name = fit_length(avoid_windows_reserved(name))  # the suffix can push a long name over the limit
    return name or f"pose_{id}"


def assign_names(captions: list[str]) -> list[str]:
    """Unique stems, one per caption, in input order.

    Rule: a stem's first occurrence (by casefolded key) keeps it; every later occurrence gets the smallest
    suffix _2, _3, ... whose key is not taken, where "taken" starts as the set of ALL natural stems of
    the input. So ["x", "x", "x_2"] -> ["x", "x_3", "x_2"]: a suffix never steals a later caption's
    natural name, and every result is unique up to case.
    """
    stems = [sanitize(caption, id) for id, caption in enumerate(captions)]
    taken = {name_key(stem) for stem in stems}
    first_seen = set()
    names = []
    for stem in stems:
        key = name_key(stem)
        if key not in first_seen:
            first_seen.add(key)
            names.append(stem)
            continue
        number = 2
        while name_key(candidate := with_suffix(stem, f"_{number}")) in taken:
            number += 1
        taken.add(name_key(candidate))
        names.append(candidate)
    return names


def name_key(name: str) -> str:
    """Two names with the same key may be the same file on a case-insensitive filesystem."""
    return unicodedata.normalize("NFC", name.casefold())


def with_suffix(stem: str, suffix: str) -> str:
    """stem + suffix, cutting the stem so that `<stem><suffix>.json` stays within 255 bytes."""
    budget = MAX_FILENAME_BYTES - len(LONGEST_EXTENSION) - len(suffix.encode())
    return truncate_utf8(stem, budget) + suffix


def fit_length(name: str) -> str:
    """At most MAX_CHARS characters and MAX_STEM_BYTES bytes, no leading/trailing '_', '.' or space."""
    return truncate_utf8(name[:MAX_CHARS], MAX_STEM_BYTES).strip("_. ")


def truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode(errors="ignore")  # "ignore" drops a cut multi-byte character


def collapse_dots(name: str) -> str:
    while ".." in name:
        name = name.replace("..", ".")
    return name


def avoid_windows_reserved(name: str) -> str:
    """'CON' -> 'CON_pose', 'nul.x' -> 'nul_pose.x': Windows checks the part before the first dot."""
    head, dot, rest = name.partition(".")
    if head.upper() in WINDOWS_RESERVED:
        return head + RESERVED_SUFFIX + dot + rest
    return name
