"""Certificate-holder names: compare them the way a person reading the certificate would.

Normalisation, in order:

1. Unicode compatibility form, accents dropped, case folded (`Société` = `societe`).
2. `&` reads as `and`; dots and apostrophes vanish (`L.L.C.` -> `llc`, `O'Neil` -> `oneil`);
   every other punctuation mark separates words (`Smith-Jones` = `Smith Jones`).
3. Whitespace collapses; runs of single letters join (`L L C` = `LLC`, `A.B.C.` = `ABC`).
4. Legal suffixes take one spelling wherever they stand: `Incorporated` -> `inc`,
   `Corporation` -> `corp`, `Company` -> `co`, `Limited` -> `ltd` (`llc`, `llp`, `lp` are already
   one word after step 2).

Suffixes are unified, not dropped: `Acme LLC` and `Acme Inc` are different legal entities.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SUFFIXES = {
    "incorporated": "inc",
    "corporation": "corp",
    "company": "co",
    "limited": "ltd",
}
_JOINING = re.compile(r"[.'\u2019`]")
_SEPARATING = re.compile(r"[\W_]+")


@lru_cache(maxsize=8192)
def normalise_holder(name: str) -> str:
    """The comparable form of a certificate-holder name (see the module docstring)."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = _JOINING.sub("", text)
    words: list[str] = []
    letters: list[str] = []
    for word in _SEPARATING.sub(" ", text).split():
        if len(word) == 1:
            letters.append(word)
            continue
        if letters:
            words.append("".join(letters))
            letters = []
        words.append(_SUFFIXES.get(word, word))
    if letters:
        words.append("".join(letters))
    return " ".join(words)


def holder_matches(required: str, actual: str | None) -> bool:
    """True when the certificate names `actual` as holder and it is the `required` name."""
    return actual is not None and normalise_holder(actual) == normalise_holder(required)
