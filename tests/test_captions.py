import pytest

from motiondata.captions import CaptionFileError, read_captions


def write(tmp_path, content, name="captions.txt"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_plain_lines_in_order_with_ids_and_line_numbers(tmp_path):
    captions = read_captions(write(tmp_path, "a person walks\n\n  a person jumps  \n"))
    assert [(c.id, c.text, c.frames, c.line) for c in captions] == [
        (0, "a person walks", None, 1), (1, "a person jumps", None, 3)]
    assert captions.texts() == ["a person walks", "a person jumps"]
    assert captions.summary() == f"read 2 captions from {tmp_path / 'captions.txt'}, skipped 1: 1 blank"


def test_mardm_frames_format(tmp_path):
    captions = read_captions(write(tmp_path, "a person walks#120\na person sits # 40 \na person waves#NA\n"))
    assert [(c.text, c.frames) for c in captions] == [
        ("a person walks", 120), ("a person sits", 40), ("a person waves", None)]


@pytest.mark.parametrize("line", ["a person walks#abc", "a person walks#", "a person walks#0",
                                  "a person walks#-3", "a person walks#1#2", "- #40"])
def test_bad_frames_value_is_an_error_naming_the_line(tmp_path, line):
    path = write(tmp_path, f"fine caption\n{line}\n")
    with pytest.raises(CaptionFileError, match=r"captions.txt line 2"):
        read_captions(path)


def test_markdown_lists_headings_comments(tmp_path):
    text = "\n".join([
        "# Poses",                      # heading
        "## Back bends",                # heading
        "##",                           # empty heading
        "1. A person arching back",
        "2) A person bending forward#60",
        "- a person squats",
        "* a person kneels",
        "+ a person lunges",
        "// a comment",
        "#note without space",          # comment
        "####### seven hashes",         # comment (not a markdown heading)
        "<!-- html comment -->",
        "---",
        "* * *",
        "```",
        "**bold** is a caption",
        "1.5 metres jump",              # no space after "1." -> not a list number
        "-",
        "3.",
        "",
    ])
    captions = read_captions(write(tmp_path, text, "prompts.md"))
    assert [(c.text, c.frames) for c in captions] == [
        ("A person arching back", None), ("A person bending forward", 60), ("a person squats", None),
        ("a person kneels", None), ("a person lunges", None), ("**bold** is a caption", None),
        ("1.5 metres jump", None)]
    assert [c.line for c in captions] == [4, 5, 6, 7, 8, 16, 17]
    assert captions.skip_counts() == {"heading": 3, "comment": 4, "rule": 2, "code fence": 1, "empty item": 2}
    assert "skipped 12: 3 heading, 4 comment, 2 rule, 1 code fence, 2 empty item" in captions.summary()


def test_bom_and_crlf(tmp_path):
    captions = read_captions(write(tmp_path, "\ufeffa person walks#60\r\n\r\na person runs\r\n"))
    assert [(c.text, c.frames, c.line) for c in captions] == [("a person walks", 60, 1), ("a person runs", None, 3)]


def test_no_final_newline_and_unicode(tmp_path):
    captions = read_captions(write(tmp_path, "一个人向后弯腰\nune personne saute 🙂"))
    assert captions.texts() == ["一个人向后弯腰", "une personne saute 🙂"]


def test_invalid_utf8_names_line_and_byte_offset(tmp_path):
    path = write(tmp_path, b"good line\nbad \xff line\n")
    with pytest.raises(CaptionFileError, match=r"line 2: invalid UTF-8 at byte offset 14 .*byte 5 of the line"):
        read_captions(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_empty_file_is_an_error_naming_the_file(tmp_path, content):
    with pytest.raises(CaptionFileError, match=r"captions.txt is empty"):
        read_captions(write(tmp_path, content))


def test_file_without_captions_is_an_error(tmp_path):
    with pytest.raises(CaptionFileError, match=r"no captions in .*captions.txt.*1 heading, 1 comment"):
        read_captions(write(tmp_path, "# Title\n// nothing here\n"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_captions(tmp_path / "nope.txt")
