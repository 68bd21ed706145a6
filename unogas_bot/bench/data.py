"""Synthetic customers for the benchmark: valid codici fiscali and partite IVA, unique customer codes.

Everything is derived from a seeded random generator, so two runs use the same data. Building a valid
codice fiscale costs a checksum, so a few thousand identities are built once and reused; only the customer
code (the registry's key) has to be unique per row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from stdnum import luhn
from stdnum.it import codicefiscale

from unogas_bot.domain import CustomerRecord

FIRST_NAMES = (
    "Mario", "Giulia", "Luca", "Francesca", "Marco", "Chiara", "Andrea", "Sara", "Matteo", "Elena",
    "Davide", "Valentina", "Simone", "Martina", "Federico", "Alessia", "Riccardo", "Giorgia", "Stefano",
    "Paola", "Antonio", "Laura", "Giovanni", "Silvia", "Roberto", "Anna", "Paolo", "Marta", "Nicolò",
    "Beatrice",
)  # fmt: skip
LAST_NAMES = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
    "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti",
    "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso", "Ferrara", "Galli", "Martini",
    "D'Angelo",
)  # fmt: skip
COMPANY_WORDS = (
    "Idrotermica", "Panificio", "Officina", "Studio", "Trattoria", "Ferramenta", "Autofficina", "Edilizia",
    "Farmacia", "Tipografia",
)  # fmt: skip
MUNICIPALITIES = ("H501", "F205", "F839", "A944", "L219", "G273", "D612", "L736", "C351", "A662")
MONTHS = "ABCDEHLMPRST"
VAT_OFFICES = ("058", "015", "001", "037", "063", "048", "082", "097")

CSV_POOL = 4000  # identities reused across a CSV (a codice fiscale costs a checksum to build)
CSV_HEADER = "customer_code,kind,first_name,last_name,company_name,tax_code\n"

# What every simulated customer types after the identity (accepted by the validation rules).
PASSWORD = "Girasoli sul balcone 77"
QUESTION = "Come si chiamava il mio primo gatto?"
ANSWER = "Briciola Bianca"


def _letters(name: str, *, first_name: bool) -> str:
    """The three letters a codice fiscale takes from a name (consonants first, then vowels, then X)."""
    letters = [ch for ch in name.upper() if "A" <= ch <= "Z"]
    consonants = [ch for ch in letters if ch not in "AEIOU"]
    vowels = [ch for ch in letters if ch in "AEIOU"]
    if first_name and len(consonants) >= 4:  # the rule for first names skips the second consonant
        consonants = [consonants[0], *consonants[2:]]
    return "".join(consonants + vowels + ["X", "X", "X"])[:3]


def tax_code_for(first: str, last: str, rng: random.Random) -> str:
    """A codice fiscale built by the official rules from the names and a random birth date and place."""
    female = rng.random() < 0.5
    day = rng.randint(1, 28) + (40 if female else 0)
    body = (
        _letters(last, first_name=False)
        + _letters(first, first_name=True)
        + f"{rng.randint(0, 99):02d}"
        + rng.choice(MONTHS)
        + f"{day:02d}"
        + rng.choice(MUNICIPALITIES)
    )
    return body + codicefiscale.calc_check_digit(body)


def vat_number(rng: random.Random) -> str:
    """A partita IVA with a valid check digit."""
    body = f"{rng.randint(1, 9_999_999):07d}" + rng.choice(VAT_OFFICES)
    return body + luhn.calc_check_digit(body)  # the partita IVA's check digit is Luhn's


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a synthetic customer is, without the customer code."""

    kind: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    tax_code: str


def identities(count: int, *, seed: int = 5, business_share: float = 0.1) -> list[Identity]:
    """`count` distinct identities (persons and, at `business_share`, businesses)."""
    rng = random.Random(seed)
    out: list[Identity] = []
    for _ in range(count):
        if rng.random() < business_share:
            company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(LAST_NAMES)} S.r.l."
            out.append(Identity("business", None, None, company, vat_number(rng)))
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            out.append(Identity("person", first, last, None, tax_code_for(first, last, rng)))
    return out


def customer_code(index: int) -> str:
    return f"UG-{index:07d}"


def person_records(count: int, *, start: int = 0, seed: int = 7) -> list[CustomerRecord]:
    """`count` persons (registrations in the benchmark answer "Persona")."""
    people = identities(count, seed=seed, business_share=0.0)
    return [
        CustomerRecord(customer_code(start + i), p.kind, p.first_name, p.last_name, None, p.tax_code)
        for i, p in enumerate(people)
    ]


def write_csv(path: Path, rows: int, *, start: int = 0, pool: int = CSV_POOL) -> Path:
    """Write a valid customer CSV of `rows` rows quickly: the row texts are precomputed per identity."""
    people = identities(min(pool, rows) or 1)
    tails = [
        f'{p.kind},{p.first_name or ""},{p.last_name or ""},"{p.company_name or ""}",{p.tax_code}\n'
        if p.company_name
        else f"{p.kind},{p.first_name},{p.last_name},,{p.tax_code}\n"
        for p in people
    ]
    size = len(tails)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(CSV_HEADER)
        chunk: list[str] = []
        for i in range(rows):
            chunk.append(f"UG-{start + i:07d},{tails[i % size]}")
            if len(chunk) == 10_000:
                out.writelines(chunk)
                chunk.clear()
        out.writelines(chunk)
    return path
