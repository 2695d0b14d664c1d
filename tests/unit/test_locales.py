import pytest

from phrase_connector.locales import InvalidLocaleError, normalize_locale, parse_locale_list


@pytest.mark.parametrize(("given", "expected"), [("de", "de"), ("de-DE", "de_de"), ("PT_br", "pt_br"),
                                                 ("sr_Latn_RS", "sr_latn_rs"), ("es-419", "es_419")])
def test_normalize_accepts_phrase_and_bcp47(given, expected):
    assert normalize_locale(given) == expected


@pytest.mark.parametrize("given", ["", "german", "d", "de_", "xx", "zz_de", "de/../fr"])
def test_normalize_rejects_unknown_codes(given):
    with pytest.raises(InvalidLocaleError) as caught:
        normalize_locale(given)
    assert repr(given) in str(caught.value)


def test_parse_list_deduplicates():
    assert parse_locale_list("de, fr,de-de,fr") == ["de", "fr", "de_de"]


def test_parse_list_rejects_empty():
    with pytest.raises(InvalidLocaleError, match="no locale codes"):
        parse_locale_list(" , ", variable="--locales")
