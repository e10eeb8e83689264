"""Generated long-context tasks with known answers, for benchmarks.eval_real.

* S-NIAH (single needle in a haystack): one sentence "The special magic number for <key> is
  <7 digits>." hidden at a random depth in generated prose of a given length.
* OOLONG-style classify-and-count: thousands of customer messages, one per line, each written
  from templates of one of six categories that never name the category; the question asks how
  many messages fall in one category, so every line must be read and classified.

* Aggregation over records: sales records, one per line; the question asks for the total amount
  of one region, so every matching line must be found and its amount added up (code does it).
* Lookup in a dict: the context is a Python dict of generated keys to codes; the question asks
  for one key's code (code does it in one line; a model reading it must not confuse neighbours).

Scoring follows the benchmarks: a needle or a code is right when the answer contains it; a
count scores 0.75 ** |answer - truth| (1 when exact, fading with the error); a total is right
when the answer's first number is the total."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

_ADJ = ("quiet", "bright", "ancient", "narrow", "restless", "golden", "hollow", "patient", "distant", "crooked",
        "gentle", "bitter", "silver", "humble", "vivid", "frozen", "eager", "sudden", "weary", "careful")
_NOUN = ("river", "lantern", "harbor", "orchard", "engine", "library", "meadow", "compass", "garden", "mirror",
         "village", "signal", "bridge", "window", "forest", "market", "tower", "letter", "valley", "kettle")
_VERB = ("follows", "remembers", "shelters", "outlasts", "reflects", "divides", "carries", "ignores", "repairs",
         "measures", "answers", "gathers", "crosses", "guards", "resembles", "welcomes")
_ADV = ("slowly", "at dawn", "without hurry", "every winter", "in silence", "by accident", "once more",
        "for no reason", "after the rain", "before anyone noticed")

CATEGORIES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {item} this month, please fix the invoice.",
        "The payment for order {num} went through but the receipt shows the wrong amount.",
        "Why does my statement list a fee I never agreed to for the {item}?",
        "Can you refund the extra {num} dollars taken from my card?",
    ),
    "shipping": (
        "My package with the {item} has not arrived and tracking has been stuck for {num} days.",
        "The courier left the box at the wrong address, can you redirect the delivery?",
        "How long does delivery take to my town? The {item} was supposed to come last week.",
        "The parcel arrived crushed and the {item} inside is dented.",
    ),
    "technical": (
        "The {item} app crashes every time I open the settings page.",
        "After the update my {item} will not connect to wifi at all.",
        "I get error code {num} when I try to sync the {item}.",
        "The screen of the {item} flickers and then goes black after a few minutes.",
    ),
    "account": (
        "I cannot log in, the password reset email never arrives.",
        "Please change the email address on my profile, I lost access to the old one.",
        "My account got locked after {num} attempts and I do not know why.",
        "How do I turn on two-factor sign-in for my profile?",
    ),
    "praise": (
        "Just wanted to say the {item} is wonderful, thank you so much!",
        "Your support agent was incredibly kind and patient with me today.",
        "Best purchase I made this year, the {item} works beautifully.",
        "Thanks to the team, I love how easy the {item} is to use.",
    ),
    "cancellation": (
        "Please cancel my subscription before the next renewal.",
        "I want to end my plan, the {item} is no longer something I need.",
        "How do I close my membership? I will not be renewing after {num} months.",
        "Stop my recurring order for the {item}, I am leaving the service.",
    ),
}
_ITEMS = ("headphones", "thermostat", "blender", "smart watch", "router", "camera", "kettle", "tablet", "speaker")

#: What the fake model (benchmarks.fake_model) recognises each category by: words only that
#: category's templates use. A real model needs no such list.
CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "billing": ("charged", "payment", "statement", "refund"),
    "shipping": ("package", "courier", "delivery take", "parcel"),
    "technical": ("crashes", "connect to wifi", "error code", "flickers"),
    "account": ("log in", "email address", "locked", "two-factor"),
    "praise": ("wonderful", "kind and patient", "best purchase", "thanks to the team"),
    "cancellation": ("cancel", "end my plan", "close my membership", "recurring order"),
}

NEEDLE = "The special magic number for {key} is {number}."
NEEDLE_RE = re.compile(r"The special magic number for ([a-z]+-[a-z]+) is (\d+)\.")
NIAH_QUESTION = ("What is the special magic number for {key} mentioned in the provided text? "
                 "Answer with the number only.")
OOLONG_QUESTION = ("Each line of the input is a customer message (after 'Instance:'). Classify every message "
                   "into exactly one of these categories: {cats}. How many messages belong to the category "
                   "'{target}'? Answer with a single number.")
OOLONG_QUESTION_RE = re.compile(r"How many messages belong to the category '([a-z]+)'")
REGIONS = ("north", "south", "east", "west", "central")
RECORDS_QUESTION = ("Each line of the input is one sale: date, region, item and amount in dollars. What is the "
                    "total amount of all sales in the region '{region}'? Answer with a single number.")
LOOKUP_QUESTION = ("The input is a Python dict mapping keys to access codes. What is the access code stored "
                   "under the key '{key}'? Answer with the code only.")
#: The units of each kind's size, for names and tables.
UNITS = {"niah": "chars", "oolong": "records", "records": "records", "lookup": "keys"}


@dataclass
class Task:
    kind: str  # "niah" | "oolong" | "records" | "lookup"
    size: int  # characters (niah), records (oolong, records) or keys (lookup)
    seed: int
    context: Any  # a str, except for lookup (a dict)
    question: str
    gold: str

    @property
    def name(self) -> str:
        return f"{self.kind} {self.size:,} {UNITS[self.kind]} #{self.seed}"

    @property
    def text(self) -> str:
        """The context as one text, for a model that reads it directly."""
        return self.context if isinstance(self.context, str) else repr(self.context)

    def score(self, answer: str) -> float:
        return score(self.kind, answer, self.gold)


def score(kind: str, answer: str, gold: str) -> float:
    if kind == "lookup":
        return 1.0 if gold.lower() in (answer or "").lower() else 0.0
    numbers = re.findall(r"\d+", (answer or "").replace(",", ""))
    if kind == "niah":
        return 1.0 if gold in numbers else 0.0
    if kind == "records":
        return 1.0 if numbers and numbers[0] == gold else 0.0
    if not numbers:
        return 0.0
    return 0.75 ** abs(int(numbers[0]) - int(gold))


def _sentence(rng: random.Random) -> str:
    return (f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_VERB)} the {rng.choice(_ADJ)} "
            f"{rng.choice(_NOUN)} {rng.choice(_ADV)}.")


def niah(n_chars: int, seed: int = 0) -> Task:
    """About `n_chars` of prose with one needle at a random depth."""
    rng = random.Random(f"niah-{n_chars}-{seed}")
    key = f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}"
    number = str(rng.randrange(1_000_000, 10_000_000))
    needle = NEEDLE.format(key=key, number=number)
    sentences: list[str] = []
    size = 0
    while size < n_chars - len(needle):
        s = _sentence(rng)
        sentences.append(s)
        size += len(s) + 1
    sentences.insert(rng.randrange(len(sentences) + 1), needle)
    return Task("niah", n_chars, seed, " ".join(sentences), NIAH_QUESTION.format(key=key), number)


def oolong(n_records: int, seed: int = 0) -> Task:
    """`n_records` dated customer messages; the question asks for one category's count."""
    rng = random.Random(f"oolong-{n_records}-{seed}")
    cats = list(CATEGORIES)
    lines, counts = [], dict.fromkeys(cats, 0)
    for _ in range(n_records):
        cat = rng.choice(cats)
        counts[cat] += 1
        text = rng.choice(CATEGORIES[cat]).format(item=rng.choice(_ITEMS), num=rng.randrange(2, 90))
        date = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        lines.append(f"Date: {date} || User: {rng.randrange(10_000, 99_999)} || Instance: {text}")
    target = rng.choice(cats)
    question = OOLONG_QUESTION.format(cats=", ".join(cats), target=target)
    return Task("oolong", n_records, seed, "\n".join(lines), question, str(counts[target]))


