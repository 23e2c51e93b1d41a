"""The instruments of cooperation a directory entry may say are in force (issue 19).

Theory of operation
-------------------
A member's ``directory_entry`` (``ledger/directory.py``) lists the instruments
in force for it by id. Multilateral instruments have a plain id
(``budapest``); a bilateral one names its partner after a colon
(``bilateral_mlat:TH``: the MLA treaty with Thailand). An instrument is in
force between states A and B when both entries list it: a multilateral id in
both, a bilateral id as ``<kind>:B`` in A's entry and ``<kind>:A`` in B's
(``in_force_between``). docs/ACTS.md §21 lists the vocabulary with its sources.

An act's ``legal_basis.instrument`` stays free text (acts written before the
directory keep their wording), so ``resolve`` maps it to an id: the id itself,
an official title or a common alias ("Budapest Convention", "CETS 224"),
matched after case folding and with punctuation and repeated spaces removed,
and also when the alias is followed by an article ("Budapest Convention Art
29"). A bilateral alias ("MLAT") resolves to the pair's bilateral id. The act
field ``basis`` of a preservation or direct provider request names its
instrument too (``BASIS_INSTRUMENTS``).

Pure data and pure functions: no I/O, nothing from the chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Instrument:
    id: str
    title: str  # the official title
    source: str  # where the title and the instrument's articles are read
    aliases: tuple[str, ...] = ()
    bilateral: bool = False  # the id takes a partner: ``<id>:<state>``


INSTRUMENTS: Final[tuple[Instrument, ...]] = (
    Instrument(
        "budapest",
        "Convention on Cybercrime (ETS No. 185)",
        "https://www.coe.int/en/web/conventions/full-list?module=treaty-detail&treatynum=185",
        ("Budapest Convention", "Convention on Cybercrime", "ETS 185", "ETS No 185", "CETS 185"),
    ),
    Instrument(
        "budapest_sap",
        "Second Additional Protocol to the Convention on Cybercrime on enhanced co-operation "
        "and disclosure of electronic evidence (CETS No. 224)",
        "https://www.coe.int/en/web/conventions/full-list?module=treaty-detail&treatynum=224",
        (
            "Second Additional Protocol",
            "Second Additional Protocol to the Budapest Convention",
            "Second Additional Protocol to the Convention on Cybercrime",
            "SAP",
            "Budapest SAP",
            "CETS 224",
            "CETS No 224",
        ),
    ),
    Instrument(
        "un_cybercrime_2024",
        "United Nations Convention against Cybercrime; Strengthening International "
        "Cooperation for Combating Certain Crimes Committed by Means of Information and "
        "Communications Technology Systems and for the Sharing of Evidence in Electronic Form "
        "of Serious Crimes (General Assembly resolution 79/243, 2024)",
        "https://docs.un.org/en/A/RES/79/243",
        (
            "UN Convention against Cybercrime",
            "United Nations Convention against Cybercrime",
            "UN Cybercrime Convention",
            "Hanoi Convention",
            "A/RES/79/243",
        ),
    ),
    Instrument(
        "untoc",
        "United Nations Convention against Transnational Organized Crime (2000)",
        "https://treaties.un.org/Pages/ViewDetails.aspx?src=TREATY&mtdsg_no=XVIII-12&chapter=18",
        ("UNTOC", "Palermo Convention", "UN Convention against Transnational Organized Crime"),
    ),
    Instrument(
        "ecmla_1959",
        "European Convention on Mutual Assistance in Criminal Matters (ETS No. 30)",
        "https://www.coe.int/en/web/conventions/full-list?module=treaty-detail&treatynum=030",
        ("European Convention on Mutual Assistance in Criminal Matters", "ETS 30", "ETS No 30"),
    ),
    Instrument(
        "eu_eio",
        "Directive 2014/41/EU of 3 April 2014 regarding the European Investigation Order in "
        "criminal matters",
        "https://eur-lex.europa.eu/eli/dir/2014/41/oj",
        ("Directive 2014/41/EU", "EIO Directive", "European Investigation Order", "EIO"),
    ),
    Instrument(
        "eu_epoc",
        "Regulation (EU) 2023/1543 of 12 July 2023 on European Production Orders and European "
        "Preservation Orders for electronic evidence in criminal proceedings",
        "https://eur-lex.europa.eu/eli/reg/2023/1543/oj",
        (
            "Regulation (EU) 2023/1543",
            "Regulation 2023/1543",
            "e-Evidence Regulation",
            "EPOC",
            "EPOC-PR",
        ),
    ),
    Instrument(
        "eu_mla_2000",
        "Convention on Mutual Assistance in Criminal Matters between the Member States of the "
        "European Union (2000)",
        "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:42000A0712(01)",
        ("EU MLA Convention", "2000 EU MLA Convention", "EU Mutual Assistance Convention"),
    ),
    Instrument(
        "bilateral_mlat",
        "bilateral treaty on mutual legal assistance in criminal matters",
        "the treaty between the two states (its title in the entry's instrument note)",
        ("MLAT", "bilateral MLAT", "Mutual Legal Assistance Treaty", "bilateral treaty"),
        bilateral=True,
    ),
    Instrument(
        "cloud_act",
        "executive agreement on access to electronic data under the US CLOUD Act (18 U.S.C. 2523)",
        "https://www.law.cornell.edu/uscode/text/18/2523",
        ("CLOUD Act agreement", "CLOUD Act", "executive agreement"),
        bilateral=True,
    ),
)
BY_ID: Final = {i.id: i for i in INSTRUMENTS}
#: Instruments in one entry, at most (TigerStyle: a limit on everything).
INSTRUMENTS_PER_ENTRY_MAX: Final = 64
_STATE = r"[A-Z]{2}"
INSTRUMENT_ID_PATTERN: Final = (
    r"^(" + "|".join(i.id for i in INSTRUMENTS if not i.bilateral) + r")$"
    r"|^(" + "|".join(i.id for i in INSTRUMENTS if i.bilateral) + r"):" + _STATE + r"$"
)
_ID = re.compile(INSTRUMENT_ID_PATTERN)

#: What the ``basis`` field of an act names (``ledger/acts.py``), by its value.
BASIS_INSTRUMENTS: Final[dict[str, str]] = {
    "budapest_16": "budapest",
    "budapest_29": "budapest",
    "budapest_18_1_b": "budapest",
    "sap_6": "budapest_sap",
    "sap_7": "budapest_sap",
    "eu_regulation": "eu_epoc",
    "cloud_agreement": "cloud_act",
}


def is_instrument_id(text: object) -> bool:
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def kind_of(instrument_id: str) -> str:
    """``bilateral_mlat:TH`` -> ``bilateral_mlat``; a multilateral id is its own kind."""
    return instrument_id.partition(":")[0]


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w/]+", " ", text.casefold()).split())


#: Normalised alias -> instrument kind, longest first (so "Second Additional Protocol
#: to the Budapest Convention" wins over "Budapest Convention"). Ids match exactly only.
_ALIASES: Final = sorted(
    ((_normal(alias), i.id) for i in INSTRUMENTS for alias in (i.title, *i.aliases)),
    key=lambda pair: -len(pair[0]),
)


def resolve_kind(text: str) -> str | None:
    """The instrument kind free text names, or None (see the module docstring)."""
    if is_instrument_id(text):
        return kind_of(text)
    normal = _normal(text)
    for alias, kind in _ALIASES:
        if normal == alias or normal.startswith(alias + " "):
            return kind
    return None


def resolve(text: str, actor: str, other: str) -> str | None:
    """The instrument id, as ``actor``'s entry would list it, that ``text`` names for
    an act between ``actor`` and ``other``; None if it names none of the vocabulary."""
    if is_instrument_id(text) and ":" in text:
        return text
    kind = resolve_kind(text)
    if kind is None:
        return None
    return f"{kind}:{other}" if BY_ID[kind].bilateral else kind


def in_force_between(
    a: str, a_instruments: Iterable[str], b: str, b_instruments: Iterable[str]
) -> frozenset[str]:
    """The instruments in force between ``a`` and ``b``, as ``a``'s entry lists them."""
    theirs = frozenset(b_instruments)
    out: set[str] = set()
    for instrument in a_instruments:
        kind, _, partner = instrument.partition(":")
        if (not partner and instrument in theirs) or (partner == b and f"{kind}:{a}" in theirs):
            out.add(instrument)
    return frozenset(out)
