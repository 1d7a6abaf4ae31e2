import random
import unicodedata

import pytest

from motiondata.naming import MAX_STEM_BYTES, WINDOWS_RESERVED, assign_names, name_key, sanitize


@pytest.mark.parametrize("caption, expected", [
    ("A person walks forward", "walks_forward"),
    ("a person walks forward", "a_person_walks_forward"),        # the original rule is case-sensitive
    ('what? <is> "this": a/b\\c|d*', "what_is_this_abcd"),
    ("A person", "A_person"),
    ("  A person  jumps  ", "jumps"),
    ("x" * 300, "x" * 200),                                       # the original 200-character cap
    ("../../etc/passwd", "etcpasswd"),
    ("...hidden...name...", "hidden.name"),
    ("a\x00b\x01c\u200bd", "abcd"),                               # control and format characters
    ("a\tb\nc\u3000d", "a_b_c_d"),                                # any whitespace is a space
    ("e\u0301", "\u00e9"),                                        # NFC
    ("CON", "CON_pose"), ("nul.txt", "nul_pose.txt"), ("com1", "com1_pose"), ("CONSOLE", "CONSOLE"),
    ("nul." + "x" * 240, "nul_pose." + "x" * 191),                # the suffix keeps the 200-character cap
    ("", "pose_7"), ("???", "pose_7"), ("..", "pose_7"), ("A person ", "A_person"), ("A_person_", "pose_7"),
])
def test_sanitize(caption, expected):
    assert sanitize(caption, 7) == expected


def test_long_multibyte_caption_is_cut_at_a_character_boundary():
    for char in ("一", "🙂", "é"):
        name = sanitize(char * 400, 0)
        assert len(name.encode()) <= MAX_STEM_BYTES
        assert set(name) == {char}
        assert len((name + "_99999.json").encode()) <= 255


def test_assign_names_duplicates_in_input_order():
    assert assign_names(["a person walks", "a person walks", "a person walks"]) == [
        "a_person_walks", "a_person_walks_2", "a_person_walks_3"]


def test_assign_names_different_captions_same_name():
    assert assign_names(["a person: walks", "a person walks", "a person/ walks"]) == [
        "a_person_walks", "a_person_walks_2", "a_person_walks_3"]


def test_assign_names_case_insensitive():
    assert assign_names(["Walk", "walk", "WALK", "straße", "STRASSE"]) == [
        "Walk", "walk_2", "WALK_3", "straße", "STRASSE_2"]


def test_suffix_never_takes_a_later_natural_name():
    assert assign_names(["x", "x", "x_2"]) == ["x", "x_3", "x_2"]
    assert assign_names(["x_2", "x", "x", "X_3"]) == ["x_2", "x", "x_4", "X_3"]
    assert assign_names(["", "pose_0", ""]) == ["pose_0", "pose_0_2", "pose_2"]


def test_assign_names_is_deterministic():
    captions = ["b", "a", "b", "A", "a_2"] * 10
    assert assign_names(captions) == assign_names(list(captions))


def test_suffix_fits_when_the_stem_is_at_the_byte_limit():
    names = assign_names(["🙂" * 400] * 3)
    assert len(set(names)) == 3
    assert all(len((name + ".json").encode()) <= 255 for name in names)


def random_caption(rng: random.Random) -> str:
    pieces = ["/", "\\", "..", ".", "\x00", " ", "_", "A person ", "CON", "nul", "ß", "SS", "İ", "e\u0301",
              "\u200d", "\ud800", "\u202e", "\n", "\t", "\u3000", ":", "*", "?", "<", ">", "|", '"']
    alphabets = ["abcXYZ019", "一二三四五六七八九十人走跳", "🙂🙃👨‍👩‍👧🏃🏽‍♀️", "éüñøÅΩЖ"]
    parts = []
    for _ in range(rng.choice([1, 3, 10, 60, 300])):
        if rng.random() < 0.3:
            parts.append(rng.choice(pieces))
        elif rng.random() < 0.05:
            parts.append(chr(rng.randrange(0x110000)))
        else:
            parts.append(rng.choice(rng.choice(alphabets)))
    return "".join(parts)


def test_property_random_unicode_captions_give_safe_unique_names(tmp_path):
    rng = random.Random(1234)
    captions = [random_caption(rng) for _ in range(1500)]
    captions += captions[:200]                                 # exact duplicates
    captions += [caption.upper() for caption in captions[:200]]  # duplicates up to case
    names = assign_names(captions)

    assert len(names) == len(captions)
    assert len({name_key(name) for name in names}) == len(names)
    for id, (caption, name) in enumerate(zip(captions, names)):
        stem = sanitize(caption, id)
        assert len((stem + "_99999.json").encode("utf-8")) <= 255, caption
        assert len((name + ".json").encode("utf-8")) <= 255, caption
        assert name and name not in (".", "..")
        assert "/" not in name and "\\" not in name and "\x00" not in name and ".." not in name
        assert not any(unicodedata.category(char).startswith("C") for char in name)
        assert not stem.startswith(("_", ".", " ")) and not stem.endswith(("_", ".", " "))
        assert name.partition(".")[0].upper() not in WINDOWS_RESERVED
        assert unicodedata.normalize("NFC", stem) == stem

    # the filesystem accepts every name and all three files stay separate
    for name in names:
        for extension in (".png", ".json", ".npy"):
            (tmp_path / f"{name}{extension}").write_bytes(b"")
    assert len(list(tmp_path.iterdir())) == 3 * len(names)