def records(n_records: int, seed: int = 0) -> Task:
    """`n_records` sales lines; the question asks for the total amount of one region."""
    rng = random.Random(f"records-{n_records}-{seed}")
    lines, totals = [], dict.fromkeys(REGIONS, 0)
    for _ in range(n_records):
        region, amount = rng.choice(REGIONS), rng.randrange(5, 500)
        totals[region] += amount
        date = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        lines.append(f"{date} | region: {region} | item: {rng.choice(_ITEMS)} | amount: {amount}")
    region = rng.choice(REGIONS)
    return Task("records", n_records, seed, "\n".join(lines), RECORDS_QUESTION.format(region=region),
                str(totals[region]))


def lookup(n_keys: int, seed: int = 0) -> Task:
    """A dict of `n_keys` generated keys (adjective-noun-number) to codes; the question asks for one."""
    rng = random.Random(f"lookup-{n_keys}-{seed}")
    table: dict[str, str] = {}
    while len(table) < n_keys:
        key = f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}-{rng.randrange(10, 100)}"
        table[key] = f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randrange(100, 1000)}-{rng.randrange(1000, 10000)}"
    key = rng.choice(list(table))
    return Task("lookup", n_keys, seed, table, LOOKUP_QUESTION.format(key=key), table[key])


MAKERS = {"niah": niah, "oolong": oolong, "records": records, "lookup": lookup}


def make(kind: str, size: int, seed: int) -> Task:
    return MAKERS[kind](size, seed)


def classify(message: str) -> str | None:
    """The category whose cue words appear in `message` (what the fake model does)."""
    low = message.lower()
    for cat, cues in CATEGORY_CUES.items():
        if any(cue in low for cue in cues):
            return cat
    return None
