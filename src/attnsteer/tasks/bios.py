"""Bios shared by the biasbios, json_format and pronoun_change tasks.

The packaged file (280 Bias in Bios records: hard_text, profession, gender) has no name and no
first sentence, so both are rebuilt reproducibly: record ``i`` (0-based, file order) gets the name
``rng.choice(FIRST_NAMES[gender]) + " " + rng.choice(LAST_NAMES)`` with ``rng =
random.Random(f"{i}")`` (a string seed, hashed with SHA-512, so the same on every platform and
Python run); its occupation is the profession with "_" replaced by " "; its first sentence is
``f"{name} is a {occupation}."`` ("an" before a vowel); bio = first sentence + " " + hard_text.
The hard_text may still mention the real person's first name.

A user's file is JSON Lines, one ``{"bio", "name", "occupation"}`` object per line; the bio's first
sentence is the text up to and including the first "." followed by whitespace or the end (the
whole bio when there is none). Bios tasks split the 280 packaged bios (seed 0) into train 40,
valid 40 and test 200.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from attnsteer.spans import CharSpan
from attnsteer.tasks.base import Example, Task, TaskDataError, parse_jsonl, read_data_text, require

PACKAGED_FILE = "biasbios_labhc_sample.jsonl"

FIRST_NAMES = {
    "Female": (
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra "
        "Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Rebecca Sharon "
        "Laura Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine"
    ).split(),
    "Male": (
        "James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel Matthew "
        "Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy Ronald Jason Edward "
        "Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon"
    ).split(),
}
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Green Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez "
    "Lewis Robinson Walker Young Allen King Wright Adams Torres Nguyen Hill Flores"
).split()


@dataclass(frozen=True)
class Bio:
    """One person's bio; ``text[:first_sentence_end]`` is its first sentence."""

    key: str
    name: str
    occupation: str
    text: str
    first_sentence_end: int

    @property
    def first_sentence(self) -> str:
        return self.text[: self.first_sentence_end]


def occupation_of(profession: str) -> str:
    """The occupation phrase of a Bias in Bios profession: "software_engineer" -> "software engineer"."""
    return profession.strip().replace("_", " ")


def name_for(index: int, gender: str) -> str:
    """The generated name of packaged record ``index`` (0-based file order)."""
    rng = random.Random(f"{index}")
    return f"{rng.choice(FIRST_NAMES[gender])} {rng.choice(LAST_NAMES)}"


def first_sentence_end(text: str) -> int:
    """End offset of the first sentence: after the first "." followed by whitespace or the end."""
    for i, char in enumerate(text):
        if char == "." and (i + 1 == len(text) or text[i + 1].isspace()):
            return i + 1
    return len(text)


def _packaged_bio(index: int, record: object, where: str) -> Bio:
    hard_text = require(record, "hard_text", str, where).strip()
    occupation = occupation_of(require(record, "profession", str, where))
    gender = require(record, "gender", str, where)
    if gender not in FIRST_NAMES:
        raise TaskDataError(f"{where}: field 'gender' must be one of {sorted(FIRST_NAMES)}, got {gender!r}")
    name = name_for(index, gender)
    article = "an" if occupation[0].lower() in "aeiou" else "a"
    first = f"{name} is {article} {occupation}."
    return Bio(key=str(index), name=name, occupation=occupation, text=f"{first} {hard_text}",
               first_sentence_end=len(first))


def _user_bio(index: int, record: object, where: str) -> Bio:
    text = require(record, "bio", str, where).strip()
    name = require(record, "name", str, where).strip()
    occupation = occupation_of(require(record, "occupation", str, where))
    return Bio(key=str(index), name=name, occupation=occupation, text=text, first_sentence_end=first_sentence_end(text))


@lru_cache(maxsize=1)
def packaged_bios() -> tuple[Bio, ...]:
    """The 280 packaged bios in file order, with generated names and first sentences."""
    text, label = read_data_text(None, PACKAGED_FILE)
    records = parse_jsonl(text, label)
    return tuple(_packaged_bio(i, record, f"{label} line {line}") for i, (line, record) in enumerate(records))


def load_bios(data_file: str | Path | None) -> list[Bio]:
    """The packaged bios (None) or a user's JSONL file, validated, in file order."""
    if data_file is None:
        return list(packaged_bios())
    text, label = read_data_text(data_file, PACKAGED_FILE)
    records = parse_jsonl(text, label)
    bios = [_user_bio(i, record, f"{label} line {line}") for i, (line, record) in enumerate(records)]
    if not bios:
        raise TaskDataError(f"{label}: no records; give one JSON object per line with 'bio', 'name', 'occupation'")
    return bios


def packaged_occupations() -> tuple[str, ...]:
    """The sorted occupations of the packaged bios (28)."""
    return tuple(sorted({bio.occupation for bio in packaged_bios()}))


class BiosTask(Task):
    """A task over bios: loads them and keeps the candidate occupations."""

    packaged_split_sizes: ClassVar[tuple[int, int]] = (40, 40)
    occupations: tuple[str, ...]

    def load_records(self, data_file: str | Path | None) -> list[Bio]:
        """The bios; ``self.occupations`` = the packaged 28 plus any new ones in a user file, sorted."""
        bios = load_bios(data_file)
        self.occupations = tuple(sorted({*packaged_occupations(), *(bio.occupation for bio in bios)}))
        return bios

    def instruction_example(self, record: Bio, instruction: str, answer: str, max_new_tokens: int) -> Example:
        """One generate example: the bio, then `instruction` on its own line, emphasised."""
        prompt = f"{record.text}\n{instruction}"
        return Example(
            id=f"{self.name}/{record.key}",
            kind="generate",
            prompt=prompt,
            emphasis=(CharSpan(len(prompt) - len(instruction), len(prompt)),),
            answer=answer,
            max_new_tokens=max_new_tokens,
            reference={"name": record.name, "occupation": record.occupation},
        )
