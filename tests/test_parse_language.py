"""Erasure, negation, access and law words in every language we read (erasure/parse/languages.py).

The safety rule: a language whose erasure words we read must have its
negations read too, or "bitte NICHT löschen" would erase. Each language
below therefore has, as sentences a native writes, at least one erasure
request, one negated request and one access request, and the tests fail
when a language in ``LANGUAGES`` is missing from the table.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.parse.language import kind_of, regulation_of
from erasure.parse.languages import LANGUAGES, TYPOGRAPHIC_SPACES, fold
from erasure.parse.problems import Collector


def read(words: str) -> tuple[str, set[str]]:
    out = Collector()
    kind = kind_of(words, out)
    return kind, {p.code for p in out.problems}


#: language -> (erasure requests, negated or conditional ones, access requests)
SENTENCES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "en": (
        ["Please delete all personal data for the following viewers.", "Request for erasure under Article 17"],
        ["Please do not delete the data yet.", "We asked for deletion last week, but please stop: don't erase anything."],
        ["We request a copy of all data you hold.", "Subject access request (Art. 15)"],
    ),
    "de": (
        ["Bitte löschen Sie alle Daten zu den folgenden Viewer-IDs.", "Löschantrag gemäß Art. 17 DSGVO",
         "Wir bitten um unverzügliche Löschung der personenbezogenen Daten.", "Antrag auf Datenlöschung",
         "Die Daten sind zu entfernen.", "Recht auf Vergessenwerden"],
        ["Bitte löschen Sie die Daten vorerst nicht.", "Bitte die Daten nicht löschen.",
         "Eine Löschung ist derzeit nicht gewünscht.", "Bitte keine Löschung vornehmen.",
         "Bitte löschen Sie die Daten zu den genannten Zuschauern bis auf Weiteres keinesfalls."],
        ["Auskunftsersuchen nach Art. 15 DSGVO", "Bitte senden Sie uns eine Kopie der gespeicherten Daten.",
         "Antrag auf Datenübertragbarkeit"],
    ),
    "fr": (
        ["Merci de supprimer toutes les données associées aux identifiants suivants.",
         "Demande d'effacement au titre de l'article 17 du RGPD", "Nous exerçons le droit à l'oubli.",
         "Veuillez procéder à la suppression des données."],
        ["Merci de ne pas supprimer ces données.", "N'effacez pas les données pour le moment.",
         "Ne supprimez rien avant notre confirmation.", "Aucune suppression ne doit avoir lieu."],
        ["Demande de droit d'accès aux données", "Merci de nous transmettre une copie des données.",
         "Demande de portabilité des données"],
    ),
    "es": (
        ["Les rogamos que supriman todos los datos asociados a los siguientes IDs.",
         "Solicitud de supresión de datos (derecho al olvido)", "Por favor, borren los datos del espectador.",
         "Solicitamos la eliminación de los datos personales."],
        ["Por favor, no borren los datos todavía.", "No eliminen nada hasta nueva orden.",
         "Les pedimos que nunca supriman estos datos sin consultarnos."],
        ["Solicitud de acceso a los datos personales", "Les pedimos una copia de los datos.",
         "Solicitud de portabilidad"],
    ),
    "it": (
        ["Vi chiediamo di cancellare tutti i dati relativi ai seguenti ID spettatore.",
         "Richiesta di cancellazione ai sensi dell'art. 17 GDPR", "Ne chiediamo la cancellazione.",
         "Diritto all'oblio", "Vi preghiamo di eliminare i dati."],
        ["Vi preghiamo di non cancellare i dati.", "Non eliminate nulla per ora.",
         "Nessuna cancellazione deve essere effettuata."],
        ["Richiesta di accesso ai dati personali", "Vi chiediamo una copia dei dati.", "Richiesta di portabilità dei dati"],
    ),
    "nl": (
        ["Graag verwijderen wij alle gegevens van de volgende kijker-ID's.",
         "Verzoek tot verwijdering van persoonsgegevens (AVG)", "Wilt u de gegevens verwijderen?",
         "Gegevensverwijdering", "Recht op vergetelheid"],
        ["Verwijder de gegevens voorlopig niet.", "Graag geen verwijdering uitvoeren.",
         "De gegevens mogen nooit verwijderd worden zonder overleg."],
        ["Inzageverzoek op grond van de AVG", "Graag ontvangen wij een kopie van de gegevens.",
         "Verzoek om toegang tot de gegevens"],
    ),
    "pt": (
        ["Solicitamos o apagamento de todos os dados associados aos seguintes IDs.",
         "Pedido de eliminação de dados pessoais (RGPD)", "Por favor, apaguem os dados.",
         "Exercemos o direito ao esquecimento.", "Pedimos que excluam os dados."],
        ["Por favor, não apaguem os dados.", "Não eliminem nada por enquanto.", "Nunca excluam estes dados."],
        ["Pedido de acesso aos dados pessoais", "Solicitamos uma cópia dos dados.", "Pedido de portabilidade"],
    ),
    "pl": (
        ["Prosimy o usunięcie wszystkich danych dotyczących następujących identyfikatorów widzów.",
         "Żądanie usunięcia danych (art. 17 RODO)", "Prosimy usunąć dane.", "Prawo do bycia zapomnianym"],
        ["Prosimy nie usuwać tych danych.", "Proszę na razie nie usuwać danych.", "Nigdy nie usuwajcie tych danych."],
        ["Wniosek o dostęp do danych osobowych", "Prosimy o kopię danych.", "Wniosek o przenoszenie danych"],
    ),
    "sv": (
        ["Vi ber er radera alla uppgifter för följande tittar-ID.", "Begäran om radering enligt GDPR",
         "Vänligen ta bort uppgifterna.", "Rätten att bli bortglömd"],
        ["Radera inte uppgifterna ännu.", "Vänligen ta inte bort något.", "Uppgifterna ska ej raderas."],
        ["Begäran om registerutdrag", "Vi begär en kopia av uppgifterna.", "Begäran om tillgång till personuppgifter"],
    ),
    "da": (
        ["Vi beder jer slette alle data om følgende seer-ID'er.", "Anmodning om sletning i henhold til GDPR",
         "Venligst fjern oplysningerne.", "Retten til at blive glemt"],
        ["Slet ikke oplysningerne endnu.", "Vi ønsker ingen sletning.", "Oplysningerne må aldrig slettes."],
        ["Anmodning om indsigt", "Vi beder om en kopi af oplysningerne.", "Anmodning om dataportabilitet"],
    ),
    "fi": (
        ["Pyydämme poistamaan kaikki tiedot seuraavilta katsojatunnuksilta.", "Tietojen poistopyyntö",
         "Poistakaa tiedot.", "Oikeus tulla unohdetuksi"],
        ["Älkää poistako tietoja vielä.", "Tietoja ei saa poistaa.", "Emme halua, että poistatte tietoja."],
        ["Tarkastuspyyntö", "Pyydämme kopion tiedoista.", "Pyyntö päästä tietoihin (pääsyoikeus)"],
    ),
    "cs": (
        ["Žádáme o výmaz všech údajů následujících ID diváků.", "Žádost o výmaz osobních údajů",
         "Prosíme, smažte údaje.", "Prosíme o neprodlené odstranění údajů.", "Právo být zapomenut"],
        ["Prosíme, údaje zatím nemažte.", "Údaje nesmažte.", "Nechceme, abyste údaje odstranili."],
        ["Žádost o přístup k osobním údajům", "Prosíme o kopii údajů.", "Žádost o přenositelnost údajů"],
    ),
}


def test_every_language_has_sentences_of_every_kind() -> None:
    assert set(SENTENCES) == set(LANGUAGES)
    assert len(LANGUAGES) >= 12
    for code, (erase, negated, access) in SENTENCES.items():
        assert erase and negated and access, code


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_every_language_with_erasure_words_has_negations_and_access_words(code: str) -> None:
    """The safety rule: erasure words are never added without the words that stop them."""
    lang = LANGUAGES[code]
    assert lang.erasure and lang.negation and lang.access and lang.gdpr_names and lang.labels and lang.mail_nouns
    for word in (*lang.erasure, *lang.negation, *lang.access, *lang.gdpr_names, *lang.labels, *lang.plural_labels):
        assert word == fold(word), f"{code}: {word!r} is not written folded (no capitals, no accents)"


CASES = [(code, s, kind) for code, groups in SENTENCES.items()
         for kind, sentences in zip(("erase", "negated", "access"), groups) for s in sentences]


@pytest.mark.parametrize("code, sentence, kind", CASES, ids=[f"{c}-{k}-{s[:30]}" for c, s, k in CASES])
def test_sentences(code: str, sentence: str, kind: str) -> None:
    got, problems = read(sentence)
    if kind == "erase":
        assert (got, problems) == ("erasure", set())
    elif kind == "negated":  # never an erasure without the problem that sends it to a person
        assert got != "erasure" or "ambiguous_wording" in problems
    else:
        assert (got, problems) == ("access", set())


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_erasure_with_access_words_goes_to_a_person(code: str) -> None:
    erase, _, access = SENTENCES[code]
    got, problems = read(erase[0] + "\n" + access[0])
    assert got == "erasure" and "also_access_request" in problems


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_negation_is_seen_however_it_is_written(code: str) -> None:
    """Upper case, without accents, with typographic spaces: the negation still counts."""
    for sentence in SENTENCES[code][1]:
        for variant in (sentence.upper(), fold(sentence), sentence.replace(" ", "\u00a0")):
            got, problems = read(variant)
            assert got != "erasure" or "ambiguous_wording" in problems, variant


# German and Dutch put the negation at the end of the clause; it is still seen across
# a dozen words, but not across a blank line (another paragraph).
FAR_NEGATIONS = [
    ("Bitte löschen Sie die Daten zu den oben genannten Zuschauern aus dem Monat Oktober nicht.", True),
    ("Verwijder de gegevens van de genoemde kijkers uit de maand oktober voorlopig niet.", True),
    ("Please delete the data.\n\nWe do not use the old portal any more.", False),
    ("Bitte löschen Sie die Daten.\n\nDas alte Portal nutzen wir nicht mehr.", False),
]


@pytest.mark.parametrize("text, ambiguous", FAR_NEGATIONS)
def test_negation_window(text: str, ambiguous: bool) -> None:
    got, problems = read(text)
    assert got == "erasure"
    assert ("ambiguous_wording" in problems) is ambiguous


# Words that look like erasure words in another language, and "without undue delay" (the
# Article 17 phrase) must neither make nor stop a request.
NEAR_MISSES = [
    ("Lassen Sie uns wissen, welche Daten Sie speichern.", "other", set()),  # German "wissen" is not Dutch "wis"
    ("We would like to cancel our subscription; the cancellation is attached.", "other", set()),
    ("Bitte löschen Sie die Daten unverzüglich.", "erasure", set()),
    ("Por favor, supriman los datos sin dilación indebida.", "erasure", set()),
    ("Vi preghiamo di cancellare i dati senza ingiustificato ritardo.", "erasure", set()),
    ("Prosimy o usunięcie danych bez zbędnej zwłoki.", "erasure", set()),
    ("Žádáme o výmaz údajů bez zbytečného odkladu.", "erasure", set()),
    ("Radera uppgifterna utan onödigt dröjsmål.", "erasure", set()),
    ("Verwijder de gegevens zonder onredelijke vertraging.", "erasure", set()),
    ("Wenn Sie nicht der richtige Adressat sind, löschen Sie bitte diese E-Mail.", "other", set()),
    ("Si vous n'êtes pas le destinataire, merci de supprimer ce message.", "other", set()),
    ("Se non siete i destinatari, vi preghiamo di cancellare questo messaggio.", "other", set()),
    ("Suite à un oubli de notre part, voici l'identifiant manquant.", "other", set()),  # an oversight
    ("Użytkownik zgłosił zapomniane hasło.", "other", set()),  # a forgotten password
    ("Il pubblico dell'oblio, un film.", "other", set()),
]


@pytest.mark.parametrize("text, kind, problems", NEAR_MISSES)
def test_near_misses(text: str, kind: str, problems: set[str]) -> None:
    assert read(text) == (kind, problems)


LAWS = [
    ("Löschantrag nach DSGVO", "gdpr"), ("Löschung gem. DS-GVO", "gdpr"), ("demande RGPD", "gdpr"),
    ("verzoek op grond van de AVG", "gdpr"), ("żądanie na podstawie RODO", "gdpr"), ("Regolamento (UE) 2016/679", "gdpr"),
    ("enligt dataskyddsförordningen", "gdpr"), ("i henhold til databeskyttelsesforordningen", "gdpr"),
    ("tietosuoja-asetuksen 17 artikla", "gdpr"), ("podle obecného nařízení o ochraně osobních údajů", "gdpr"),
    ("Datenschutz-Grundverordnung", "gdpr"), ("solicitud conforme al RGPD", "gdpr"),
    ("under the CCPA", "ccpa"), ("CPRA deletion request", "ccpa"), ("Cal. Civ. Code 1798.105", "ccpa"),
    ("conforme a la Ley de Privacidad del Consumidor de California", "ccpa"),
    ("nothing named", None),
]


@pytest.mark.parametrize("text, law", LAWS)
def test_regulation_names(text: str, law: str | None) -> None:
    out = Collector()
    assert regulation_of(text, out) == law
    assert out.problems == []


def test_both_laws_go_to_a_person() -> None:
    out = Collector()
    assert regulation_of("Löschantrag nach DSGVO und CCPA", out) is None
    assert [p.code for p in out.problems] == ["regulation_ambiguous"]


@given(st.text())
def test_fold_keeps_length_so_ids_are_cut_from_the_original(text: str) -> None:
    folded = fold(text)
    assert len(folded) == len(text)
    assert fold(folded) == folded


@given(st.text())
def test_kind_never_raises(text: str) -> None:
    kind_of(text, Collector())
    regulation_of(text, Collector())


@pytest.mark.parametrize("space", list(TYPOGRAPHIC_SPACES))
def test_typographic_spaces_are_spaces(space: str) -> None:
    assert fold(f"ne{space}pas") == "ne pas"
    _, problems = read(f"Merci de ne{space}pas supprimer les données.")
    assert "ambiguous_wording" in problems


#: A follow-up that cancels a request often names the erasure only in its subject, far from any negation.
WITHDRAWALS: dict[str, str] = {
    "en": "Re: Erasure request\n\nThe data subject has withdrawn their request this morning, so please hold off.",
    "de": "AW: Löschantrag\n\nDie betroffene Person hat ihren Antrag heute Morgen zurückgezogen.",
    "fr": "RE : Demande d'effacement\n\nLa personne concernée a retiré sa demande ce matin.",
    "es": "RE: Solicitud de supresión\n\nEl interesado ha retirado su solicitud esta mañana.",
    "it": "R: Richiesta di cancellazione\n\nL'interessato ha ritirato la richiesta stamattina.",
    "nl": "RE: Verwijderverzoek\n\nDe betrokkene heeft het verzoek vanochtend ingetrokken.",
    "pt": "RE: Pedido de apagamento\n\nO titular retirou o pedido esta manhã.",
    "pl": "Odp: Żądanie usunięcia danych\n\nOsoba, której dane dotyczą, wycofała dziś rano żądanie.",
    "sv": "SV: Begäran om radering\n\nDen registrerade har återkallat sin begäran i morse.",
    "da": "SV: Anmodning om sletning\n\nDen registrerede har i morges trukket sin anmodning tilbage.",
    "fi": "VS: Poistopyyntö\n\nRekisteröity on perunut pyyntönsä tänä aamuna.",
    "cs": "Re: Žádost o výmaz\n\nSubjekt údajů vzal dnes ráno svou žádost zpět.",
}

#: Withdrawing *consent* is a ground for erasure (Art. 17(1)(b)), not a withdrawal of the request.
CONSENT_WITHDRAWN = [
    "The viewer has withdrawn consent and asks for erasure of all data.",
    "Die betroffene Person hat ihre Einwilligung widerrufen und verlangt die Löschung.",
    "De betrokkene heeft de toestemming ingetrokken en vraagt om verwijdering.",
    "Den registrerade har återkallat sitt samtycke och begär radering.",
    "Osoba wycofała zgodę i żąda usunięcia danych.",
]


def test_every_language_has_a_withdrawal() -> None:
    assert set(WITHDRAWALS) == set(LANGUAGES)


@pytest.mark.parametrize("code", sorted(WITHDRAWALS))
def test_a_withdrawn_request_goes_to_a_person(code: str) -> None:
    got, problems = read(WITHDRAWALS[code])
    assert got == "erasure" and "ambiguous_wording" in problems


@pytest.mark.parametrize("text", CONSENT_WITHDRAWN)
def test_withdrawn_consent_is_a_reason_to_erase(text: str) -> None:
    assert read(text) == ("erasure", set())


@pytest.mark.parametrize("text", ["Antrag auf Nichtlöschung", "Ne, údaje prosím nesmažte.", "Prośba o nieusuwanie danych",
                                  "Re: Löschantrag\n\nBitte die Daten vorerst nicht löschen."])
def test_negated_erasure_words_anywhere(text: str) -> None:
    got, problems = read("Re: Löschantrag / výmaz / usunięcie\n\n" + text)
    assert got == "erasure" and "ambiguous_wording" in problems


PLAIN_NEGATIONS = [(code, word) for code, lang in LANGUAGES.items() for word in lang.negation
                   if re.fullmatch(r"[a-z' ]+", word)]


@pytest.mark.parametrize("code, word", PLAIN_NEGATIONS, ids=[f"{c}-{w}" for c, w in PLAIN_NEGATIONS])
def test_every_listed_negation_stops_every_language(code: str, word: str) -> None:
    """Each negation word, before or after an erasure sentence of *any* language, sends it to a person."""
    for other in LANGUAGES:
        erase = SENTENCES[other][0][0]
        for text in (f"{word} {erase}", f"{erase.rstrip('.')} {word}."):
            got, problems = read(text)
            assert got == "erasure" and "ambiguous_wording" in problems, (other, text)


#: "...except the following viewer IDs:": the list names the viewers to keep.
EXCEPTIONS = [
    "Please delete all viewers of the account except the following viewer IDs:",
    "Please delete everything, but not the billing records.",
    "Bitte löschen Sie alle Zuschauer des Kontos außer den folgenden Viewer-IDs:",
    "Bitte löschen Sie alle Daten mit Ausnahme der folgenden Zuschauer-IDs:",
    "Merci de supprimer tous les spectateurs sauf les identifiants viewer suivants :",
    "Supriman todos los datos excepto los siguientes IDs de espectador:",
    "Cancellate tutti i dati tranne i seguenti ID spettatore:",
    "Verwijder alle gegevens behalve de volgende kijker-ID's:",
    "Eliminem todos os dados exceto os seguintes IDs de espectador:",
    "Prosimy usunąć wszystkie dane oprócz następujących identyfikatorów widzów:",
    "Radera alla uppgifter utom följande tittar-ID:",
    "Slet alle data undtagen følgende seer-ID'er:",
    "Poistakaa kaikki tiedot paitsi seuraavat katsojatunnukset:",
    "Smažte všechny údaje kromě následujících ID diváků:",
]

#: Verbs that describe the data held are not exceptions.
HELD = [
    "Bitte löschen Sie alle Daten, die Sie zu diesem Zuschauer aufbewahren.",
    "Merci de supprimer toutes les données que vous conservez sur ce spectateur.",
    "Wilt u alle gegevens verwijderen die u bewaart over deze kijker?",
    "Les rogamos que supriman todos los datos que conservan sobre este espectador.",
]


@pytest.mark.parametrize("text", EXCEPTIONS)
def test_exceptions_go_to_a_person(text: str) -> None:
    got, problems = read(text)
    assert got == "erasure" and "ambiguous_wording" in problems


@pytest.mark.parametrize("text", HELD)
def test_the_data_held_is_not_an_exception(text: str) -> None:
    assert read(text) == ("erasure", set())


def test_an_exception_far_from_the_erasure_word_but_before_the_label() -> None:
    text = ("Please delete all viewer data that belongs to the account Northwind, which was closed on 12 November "
            "after the contract ended, except the following viewer IDs:\n- nw-1\n")
    assert "ambiguous_wording" in read(text)[1]
    assert "ambiguous_wording" in read(text.replace("except the following", "but not these"))[1]
    assert read(text.replace(", except", ", for")) == ("erasure", set())
