"""Read a captions file: one caption per line, format detected per line.

Accepted line forms (surrounding whitespace is stripped first):

    A person arching back            plain text
    A person arching back#60         MARDM prompt format: caption#frames (a positive int) ...
    A person arching back#NA         ... or caption#NA (no requested length -> frames None)
    1. A person arching back         markdown numbered list, also "1) ..."; the number is dropped
    - A person arching back          markdown bullet, also "* ..." and "+ ..."; the marker is dropped

Lines that are not captions are skipped and reported with a reason:

    blank          empty or whitespace only
    heading        "#" .. "######" followed by whitespace or the end of the line ("# Poses", "##")
    comment        "//..." , "<!-- ... -->" on one line, and any other line starting with "#"
                   ("#note", "####### x"): a caption never starts with "#" because MARDM's format puts
                   the frame count after the caption, so "#40" alone has no caption to attach it to
    rule           markdown horizontal rule: "---", "***", "___", "* * *"
    code fence     "```" or "~~~" lines (the fence only; the lines inside are read as captions)
    empty item     a list marker with nothing after it ("1." or "-")

A "#" anywhere else in a caption line starts the frames field: "caption#abc" or "caption#" is an error
naming the line, never silently read as caption text. Lines end in "\\n" or "\\r\\n"; a UTF-8 BOM is ignored.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SKIP_REASONS = ("blank", "heading", "comment", "rule", "code fence", "empty item")

HEADING_RE = re.compile(r"#{1,6}(\s|$)")
RULE_RE = re.compile(r"([-*_])(\s*\1){2,}")
NUMBERED_RE = re.compile(r"\d{1,9}[.)](\s+|$)")
BULLET_RE = re.compile(r"[-*+](\s+|$)")


class CaptionFileError(ValueError):
    """A captions file that cannot be read; the message names the file (and line) and the fix."""


@dataclass(frozen=True)
class Caption:
    id: int                 # 0-based index among the kept captions
    text: str
    frames: int | None      # requested motion length from "caption#frames", None if not given or NA
    line: int               # 1-based line number in the source file


@dataclass(frozen=True)
class SkippedLine:
    line: int
    reason: str             # one of SKIP_REASONS
    text: str               # the stripped line, for messages


@dataclass
class CaptionList:
    path: Path
    captions: list[Caption]
    skipped: list[SkippedLine] = field(default_factory=list)

    def __len__(self):
        return len(self.captions)

    def __iter__(self):
        return iter(self.captions)

    def __getitem__(self, index):
        return self.captions[index]

    def texts(self) -> list[str]:
        return [caption.text for caption in self.captions]

    def skip_counts(self) -> dict[str, int]:
        counts = Counter(skipped.reason for skipped in self.skipped)
        return {reason: counts[reason] for reason in SKIP_REASONS if counts[reason]}

    def summary(self) -> str:
        """E.g. 'read 100 captions from prompts.txt, skipped 4: 3 blank, 1 heading'."""
        text = f"read {len(self.captions)} captions from {self.path}, skipped {len(self.skipped)}"
        counts = self.skip_counts()
        if counts:
            text += ": " + ", ".join(f"{count} {reason}" for reason, count in counts.items())
        return text


def read_captions(path) -> CaptionList:
    path = Path(path)
    raw = path.read_bytes()
    text = decode_utf8(raw, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CaptionFileError(f"captions file {path} is empty: write one caption per line")

    captions, skipped = [], []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline does not start another line
    for line_number, line in enumerate(lines, start=1):
        line = line.strip()  # also drops the "\r" of CRLF line endings
        reason = skip_reason(line)
        if reason:
            skipped.append(SkippedLine(line_number, reason, line))
            continue
        item = strip_list_marker(line)
        if not item:
            skipped.append(SkippedLine(line_number, "empty item", line))
            continue
        caption_text, frames = parse_frames(item, path, line_number)
        captions.append(Caption(len(captions), caption_text, frames, line_number))

    result = CaptionList(path, captions, skipped)
    if not captions:
        raise CaptionFileError(f"no captions in {path}: {result.summary()}; "
                               f"write one caption per line (see motiondata/captions.py for the formats)")
    return result


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        line_number = raw.count(b"\n", 0, error.start) + 1
        raise CaptionFileError(
            f"{path} line {line_number}: invalid UTF-8 at byte offset {error.start} of the file "
            f"(byte {error.start - line_start + 1} of the line): {error.reason}; re-save the file as UTF-8"
        ) from None


def skip_reason(line: str) -> str | None:
    if not line:
        return "blank"
    if line.startswith("#"):
        return "heading" if HEADING_RE.match(line) else "comment"
    if line.startswith("//") or (line.startswith("<!--") and line.endswith("-->")):
        return "comment"
    if RULE_RE.fullmatch(line):
        return "rule"
    if line.startswith("```") or line.startswith("~~~"):
        return "code fence"
    return None


def strip_list_marker(line: str) -> str:
    """'1. text' / '1) text' / '- text' / '* text' / '+ text' -> 'text'; other lines unchanged."""
    match = NUMBERED_RE.match(line) or BULLET_RE.match(line)
    return line[match.end():].strip() if match else line


def parse_frames(item: str, path: Path, line_number: int) -> tuple[str, int | None]:
    """'caption#60' -> ('caption', 60); 'caption#NA' -> ('caption', None); 'caption' -> ('caption', None)."""
    if "#" not in item:
        return item, None
    caption_text, _, value = item.partition("#")
    caption_text, value = caption_text.strip(), value.strip()
    where = f"{path} line {line_number}"
    if not caption_text:
        raise CaptionFileError(f"{where}: no caption before '#' in {item!r}; write 'caption#frames'")
    if value.upper() == "NA":
        return caption_text, None
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise CaptionFileError(
            f"{where}: expected 'caption#frames' with a positive integer or NA after '#', got {value!r} "
            f"in {item!r}; remove the '#' if it belongs to the caption text")
    return caption_text, int(value)
