"""The day the controller received the request, when the forwarding customer says so.

A processor owes its answer within the controller's deadline, which started
when the data subject wrote to the controller (deadlines.py). Customers may
state that day on a line of its own, in their language::

    Received from the data subject on: 2026-11-20
    Received on: 20.11.2026
    Eingegangen am: 20/11/2026

The grammar is exact, like the viewer-id lines (ids.py): a label from
:data:`LABELS` at the start of a line (case does not matter, runs of spaces do
not), a colon, one date, nothing else. Dates are ISO ``YYYY-MM-DD``,
``DD.MM.YYYY`` (only Europeans write dots), or ``DD/MM/YYYY`` only where it
cannot be read the American way (day above 12, or day equal to month).
Everything doubtful is a Problem and the request goes to review: a label with
anything but one such date after it, and two lines naming different dates.
A line without a known label is not read at all (``Received: from mx...`` is a
header, not a statement). Whether the date lies after our own receipt is the
workflow's check (deadlines.controller_receipt_problem): it alone has a clock.

Only the request's own text is read (parse/__init__ passes the unquoted text and
the forwarded message), so a quoted old request does not move a new deadline.
"""

from __future__ import annotations

import re
from datetime import date

from erasure.parse.problems import Collector

__all__ = ["LABELS", "controller_received_on"]

# Language -> the labels a customer may write before the colon. The long form
# says from whom; the short forms are what people write in a hurry. Keep them
# as plain words: the pattern is built from them.
LABELS: dict[str, tuple[str, ...]] = {
    "en": ("received from the data subject on", "received on", "date received"),
    "de": ("von der betroffenen person erhalten am", "erhalten am", "eingegangen am", "eingang am"),
    "fr": ("reçu de la personne concernée le", "reçu le", "reçue le", "date de réception"),
    "es": ("recibido del interesado el", "recibido el", "recibida el", "fecha de recepción"),
    "it": ("ricevuto dall'interessato il", "ricevuto il", "ricevuta il", "data di ricezione"),
    "nl": ("ontvangen van de betrokkene op", "ontvangen op", "datum van ontvangst"),
    "pt": ("recebido do titular dos dados em", "recebido em", "recebida em", "data de receção", "data de recebimento"),
    "pl": ("otrzymano od osoby, której dane dotyczą, dnia", "otrzymano dnia", "data otrzymania"),
    "sv": ("mottaget från den registrerade den", "mottaget den", "mottagen den", "mottagningsdatum"),
    "da": ("modtaget fra den registrerede den", "modtaget den", "modtagelsesdato"),
    "fi": ("vastaanotettu rekisteröidyltä", "vastaanotettu", "vastaanottopäivä"),
    "cs": ("přijato od subjektu údajů dne", "přijato dne", "datum přijetí"),
}

_ALL_LABELS = sorted({label for labels in LABELS.values() for label in labels}, key=len, reverse=True)


def _label_pattern(label: str) -> str:
    # Spaces in a label match runs of spaces or tabs; a typographic apostrophe counts as one.
    parts = [re.escape(word).replace("'", "['\u2019]") for word in label.split()]
    return r"[ \t]+".join(parts)


_LINE = re.compile(
    r"^[ \t]*(?:" + "|".join(_label_pattern(label) for label in _ALL_LABELS) + r")[ \t]*:(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
# ASCII digits only: \d would take Arabic-Indic and other digits a person would not type here.
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DOTS = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_SLASHES = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")


def controller_received_on(text: str, out: Collector) -> date | None:
    """The date stated after a receipt label, or None when there is none or it is doubtful (then a Problem)."""
    found: set[date] = set()
    doubtful = False
    for match in _LINE.finditer(text):
        value = _date_of(match.group("rest").strip(" \t\r"))
        if value is None:
            doubtful = True
        else:
            found.add(value)
    if doubtful:
        out.add("received_on_unreadable", "a 'Received on:' line does not give one date as YYYY-MM-DD or "
                "DD.MM.YYYY; the controller's deadline cannot be computed without it")
        return None
    if len(found) > 1:
        out.add("received_on_conflict", "the message names different dates on which the controller received "
                "the request; the controller's deadline cannot be computed without knowing which is right")
        return None
    return next(iter(found), None)


def _date_of(value: str) -> date | None:
    if m := _ISO.fullmatch(value):
        return _valid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DOTS.fullmatch(value):
        return _valid(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    if m := _SLASHES.fullmatch(value):
        day, month = int(m.group(1)), int(m.group(2))
        if day <= 12 and day != month:  # 05/11/2026: 5 November here, 11 May in the United States
            return None
        return _valid(int(m.group(3)), month, day)
    return None


def _valid(year: int, month: int, day: int) -> date | None:
    if year < 2000:  # "0026-11-20", "1926-11-20": a typo, not a request a century old
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None
