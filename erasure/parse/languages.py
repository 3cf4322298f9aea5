"""The words of each language we read, as data: one table per language.

Customers' privacy teams write in their own language, so what a request asks
for (erasure, access), whether it says *not* to delete, which law it names
and how it labels viewer ids are looked up in these tables, never in code
branches. Add a language by adding a table, and follow the safety rule the
tests enforce: a language gets erasure words only together with its
negations ("do not delete") and its access words, because an erasure word
read without the negation beside it would erase what the customer asked us
to keep.

Every pattern is written in *folded* form (see ``fold``): lower case, no
accents (``löschen`` is written ``loschen``, ``usunięcie`` ``usuniecie``),
``ł``/``ø``/``đ`` as ``l``/``o``/``d`` (``ß`` and ``æ`` stay, as folding them
would change the length: write ``au(?:ss|ß)er``), one plain space for every kind of
space and a plain ``'`` for typographic apostrophes. Patterns are regular
expressions matched as whole words; a space in a pattern matches any run of
white space, line breaks included (plain-text mail wraps mid-sentence).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Language:
    """What one language contributes to reading a request (all patterns folded, see ``fold``)."""

    code: str
    name: str
    #: Words that ask for erasure (verbs, nouns, "right to be forgotten").
    erasure: tuple[str, ...]
    #: Words or phrases that negate a nearby erasure word ("nicht", "ne ... pas", "nemažte").
    negation: tuple[str, ...]
    #: Exceptions and keeping ("except the following", "außer", "sauf", "behalten"): near an
    #: erasure word they say some data is *not* to be deleted, as a negation does. Not the
    #: verbs that also describe the data held ("die Sie aufbewahren", "que vous conservez",
    #: "die u bewaart"): genuine requests use them all the time.
    exceptions: tuple[str, ...]
    #: One word that is both the erasure and its negation ("nemažte", "Nichtlöschung"): a negation
    #: wherever it stands, since it is no erasure word of its own to look around.
    negated_erasure: tuple[str, ...]
    #: Phrases that withdraw or cancel an earlier request ("hat ihren Antrag zurückgezogen"):
    #: a follow-up saying so goes to a person wherever the phrase stands.
    withdrawal: tuple[str, ...]
    #: Words that ask for access to or a copy of data (a person answers those).
    access: tuple[str, ...]
    #: The mail itself ("delete this e-mail" in a confidentiality footer is not a request).
    mail_nouns: tuple[str, ...]
    #: Names of the GDPR in this language (CCPA names are shared, see ``CCPA_NAMES``).
    gdpr_names: tuple[str, ...]
    #: Labels naming one viewer id ("Zuschauer-ID", "identifiant viewer").
    labels: tuple[str, ...]
    #: Labels naming several ("Viewer-IDs", "identifiants spectateurs", "kijker-ID's").
    plural_labels: tuple[str, ...] = ()
    #: Words that may stand between a label ending a sentence and its colon
    #: ("les identifiants viewer suivants :").
    after_label: tuple[str, ...] = ()


# Shared by every language: customers keep the English term inside their own language.
_VIEWER_ID = ("viewer[ _-]?id",)
_VIEWER_IDS = ("viewer[ _-]?ids", "viewer[ _-]?id's", "viewer[ _-]?id:s")

ENGLISH = Language(
    code="en", name="English",
    erasure=(r"eras(?:e|ed|ure|ing)", r"delet(?:e|ed|ion|ing)", r"remov(?:e|al|ing)", "forget", "forgotten",
             "right to delete", r"article\s*17", r"art\.?\s*17", r"1798\.105"),
    negation=("not", "never", "don't", "dont", "do not", "no need to", "stop", "cannot", "can't", "won't"),
    exceptions=("except", "excluding", "apart from", "other than", "but not", r"(?:keep|retain) (?:[\w']+ ){0,2}following"),
    negated_erasure=(r"undelet\w*",),
    withdrawal=(r"withdr[ae]wn? (?:[\w']+ ){0,3}(?:request|deletion|erasure)", r"cancel\w* (?:[\w']+ ){0,3}(?:request|deletion|erasure)", r"disregard (?:[\w']+ ){0,3}(?:request|email|e-mail|message)"),
    access=(r"access\s+request", r"access\s+to\s+(?:[\w']+\s+){0,3}data", r"right\s+(?:of|to)\s+access", "subject access",
            r"(?:data\s+)?export\s+(?:of\s+)?(?:\w+\s+){0,2}data", r"data\s+export", "copy of", r"portab\w*",
            "right to know", "dsar", r"article\s*(?:15|20)", r"art\.?\s*(?:15|20)", r"1798\.(?:100|110|115)"),
    mail_nouns=(r"e-?mails?", "messages?", "communications?", "transmissions?", "copies"),
    gdpr_names=(r"(?:u\.?k\.?\s+)?gdpr", r"2016/679", "general data protection regulation"),
    labels=_VIEWER_ID,
    plural_labels=_VIEWER_IDS,
    after_label=("below", "listed below", "below listed"),
)

GERMAN = Language(
    code="de", name="Deutsch",
    erasure=(r"\w*losch\w*", r"entfern(?:en|t|e|ung)\w*", r"vergessen\s*werden", "vergessenwerden"),
    negation=("nicht", r"kein\w*", "nie", "niemals", "nichts"),
    exceptions=(r"au(?:ss|ß)er", "ausgenommen", "mit ausnahme", r"behalt\w*", "bis auf"),
    negated_erasure=(r"nichtlosch\w*", r"nicht-losch\w*"),
    withdrawal=(r"\w*(?:antrag|anfrage|ersuchen|auftrag)\w* (?:[\w']+ ){0,3}zuruck(?:gezogen|genommen|ziehen|nehmen)",
                r"(?:zieh|nehm)\w* (?:[\w']+ ){0,3}\w*(?:antrag|anfrage|ersuchen|auftrag)\w* zuruck",
                r"(?:antrag|anfrage) (?:[\w']+ ){0,3}storniert"),
    access=(r"\w*auskunft\w*", r"\w*kopie\w*", r"\w*ubertragbarkeit\w*", r"\w*einsicht\w*", r"zugang zu"),
    mail_nouns=(r"e-?mails?", "nachricht(?:en)?"),  # not "Mitteilung": "um Mitteilung nach erfolgter Löschung"
    gdpr_names=("dsgvo", "ds-gvo", "datenschutz-grundverordnung", "datenschutzgrundverordnung", "gdpr"),
    labels=(*_VIEWER_ID, "zuschauer[ -]?id"),
    plural_labels=(*_VIEWER_IDS, "zuschauer[ -]?ids"),
    after_label=("unten", "zu loschen", "loschen", "zu entfernen"),
)

FRENCH = Language(
    code="fr", name="Français",
    # not "oubli" alone: "suite a un oubli" is "by an oversight"
    erasure=(r"supprim\w*", "suppression", r"effac\w*", "effacement", r"droit a l'oubli"),
    # not "ne" alone: always paired with pas/jamais/rien/aucun, and Italian "ne" means "of it"
    negation=("pas", "jamais", "aucun", "aucune", "rien", "nullement", "non"),
    exceptions=("sauf", "excepte", "exceptes", r"a l'exception", "hormis"),
    negated_erasure=(r"non-suppression", r"non-effacement"),
    withdrawal=(r"retir\w* (?:[\w']+ ){0,2}demande", r"annul\w* (?:[\w']+ ){0,2}demande", r"demande (?:[\w']+ ){0,3}annulee"),
    access=(r"acces", r"copie", r"portabilite"),
    mail_nouns=(r"e-?mails?", "courriels?", "messages?", r"courriers? electroniques?"),
    gdpr_names=("rgpd", "gdpr", r"reglement general sur la protection des donnees"),
    labels=(*_VIEWER_ID, r"identifiant (?:d[eu] |de l')?(?:viewer|spectateur)", r"id (?:d[eu] )?(?:viewer|spectateur)"),
    plural_labels=(r"identifiants (?:d[eu] |des )?(?:viewers?|spectateurs?)", r"ids (?:d[eu] |des )?(?:viewers?|spectateurs?)",
                   *_VIEWER_IDS),
    after_label=("suivants", "suivant", "ci-dessous", "ci-apres", "concernes", "suivants ci-dessous"),
)

SPANISH = Language(
    code="es", name="Español",
    erasure=(r"suprim\w*", "supresion", r"borr(?:ar|en|e|ado|ados|adas|ada|ado|amiento)", r"elimin(?:ar|en|e|acion|ados|adas|ado|ada)",
             r"derecho al olvido", r"derecho de supresion"),
    negation=("no", "nunca", "ni", "jamas", "ningun", "ninguna", "ninguno"),
    exceptions=("excepto", "salvo", r"a excepcion", r"con excepcion", "conserven", "mantengan"),
    negated_erasure=(),
    withdrawal=(r"retirad[oa] (?:[\w']+ ){0,2}solicitud", r"retir\w* (?:[\w']+ ){0,2}solicitud", r"anul\w* (?:[\w']+ ){0,2}solicitud", r"desist\w*"),
    access=("acceso", "copia", "portabilidad"),
    mail_nouns=("mensajes?", r"correos?(?: electronicos?)?", r"e-?mails?"),
    gdpr_names=("rgpd", "gdpr", r"reglamento general de proteccion de datos"),
    labels=(*_VIEWER_ID, r"id (?:del? )?(?:espectador|visor|viewer)", r"identificador (?:del? )?(?:espectador|visor|viewer)"),
    plural_labels=(r"ids (?:de (?:los )?)?(?:espectador(?:es)?|visor(?:es)?|viewers?)",
                   r"identificadores (?:de (?:los )?)?(?:espectador(?:es)?|visor(?:es)?|viewers?)", *_VIEWER_IDS),
    after_label=("siguientes", "indicados", "a continuacion"),
)

ITALIAN = Language(
    code="it", name="Italiano",
    erasure=(r"cancell(?:are|azione|ate|iate|ati|ata|ino|ia)", r"elimin(?:are|azione|iate|ati|ata)", r"rimuov(?:ere|ete)", "rimozione",
             r"diritto all'oblio"),
    negation=("non", "mai", "nessun", "nessuna", "nessuno"),
    exceptions=("tranne", "eccetto", r"ad eccezione"),
    negated_erasure=(),
    withdrawal=(r"ritirat[oa] (?:[\w']+ ){0,2}richiesta", r"ritir\w* (?:[\w']+ ){0,2}richiesta", r"annull\w* (?:[\w']+ ){0,2}richiesta", r"revoc\w* (?:[\w']+ ){0,2}richiesta"),
    access=("accesso", "copia", "portabilita"),
    mail_nouns=(r"e-?mails?", "messaggio", "messaggi", "comunicazione"),
    gdpr_names=("gdpr", "rgpd", r"regolamento generale sulla protezione dei dati"),
    labels=(*_VIEWER_ID, r"id (?:dello )?(?:spettatore|viewer)", r"identificativo (?:dello )?(?:spettatore|viewer)"),
    plural_labels=(r"id (?:degli )?spettatori", r"identificativi (?:degli )?(?:spettatori|viewer)", *_VIEWER_IDS),
    after_label=("seguenti", "indicati", "sotto elencati", "elencati"),
)

DUTCH = Language(
    code="nl", name="Nederlands",
    # not "wissen": the German for "to know" ("lassen Sie uns wissen") would become an erasure
    erasure=(r"\w*verwijder\w*", "gewist", "wis", r"vergetelheid"),
    negation=("niet", "geen", "nooit", "niets"),
    exceptions=("behalve", "uitgezonderd", r"met uitzondering", r"behoud\w*"),
    negated_erasure=(),
    withdrawal=(r"\w*verzoek\w* (?:[\w']+ ){0,3}(?:ingetrokken|intrekken|geannuleerd)", r"(?:trekt|trekken) (?:[\w']+ ){0,3}\w*verzoek\w* in"),
    access=(r"\w*inzage\w*", "kopie", r"overdraagbaarheid", r"toegang tot"),
    mail_nouns=(r"e-?mails?", r"berichten?"),
    gdpr_names=("avg", "uavg", "gdpr", r"algemene verordening gegevensbescherming"),
    labels=(*_VIEWER_ID, r"kijkers?[ -]?id"),
    plural_labels=(r"kijkers?[ -]?ids", r"kijkers?[ -]?id's", *_VIEWER_IDS),
    after_label=("hieronder", "te verwijderen", "verwijderen"),
)

PORTUGUESE = Language(
    code="pt", name="Português",
    erasure=(r"apag(?:ar|uem|ue|ados|adas|amento)", r"elimin(?:ar|em|e|acao|ados|adas)", r"exclu(?:ir|am|sao|idos|idas)",
             r"remov(?:er|am)", r"direito ao esquecimento", r"direito ao apagamento"),
    negation=("nao", "nunca", "nem", "jamais", "nenhum", "nenhuma"),
    exceptions=("exceto", "excepto", "salvo", r"com excecao", r"a excecao", "conservem", "mantenham"),
    negated_erasure=(),
    withdrawal=(r"retir\w* (?:[\w']+ ){0,2}pedido", r"cancel\w* (?:[\w']+ ){0,2}pedido", r"desist\w*"),
    access=("acesso", "copia", "portabilidade"),
    mail_nouns=(r"mensage(?:m|ns)", r"e-?mails?", r"correios? eletronicos?"),
    gdpr_names=("rgpd", "gdpr", r"regulamento geral (?:sobre a|de) protecao de dados"),
    labels=(*_VIEWER_ID, r"id (?:d[oe] )?(?:espectador|viewer|visualizador)", r"identificador (?:d[oe] )?(?:espectador|viewer)"),
    plural_labels=(r"ids (?:d[oe]s? )?(?:espectador(?:es)?|viewers?)", r"identificadores (?:d[oe]s? )?(?:espectador(?:es)?|viewers?)",
                   *_VIEWER_IDS),
    after_label=("seguintes", "abaixo", "indicados"),
)

POLISH = Language(
    code="pl", name="Polski",
    # not "zapomniany" alone: "zapomniane hasło" is a forgotten password
    erasure=(r"usun\w*", r"usuw\w*", r"bycia zapomnianym"),
    negation=("nie", "nigdy", "zadnych", "zadne", "zadnej"),
    exceptions=("oprocz", r"z wyjatkiem", r"zachowa\w*", r"zatrzyma\w*"),
    negated_erasure=(r"nieusun\w*", r"nieusuw\w*"),
    withdrawal=(r"wycofa\w* (?:[\w']+ ){0,2}(?:zadani\w*|wnios\w*)", r"anulowa\w* (?:[\w']+ ){0,2}(?:zadani\w*|wnios\w*)"),
    access=(r"dostep\w*", r"kopi[ai]", r"przenoszeni\w*"),
    mail_nouns=(r"wiadomos\w*", r"e-?mail\w*"),
    gdpr_names=("rodo", "gdpr", r"ogoln\w* rozporzadzeni\w* o ochronie danych"),
    labels=(*_VIEWER_ID, r"id widza", r"identyfikator widza"),
    plural_labels=(r"id widzow", r"identyfikator(?:y|ow) widz(?:a|ow)", *_VIEWER_IDS),
    after_label=("ponizej",),
)

SWEDISH = Language(
    code="sv", name="Svenska",
    erasure=(r"radera\w*", "radering", r"ta bort", r"tas bort", r"tagits bort", r"bortglomd"),
    negation=("inte", "ej", "icke", "aldrig", "inga", "ingen"),
    exceptions=("utom", "forutom", r"med undantag", r"behall\w*"),
    negated_erasure=(),
    withdrawal=(r"aterkalla\w* (?:[\w']+ ){0,2}begaran", r"dragit tillbaka (?:[\w']+ ){0,2}begaran", r"begaran (?:[\w']+ ){0,3}(?:aterkallad|tillbakadragen)"),
    access=(r"\w*registerutdrag\w*", r"tillgang", "kopia", r"dataportabilitet"),
    mail_nouns=(r"e-?post(?:en)?", r"e-?mail(?:et)?", r"meddelande(?:t)?"),
    gdpr_names=("gdpr", r"dataskyddsforordningen"),
    labels=(*_VIEWER_ID, r"tittar[ -]?id"),
    plural_labels=(r"tittar[ -]?id:?n", r"tittar[ -]?ids", *_VIEWER_IDS),
    after_label=("nedan",),
)

DANISH = Language(
    code="da", name="Dansk",
    erasure=("slet", r"slette\w*", r"\w*sletning\w*", r"fjern(?:e|es|et|else)?", r"blive glemt"),
    negation=("ikke", "aldrig", "ingen", "intet"),
    exceptions=("undtagen", r"bortset fra", r"med undtagelse", r"behold\w*"),
    negated_erasure=(),
    withdrawal=(r"trukket (?:[\w']+ ){0,2}anmodning\w*", r"tilbagekald\w* (?:[\w']+ ){0,2}anmodning\w*"),
    access=(r"\w*indsigt\w*", "kopi", r"dataportabilitet"),
    mail_nouns=(r"e-?mail(?:en)?", r"meddelelse(?:n)?", r"besked(?:en)?"),
    gdpr_names=("gdpr", r"databeskyttelsesforordningen"),
    labels=(*_VIEWER_ID, r"seer[ -]?id"),
    plural_labels=(r"seer[ -]?id'?er", r"seer[ -]?ids", *_VIEWER_IDS),
    after_label=("nedenfor",),
)

FINNISH = Language(
    code="fi", name="Suomi",
    erasure=(r"poist\w*", r"unohdetuksi"),
    # the negative verb: ei, emme, ette, eivät, älä, älkää (not "en": French/Spanish/Swedish "in")
    negation=("ei", "emme", "ette", "eivat", "eika", "ala", "alkaa"),
    exceptions=("paitsi", r"lukuun ottamatta", "sailyttakaa"),
    negated_erasure=(),
    withdrawal=(r"peru\w* (?:[\w']+ ){0,2}pyyn\w*", r"pyyn\w* (?:[\w']+ ){0,2}peru\w*"),
    access=(r"\w*tarkastus\w*", r"paasy\w*", r"kopio\w*", r"siirrettavyy\w*"),
    mail_nouns=(r"sahkopost\w*", r"viesti\w*"),
    gdpr_names=("gdpr", r"(?:yleinen )?tietosuoja-asetu\w*"),
    labels=(*_VIEWER_ID, r"katsoja[ -]?id", r"katsojan id", r"katsojatunnus"),
    plural_labels=(r"katsoja[ -]?id:t", r"katsojatunnuks\w*", *_VIEWER_IDS),
    after_label=("alla",),
)

CZECH = Language(
    code="cs", name="Čeština",
    erasure=(r"vymaz\w*", r"smaz\w*", r"odstran\w*", r"byt zapomenut"),
    # Czech negates by prefix ("nemažte", "nesmažte": negated_erasure); not "ne\w*": "neprodleně" is "without delay".
    negation=("nikdy", r"zadn\w*", "nechceme", "nechci", "neprejeme",
              "nesouhlasime"),
    exceptions=("krome", r"s vyjimkou", r"ponech\w*", r"zachovej\w*"),
    negated_erasure=(r"ne(?:vy|s|od)?maz\w*", r"neodstran\w*"),
    withdrawal=(r"zadost\w* (?:[\w']+ ){0,2}zpet", r"(?:stahuj|zrus|odvol)\w* (?:[\w']+ ){0,2}zadost\w*"),
    access=(r"pristup\w*", r"kopi[ei]", r"prenositelnost\w*"),
    mail_nouns=(r"e-?mail\w*", r"zprav\w*"),
    gdpr_names=("gdpr", r"obecn\w* narizen\w* o ochrane osobnich udaju"),
    labels=(*_VIEWER_ID, r"id divaka", r"identifikator divaka"),
    plural_labels=(r"id divaku", r"identifikatory divaku", *_VIEWER_IDS),
    after_label=("nize",),
)

#: Every language we read, in the order the README lists them.
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (ENGLISH, GERMAN, FRENCH, SPANISH, ITALIAN, DUTCH, PORTUGUESE, POLISH, SWEDISH, DANISH, FINNISH, CZECH)
}

_PL_WROTE = r"napisa[łl](?:a|\(a\))?"
_CS_WROTE = r"napsal(?:a|\(a\))?"

# ---------------------------------------------------------------- reply attribution lines

#: How mail clients introduce a quoted reply ("On <date>, <person> wrote:"), per language:
#: rows of (opening, verb, whether the sender's name may follow the verb). Unlike the tables
#: above these are regular expressions over the text as written (not folded), matched on
#: one line that ends with a colon, ignoring case (parse/quotes.py builds the patterns).
#: An empty opening is a client that starts the line with the date or the name (Gmail in
#: most languages: "ma 2.11.2026 klo 9.12 Matti <m@x> kirjoitti:"; Apple Mail in Finnish:
#: "Matti kirjoitti 2.11.2026 kello 9.12:"): such a line must hold a digit (its date).
#: A row is only ever a reason to stop reading (a quote starts here): a wrong row can
#: hide ids from us, never make us read quoted ones.
REPLY_ATTRIBUTIONS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "en": (("On", "wrote", False),),
    "de": (("Am", "schrieb", True),),
    "fr": (("Le", r"a\s+[ée]crit", False),),
    "es": (("El", r"escribi[óo]", False),),
    "it": (("Il", r"ha\s+scritto", False),),
    "nl": (("Op", "schreef", True),),
    "pt": (("Em", "escreveu", False), ("", "escreveu", False)),         # Gmail: "seg., 2 de nov. de 2026 às 09:12, Ana <a@x> escreveu:"
    "pl": ((r"W\s+dniu", _PL_WROTE, False), ("Dnia", _PL_WROTE, False),  # Thunderbird; Outlook/Onet
           ("", _PL_WROTE, False)),                                     # Gmail: "pon., 2 lis 2026 o 09:12 Jan <j@x> napisał(a):"
    "sv": (("Den", "skrev", True), ("", "skrev", True)),                # Gmail: "mån 2 nov. 2026 kl 09:12 skrev Anna <a@x>:"
    "da": (("Den", "skrev", True), ("", "skrev", True)),                # Gmail: "man. 2. nov. 2026 kl. 09.12 skrev Jens <j@x>:"
    "fi": (("", "kirjoitti", True),),                                   # "Matti kirjoitti 2.11.2026 klo 9.12:", Gmail "... <m@x> kirjoitti:"
    "cs": (("Dne", _CS_WROTE, False), ("", _CS_WROTE, False)),         # Thunderbird "Dne 2. 11. 2026 v 9:12 Jan napsal(a):"; Gmail "... odesílatel Jan <j@x> napsal:"
}


#: The Californian law, named the same way in every language.
CCPA_NAMES: tuple[str, ...] = ("ccpa", "cpra", "california", r"cal\.?\s*civ\.?", r"1798\.\d+")


# ---------------------------------------------------------------- folding

#: Spaces that typography puts where a plain space is meant: NBSP, the narrow NBSP French
#: puts before ":", thin and other fixed-width spaces, ideographic space.
TYPOGRAPHIC_SPACES = "\u00a0\u202f\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u205f\u3000"
_ONE_TO_ONE = {
    **{c: " " for c in TYPOGRAPHIC_SPACES},
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'",
    "\u2010": "-", "\u2011": "-",  # hyphen, non-breaking hyphen ("Viewer‑ID")
    "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ı": "i",
}


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    if c in _ONE_TO_ONE:
        return _ONE_TO_ONE[c]
    base = unicodedata.normalize("NFKD", c)
    if len(base) > 1 and all(unicodedata.combining(m) for m in base[1:]):
        c = base[0]
    low = c.lower()
    return low if len(low) == 1 else c


def fold(text: str) -> str:
    """Lower case, accents dropped, typographic spaces and apostrophes made plain: one character for one.

    The result has the same length as ``text``, so a match in the folded text
    is at the same place in the original: ids are always taken from the
    original, never folded (they are matched exactly).
    """
    if text.isascii():
        return text.lower()
    table = _FOLD_TABLE
    for c in set(text):  # C-speed: each distinct character is folded once, then str.translate does the rest
        if ord(c) not in table:
            if len(table) >= _FOLD_TABLE_MAX:
                table.clear()
            table[ord(c)] = _fold_char(c)
    return text.translate(table)


#: Folded characters seen so far (ord -> one character), bounded: a hostile text cannot grow it without end.
_FOLD_TABLE: dict[int, str] = {}
_FOLD_TABLE_MAX = 65_536


def words_pattern(words: tuple[str, ...], *, strict: bool = False) -> re.Pattern[str]:
    """One regular expression matching any of ``words`` as whole words (folded text).

    ``strict`` also refuses a word joined to its neighbours by the characters ids are
    made of (``-``, ``/``, ``.``, ``:``, ``+``, ``=``...): the "no" of ``NO-0`` or the
    "ei" of ``0/EI`` in a listed id is not a word of the sentence.
    """
    # A space in a phrase is any run of white space: plain-text mail wraps lines mid-sentence.
    alternatives = "|".join(f"(?:{w.replace(' ', chr(92) + 's+')})" for w in words)
    if strict:
        return re.compile(rf"(?<![\w./+=%*:#@-])(?:{alternatives})(?![\w/+=%*#@-])(?![.:]\w)")
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
