"""Phrase language codes: normalisation and validation of the locales a user asks for.

Phrase writes codes in lower case with an underscore before the region (`de`, `de_de`, `pt_br`,
`zh_hans_cn` is not used: scripts are written `sr_latn_rs`). Users often type BCP 47 (`de-DE`), so
hyphens are accepted and converted.
"""

from __future__ import annotations

import re

# ISO 639-1 codes, which Phrase accepts as plain language codes. Three-letter codes are checked
# by shape only, because Phrase's list of them is long and changes.
ISO_639_1 = frozenset(
    """
    aa ab af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv
    dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie
    ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv
    mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm
    rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts
    tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()
)

_CODE = re.compile(r"^(?P<lang>[a-z]{2,3})(?:_(?P<script>[a-z]{4}))?(?:_(?P<region>[a-z]{2}|\d{3}))?$")


class InvalidLocaleError(ValueError):
    """A locale code is not a Phrase language code."""


def normalize_locale(code: str) -> str:
    """Convert a locale code to Phrase's form (`de-DE` -> `de_de`), raising InvalidLocaleError."""
    candidate = code.strip().replace("-", "_").lower()
    match = _CODE.match(candidate)
    if not match:
        raise InvalidLocaleError(
            f"Invalid locale code {code!r}: use a Phrase language code such as 'de', 'fr_ca' or 'pt_br'."
        )
    lang = match.group("lang")
    if len(lang) == 2 and lang not in ISO_639_1:
        raise InvalidLocaleError(
            f"Unknown language {lang!r} in locale code {code!r}: use an ISO 639-1 code such as 'de', 'ja' or 'es'."
        )
    return candidate


def parse_locale_list(text: str, *, variable: str = "locales") -> list[str]:
    """Parse a comma-separated list of locale codes, normalised and without duplicates."""
    codes: list[str] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            code = normalize_locale(part)
        except InvalidLocaleError as exc:
            raise InvalidLocaleError(f"{variable}: {exc}") from None
        if code not in codes:
            codes.append(code)
    if not codes:
        raise InvalidLocaleError(f"{variable}: no locale codes given; list them separated by commas, e.g. 'de,fr'.")
    return codes
