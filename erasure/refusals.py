"""Refusal codes: the legal grounds on which an officer refuses a request, or part of one, as data.

Each code names one ground, the regulations it belongs to, and per regulation
the citation and a short statement of the legal basis written for a letter
(``basis``): the customer's privacy team, or in the controller role the
viewer, reads it as it is. The officer's own words (``--reason``) go beside
it, never instead of it, so every refusal states the law it rests on
(GDPR Art. 12(4); CCPA Civil Code 1798.145(h)(2), 11 CCR 7022(f)).

A code belongs to one or both regulations: refusing a GDPR request under a
Civil Code paragraph is a mistake the officer is told about (:func:`refusal_for`),
not a letter that cites the wrong law.

Sources: GDPR Art. 11(2), 12(5), 12(6), 17(3); Civil Code 1798.105(d) as
amended by the CPRA (eight paragraphs since 1 January 2023; the old ninth,
"otherwise use ... internally, in a lawful manner", is gone and its
"compatible with the context" joined paragraph (7)); 1798.145(h)(3);
11 CCR 7022(a) and 7060-7063 (verification).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from erasure.errors import UsageError
from erasure.vocabulary import Regulation

#: The code an officer's free-text reason stands under when no code is given.
OTHER = "other"


@dataclass(frozen=True)
class Basis:
    """The law a refusal rests on under one regulation: where it is written, and what it says, for a letter."""

    citation: str
    text: str


@dataclass(frozen=True)
class Refusal:
    """One refusal code: a short title for the officer, and its basis under each regulation it belongs to."""

    code: str
    title: str
    bases: Mapping[str, Basis]

    @property
    def regulations(self) -> tuple[str, ...]:
        return tuple(r for r in Regulation if r in self.bases)

    def basis(self, regulation: str) -> Basis:
        return self.bases[regulation]

    def citation(self, regulation: str) -> str:
        return self.bases[regulation].citation

    def letter_text(self, regulation: str) -> str:
        """The basis as a letter states it: the text, then where the law says so."""
        b = self.bases[regulation]
        return f"{b.text} ({b.citation})"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "regulations": list(self.regulations),
            "bases": {r: {"citation": b.citation, "text": b.text} for r, b in self.bases.items()},
        }


def _gdpr(citation: str, text: str) -> Mapping[str, Basis]:
    return MappingProxyType({Regulation.GDPR: Basis(citation, text)})


def _ccpa(citation: str, text: str) -> Mapping[str, Basis]:
    return MappingProxyType({Regulation.CCPA: Basis(citation, text)})


def _both(gdpr: Basis, ccpa: Basis) -> Mapping[str, Basis]:
    return MappingProxyType({Regulation.GDPR: gdpr, Regulation.CCPA: ccpa})


_CCPA_105D = ("The right to delete does not apply where keeping the personal information is reasonably necessary "
              "for the business, or for a service provider acting under its contract with the business, ")

_TABLE: tuple[Refusal, ...] = (
    # ------------------------------------------------ GDPR Art. 17(3): one code per point
    Refusal("gdpr-17-3-a", "freedom of expression and information", _gdpr(
        "Art. 17(3)(a) GDPR",
        "The right to erasure does not apply where the processing is necessary for exercising the right of "
        "freedom of expression and information.")),
    Refusal("gdpr-17-3-b", "legal obligation, public interest or official authority", _gdpr(
        "Art. 17(3)(b) GDPR",
        "The right to erasure does not apply where the processing is necessary for compliance with a legal "
        "obligation under Union or Member State law, or for a task carried out in the public interest or in "
        "the exercise of official authority.")),
    Refusal("gdpr-17-3-c", "public health", _gdpr(
        "Art. 17(3)(c) GDPR",
        "The right to erasure does not apply where the processing is necessary for reasons of public interest "
        "in the area of public health, in accordance with Article 9(2)(h) and (i) and Article 9(3) GDPR.")),
    Refusal("gdpr-17-3-d", "archiving, research or statistics", _gdpr(
        "Art. 17(3)(d) GDPR",
        "The right to erasure does not apply where the processing is necessary for archiving purposes in the "
        "public interest, scientific or historical research purposes or statistical purposes in accordance with "
        "Article 89(1) GDPR, in so far as erasure is likely to render impossible or seriously impair those "
        "purposes.")),
    Refusal("gdpr-17-3-e", "legal claims", _gdpr(
        "Art. 17(3)(e) GDPR",
        "The right to erasure does not apply where the processing is necessary for the establishment, exercise "
        "or defence of legal claims.")),
    # ------------------------------------------------ CCPA Civil Code 1798.105(d), post-CPRA: one code per paragraph
    Refusal("ccpa-105-d-1", "complete the transaction, provide the service, perform a contract", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(1)",
        _CCPA_105D + "to complete the transaction for which it was collected, fulfil the terms of a written "
        "warranty or a product recall, provide a good or service the consumer requested or reasonably "
        "anticipates, or otherwise perform a contract between the business and the consumer.")),
    Refusal("ccpa-105-d-2", "security and integrity", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(2)",
        _CCPA_105D + "to help to ensure security and integrity, to the extent that this use is reasonably "
        "necessary and proportionate for those purposes.")),
    Refusal("ccpa-105-d-3", "debugging", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(3)",
        _CCPA_105D + "to debug to identify and repair errors that impair existing intended functionality.")),
    Refusal("ccpa-105-d-4", "free speech or another right provided by law", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(4)",
        _CCPA_105D + "to exercise free speech, to ensure the right of another consumer to exercise free speech, "
        "or to exercise another right provided for by law.")),
    Refusal("ccpa-105-d-5", "California Electronic Communications Privacy Act", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(5)",
        _CCPA_105D + "to comply with the California Electronic Communications Privacy Act (Penal Code "
        "section 1546 and following).")),
    Refusal("ccpa-105-d-6", "research with informed consent", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(6)",
        _CCPA_105D + "to engage in public or peer-reviewed scientific, historical or statistical research that "
        "adheres to all other applicable ethics and privacy laws, where deletion is likely to render impossible "
        "or seriously impair that research and the consumer has given informed consent.")),
    Refusal("ccpa-105-d-7", "internal uses the consumer expects", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(7)",
        _CCPA_105D + "to enable solely internal uses that are reasonably aligned with the consumer's expectations "
        "based on their relationship with the business and compatible with the context in which the information "
        "was provided.")),
    Refusal("ccpa-105-d-8", "legal obligation", _ccpa(
        "Cal. Civ. Code § 1798.105(d)(8)",
        _CCPA_105D + "to comply with a legal obligation.")),
    # ------------------------------------------------ either regulation
    Refusal("manifestly-unfounded", "manifestly unfounded or excessive", _both(
        Basis("Art. 12(5) GDPR",
              "A request that is manifestly unfounded or excessive, in particular because of its repetitive "
              "character, may be refused."),
        Basis("Cal. Civ. Code § 1798.145(h)(3)",
              "A business may refuse to act on requests from a consumer that are manifestly unfounded or "
              "excessive, in particular because of their repetitive character."),
    )),
    Refusal("identity-not-verified", "identity not verified", _both(
        Basis("Art. 12(6) and Art. 11(2) GDPR",
              "We could not confirm the identity of the person making the request, or identify the data subject "
              "from the information given, so we cannot act on it. If additional information is provided that "
              "allows the identification, we will consider the request again."),
        Basis("11 CCR §§ 7022(a), 7062, 7063",
              "The identity of the requestor could not be verified to the degree the regulations require, or an "
              "authorised agent's authority could not be confirmed, so the request to delete is denied."),
    )),
    Refusal(OTHER, "other grounds, stated by the officer", _both(
        Basis("Art. 12(4) GDPR", "We are not acting on this request, for the reasons given."),
        Basis("Cal. Civ. Code § 1798.145(h)(2); 11 CCR § 7022(f)",
              "We are not acting on this request, for the reasons given."),
    )),
)

#: Every refusal code, in the order the officer's screens list them.
REFUSALS: Mapping[str, Refusal] = MappingProxyType({r.code: r for r in _TABLE})


def codes_for(regulation: str | None = None) -> tuple[Refusal, ...]:
    """The codes an officer may use for a request under ``regulation`` (all codes when None)."""
    return tuple(r for r in REFUSALS.values() if regulation is None or regulation in r.bases)


def refusal_for(code: str | None, regulation: str, *, reason: str | None = None) -> Refusal:
    """The refusal an officer's ``--code``/``--reason`` stands for, checked against the request's regulation.

    No code with a reason is ``other``; ``other`` needs a reason (it has no
    basis of its own to state); an unknown code or one of the other
    regulation is a UsageError naming the codes that fit.
    """
    has_reason = bool((reason or "").strip())
    if code is None:
        if not has_reason:
            raise UsageError("a refusal needs --code CODE or --reason TEXT (or both): the requester is told why; "
                             "`erasure requests codes` lists the codes")
        code = OTHER
    refusal = REFUSALS.get(code)
    fitting = ", ".join(r.code for r in codes_for(regulation))
    if refusal is None:
        near = difflib.get_close_matches(code, list(REFUSALS), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise UsageError(f"--code {code!r} is not a refusal code; {hint}for a {regulation.upper()} request use one of: "
                         f"{fitting}")
    if regulation not in refusal.bases:
        laws = " and ".join(r.upper() for r in refusal.regulations)
        raise UsageError(f"--code {code!r} ({refusal.citation(refusal.regulations[0])}) is a {laws} ground, but this "
                         f"request is made under the {regulation.upper()}; use one of: {fitting}")
    if code == OTHER and not has_reason:
        raise UsageError("--code other needs --reason TEXT: the requester is told the grounds in your words")
    return refusal


def letter_basis(codes: Iterable[str | None], regulation: str) -> str:
    """The basis paragraphs a letter gives for these codes (each once, in table order); unknown codes are skipped.

    ``other`` gives none: it stands for "the officer's reasons", which the
    letter states as they are, and its citation (Art. 12(4), the controller's
    duty to give reasons) is not one a processor's letter may cite to a business.
    """
    wanted = set(codes) - {OTHER}
    return "\n\n".join(r.letter_text(regulation) for r in REFUSALS.values()
                       if r.code in wanted and regulation in r.bases)
