from __future__ import annotations

import json
from importlib.resources import files

import pytest

from attnsteer.tasks import TaskDataError
from attnsteer.tasks.biasbios import BiasBios
from attnsteer.tasks.bios import (
    FIRST_NAMES,
    LAST_NAMES,
    first_sentence_end,
    load_bios,
    name_for,
    occupation_of,
    packaged_bios,
    packaged_occupations,
)
from tests.tasks.conftest import USER_BIOS


def test_packaged_bios_have_generated_names_and_first_sentences():
    raw = [json.loads(line) for line in files("attnsteer.tasks").joinpath("data", "biasbios_labhc_sample.jsonl")
           .read_text().splitlines()]
    bios = packaged_bios()
    assert len(bios) == 280
    for index, (bio, record) in enumerate(zip(bios, raw, strict=True)):
        first, last = bio.name.split(" ")
        assert first in FIRST_NAMES[record["gender"]] and last in LAST_NAMES
        assert bio.occupation == record["profession"].replace("_", " ")
        article = "an" if bio.occupation[0] in "aeiou" else "a"
        assert bio.first_sentence == f"{bio.name} is {article} {bio.occupation}."
        assert bio.text == f"{bio.first_sentence} {record['hard_text'].strip()}"
        assert bio.key == str(index)


def test_names_are_deterministic():
    # pinned: a change here changes every bios prompt (and the meaning of published numbers)
    assert [name_for(i, "Female") for i in range(2)] == ["Deborah Garcia", "Kathleen Walker"]
    assert [name_for(i, "Male") for i in range(2)] == ["George Garcia", "Jacob Walker"]
    assert [bio.name for bio in packaged_bios()[:3]] == ["Deborah Garcia", "Kathleen Walker", "Anna Lee"]
    assert packaged_bios()[279].name == "Linda Jones"
    assert len({bio.name for bio in packaged_bios()}) > 250
    assert {len(FIRST_NAMES["Female"]), len(FIRST_NAMES["Male"]), len(LAST_NAMES)} == {40}
    assert not set(LAST_NAMES) & (set(FIRST_NAMES["Male"]) | set(FIRST_NAMES["Female"]))


def test_twenty_eight_occupations():
    occupations = packaged_occupations()
    assert len(occupations) == 28 and list(occupations) == sorted(occupations)
    assert "software engineer" in occupations and "yoga teacher" in occupations
    assert occupation_of("software_engineer") == "software engineer"


@pytest.mark.parametrize(
    ("text", "end"),
    [("A is a b. C d.", 9), ("A is a b.", 9), ("A is a b", 8), ("Dr.Who is here. Yes", 15), ("x.\ny", 2)],
)
def test_first_sentence_end(text, end):
    assert first_sentence_end(text) == end


def test_user_bios(write_bios):
    bios = load_bios(write_bios(USER_BIOS))
    assert [bio.first_sentence for bio in bios] == [
        "Ada Park is a nurse.", "Bo Li is an astronaut.", "Cy Doe is a software_engineer", "Di Roe is a poet.",
        "Ed Fox is a dj.",
    ]
    assert bios[2].occupation == "software engineer"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"name": "A", "occupation": "nurse"}, r"bios.jsonl line 3: field 'bio' is missing"),
        ({"bio": "A is x.", "name": 5, "occupation": "nurse"}, r"line 3: field 'name' must be a string, got 5"),
        ({"bio": "A is x.", "name": "A", "occupation": " "}, r"line 3: field 'occupation' is empty"),
        ('{"bio": "A is x.", "name": "A",', r"line 3: invalid JSON"),
        ("[1, 2]", r"line 3: expected a JSON object"),
    ],
)
def test_bad_user_bios_name_the_line_and_field(write_bios, line, message):
    path = write_bios([USER_BIOS[0], "", line])  # line 2 is blank and skipped
    with pytest.raises(TaskDataError, match=message):
        BiasBios(path)


def test_empty_user_file(write_bios):
    with pytest.raises(TaskDataError, match="no records"):
        BiasBios(write_bios([""]))
