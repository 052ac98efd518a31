from __future__ import annotations

import json

import pytest


@pytest.fixture
def write_bios(tmp_path):
    """Write a JSONL file of bios (dicts, or raw strings for malformed lines); return its path."""

    def write(records, name="bios.jsonl"):
        path = tmp_path / name
        lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


USER_BIOS = [
    {"bio": "Ada Park is a nurse. She works nights. Her patients like her.", "name": "Ada Park",
     "occupation": "nurse"},
    {"bio": "Bo Li is an astronaut.  He flew twice.", "name": "Bo Li", "occupation": "astronaut"},
    {"bio": "Cy Doe is a software_engineer", "name": "Cy Doe", "occupation": "software_engineer"},
    {"bio": "Di Roe is a poet. They write.", "name": "Di Roe", "occupation": "poet"},
    {"bio": "Ed Fox is a dj. He plays.", "name": "Ed Fox", "occupation": "dj"},
]
