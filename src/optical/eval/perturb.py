"""Test-time query noise: seeded character-level typos.

Each character of a query is, with probability ``rate``, hit by one of the
four edit operations of Damerau (1964) -- deletion, insertion of a
neighbouring letter of the same query, substitution by such a letter, or
transposition with the next character -- the usual model of typing errors
(used e.g. by Sakaguchi et al., "Robsut Wrod Reocginiton", AAAI 2017, to
stress-test models). Letters come from the query itself, so the noise stays in
the query's script. Spaces are left alone so words stay words.
"""

from __future__ import annotations

import random

from optical.errors import OpticalError

OPERATIONS = ("delete", "insert", "substitute", "transpose")


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each non-space character edited with probability ``rate``."""
    if not 0.0 <= rate <= 1.0:
        raise OpticalError(f"typo rate must be in [0, 1], got {rate}")
    letters = [c for c in text if not c.isspace()]
    if rate == 0.0 or not letters:
        return text
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        char = chars[i]
        if char.isspace() or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        operation = rng.choice(OPERATIONS)
        if operation == "delete":
            pass
        elif operation == "insert":
            out.extend([char, rng.choice(letters)])
        elif operation == "substitute":
            out.append(rng.choice(letters))
        elif i + 1 < len(chars) and not chars[i + 1].isspace():
            out.extend([chars[i + 1], char])
            i += 1
        else:
            out.append(char)
        i += 1
    return "".join(out)


def perturb_queries(queries: dict[str, str], rate: float, seed: int) -> dict[str, str]:
    """Typos in every query; the same seed and rate give the same noisy queries."""
    rng = random.Random(seed)
    return {qid: add_typos(text, rate, rng) for qid, text in queries.items()}
