"""Demo customers for trying the bot without a real registry export.

The people and companies are invented. Their codici fiscali follow the real construction rules (surname and
name consonants, birth date and sex, a real municipality code, the check character), and the partita IVA
has a valid check digit, so they pass ``rules.tax_code.validate`` like real ones.
"""

from __future__ import annotations

from storage.registry import CustomerRegistry
from unogas_bot.domain import CustomerRecord

DEMO_CUSTOMERS: tuple[CustomerRecord, ...] = (
    # Born 12 Mar 1975 in Rome (H501).
    CustomerRecord("UG-100234", "person", "Mario", "Rossi", None, "RSSMRA75C12H501H"),
    # A woman: day of birth + 40 (24 Jul 1988, Milan F205).
    CustomerRecord("UG-100235", "person", "Giulia", "Bianchi", None, "BNCGLI88L64F205B"),
    # Accent and apostrophe: the code only uses the letters N-C-L and D-N-G (5 Nov 1969, Naples F839).
    CustomerRecord("UG-100236", "person", "Nicolò", "D'Angelo", None, "DNGNCL69S05F839F"),
    # Another woman (11 May 1992, Bologna A944).
    CustomerRecord("UG-100237", "person", "Chiara", "Lombardo", None, "LMBCHR92E51A944T"),
    # A company with a partita IVA (tax office 058, Rome).
    CustomerRecord("UG-200101", "business", None, None, "Idrotermica Ferraro S.r.l.", "02847390586"),
    # A sole trader: a business identified by the owner's codice fiscale (30 Jan 1980, Turin L219).
    CustomerRecord("UG-200102", "business", None, None, "Bar Sport di Luca Esposito", "SPSLCU80A30L219H"),
)


async def load_demo(registry: CustomerRegistry) -> list[CustomerRecord]:
    """Put the demo customers into the registry (idempotent) and return them."""
    await registry.upsert_many(DEMO_CUSTOMERS)
    return list(DEMO_CUSTOMERS)
