"""Generate data/meridian_logbook.txt, the quickstart's sample corpus (about 300 KB, made up).

A year of daily entries from the logbook of a fictional research vessel: position, weather,
watch notes, science work and crew matters, written from templates with a fixed seed so the file
is the same on every machine. A handful of one-off incidents are spread through the year; they are
what a question about the voyage has to dig out, the rest is realistic noise.

    python example_notebooks/make_corpus.py      # rewrites example_notebooks/data/meridian_logbook.txt
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

SEED = 1907
OUT = Path(__file__).parent / "data" / "meridian_logbook.txt"

CREW = ["Captain Ines Okafor", "First Mate Tomas Lindqvist", "Chief Engineer Ana Ruiz", "Dr. Hana Mori",
        "Dr. Samuel Achterberg", "Bosun Kwame Mensah", "Cook Lotte Brandt", "Deckhand Rafael Soto",
        "Radio Officer Mei Chen", "Second Engineer Piet de Vries"]
SCIENTISTS = ["Dr. Hana Mori", "Dr. Samuel Achterberg"]
#: Port calls (first three days of these months) and their positions.
PORTS = {1: ("Lisbon", 38.70, -9.15), 3: ("Praia", 14.92, -23.51), 5: ("Recife", -8.06, -34.87),
         7: ("Montevideo", -34.91, -56.20), 9: ("Cape Town", -33.91, 18.42), 11: ("Walvis Bay", -22.95, 14.50)}
#: Where the ship is in the middle of each month (latitude, longitude; west and south negative).
TRACK = [(33.0, -14.0), (24.0, -20.0), (13.0, -25.0), (2.0, -29.0), (-9.0, -33.0), (-22.0, -40.0),
         (-33.0, -50.0), (-36.0, -30.0), (-34.0, 5.0), (-28.0, 10.0), (-21.0, 11.0), (-10.0, 4.0)]
REGIONS = ["the Canary Current", "the Cape Verde shelf", "the equatorial Atlantic", "the Brazil Current",
           "the Rio Grande Rise", "the Walvis Ridge", "the Benguela upwelling", "the Angola Basin"]
SKY = ["clear sky", "scattered cumulus", "high cirrus", "overcast", "low stratus", "squalls on the horizon",
       "light haze", "broken cloud"]
SEA = ["slight sea", "moderate sea", "long swell from the southwest", "short chop", "calm water",
       "rough sea", "confused swell"]
WIND = ["N", "NNE", "NE", "E", "SE", "S", "SW", "W", "NW"]
WATCH = [
    "Morning watch uneventful; {who} logged two cargo ships passing well to port.",
    "Night watch reported bioluminescence along the hull for most of an hour.",
    "{who} rigged additional lashings on the after deck ahead of the expected swell.",
    "A pod of common dolphins rode the bow wave for twenty minutes during the forenoon.",
    "Routine fire drill held at 1030; all hands mustered in under four minutes.",
    "{who} greased the winch drums and replaced a frayed messenger line.",
    "Visibility dropped to two miles in rain; fog signal sounded for forty minutes.",
    "Shearwaters and a single albatross following the ship through the afternoon.",
    "Deck washed down and paintwork touched up on the port rail by {who}.",
    "Lifeboat davits inspected and found in good order.",
]
SCIENCE = [
    "{sci} ran a CTD cast to {depth} m; surface temperature {temp:.1f} C, salinity {sal:.2f}.",
    "{sci} deployed the plankton net twice; samples fixed and labelled {label}.",
    "Water samples from {depth} m filtered for chlorophyll by {sci}.",
    "{sci} recovered the drifting sediment trap; the cups were full and intact.",
    "Echo sounder showed a strong scattering layer at {depth} m after dusk, noted by {sci}.",
    "{sci} spent the day on sample inventory; no station work.",
]
ROUTINE = [
    "Machinery spaces report normal temperatures and pressures.",
    "Fresh water maker produced {water} litres.",
    "Fuel remaining estimated at {fuel} tonnes.",
    "Galley served {meal}; {cook} reports stores in good order.",
    "Radio schedule kept with the institute at 1800; nothing to report.",
    "Generators changed over at noon as per the maintenance plan.",
]
MEALS = ["fish stew", "lentil soup and fresh bread", "rice with black beans", "roast chicken",
         "pasta with tomato sauce", "curried vegetables", "pancakes for the morning watch"]

#: One-off incidents: day of year -> entry text. These carry the facts a question can ask about.
INCIDENTS = {
    38: ("At 0340 the port main engine lost oil pressure and was shut down. Chief Engineer Ana Ruiz traced "
         "the fault to a cracked oil cooler and fitted the spare; the engine was back in service by 1100."),
    97: ("Radio Officer Mei Chen received a distress call from the fishing vessel Santa Luzia, drifting "
         "without power 14 miles to the east. Meridian stood by for six hours until a tug arrived from Praia."),
    151: ("Dr. Hana Mori reported that the deep CTD cast at station 42 recorded a temperature inversion at "
          "1,850 m, the first seen on this cruise; the profile was repeated twice to confirm it."),
    188: ("The starboard main engine failed at 1415 with a seized fuel injection pump. Chief Engineer Ana Ruiz "
          "and Second Engineer Piet de Vries rebuilt the pump overnight from parts of the spare, and the "
          "starboard engine was running again at 0620 the next morning."),
    233: ("Deckhand Rafael Soto fractured his wrist when the A-frame block swung free during recovery of the "
          "mooring. Captain Ines Okafor arranged a medical consultation by radio; the wrist was splinted and "
          "he was landed at Cape Town for treatment."),
    290: ("The ship crossed the Greenwich meridian and the equator within the same watch; the crew held the "
          "customary ceremony, with Bosun Kwame Mensah presiding as King Neptune."),
    341: ("Dr. Samuel Achterberg recovered the long-term mooring deployed in March; all eleven current meters "
          "were intact and nine of them had recorded for the full period."),
}


def position(rng: random.Random, day: dt.date) -> tuple[float, float, str | None]:
    """Noon position: in port on the first days of a port month, else along the track."""
    if day.month in PORTS and day.day <= 3:
        name, lat, lon = PORTS[day.month]
        return lat, lon, name
    a = TRACK[day.month - 1]
    b = TRACK[day.month % 12]
    f = day.day / 31
    lat = a[0] + (b[0] - a[0]) * f + rng.uniform(-0.4, 0.4)
    lon = a[1] + (b[1] - a[1]) * f + rng.uniform(-0.4, 0.4)
    return lat, lon, None


def entry(rng: random.Random, day: dt.date, number: int) -> str:
    lat, lon, port = position(rng, day)
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    region = REGIONS[min(len(REGIONS) - 1, (day.timetuple().tm_yday - 1) * len(REGIONS) // 365)]
    where = f"alongside in {port}" if port else f"at sea in {region}"
    lines = [
        f"=== {day:%A %d %B %Y} (day {number}) ===",
        f"Position at noon {abs(lat):.2f} {ns}, {abs(lon):.2f} {ew}; {where}.",
        f"Weather: {rng.choice(SKY)}, wind {rng.choice(WIND)} force {rng.randint(1, 7)}, {rng.choice(SEA)}, "
        f"barometer {rng.randint(1002, 1028)} hPa, air {rng.uniform(14, 31):.1f} C.",
    ]
    notes = [w.format(who=rng.choice(CREW)) for w in rng.sample(WATCH, rng.randint(2, 4))]
    if not port:
        for template in rng.sample(SCIENCE, rng.randint(1, 2)):
            notes.append(template.format(
                sci=rng.choice(SCIENTISTS), depth=rng.choice([50, 200, 500, 1000, 2000, 3500]),
                temp=rng.uniform(3, 27), sal=rng.uniform(34.2, 36.9),
                label=f"M{number:03d}-{rng.randint(1, 9)}"))
    for template in rng.sample(ROUTINE, rng.randint(2, 4)):
        notes.append(template.format(
            water=rng.randint(2200, 4800), fuel=rng.randint(90, 310), meal=rng.choice(MEALS),
            cook="Cook Lotte Brandt"))
    if number in INCIDENTS:
        notes.insert(rng.randint(0, len(notes)), INCIDENTS[number])
    rng.shuffle(notes)
    lines += notes
    lines.append(f"Signed: {rng.choice(['Captain Ines Okafor', 'First Mate Tomas Lindqvist'])}.")
    return "\n".join(lines)


def build() -> str:
    rng = random.Random(SEED)
    start = dt.date(2025, 1, 1)
    header = ("LOGBOOK OF THE RESEARCH VESSEL MERIDIAN\nCruise M-25: a year in the South and Central Atlantic\n"
              "(A made-up logbook, generated for the rlm-kernel quickstart.)\n")
    days = [entry(rng, start + dt.timedelta(days=i), i + 1) for i in range(365)]
    return header + "\n\n" + "\n\n".join(days) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = build()
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text):,} characters)")
