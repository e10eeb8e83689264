"""The Redactor on its own: what counts as a secret, what must survive, and where it looks.

Every key here is built at run time (random, or from pieces) so no source line holds one."""

from __future__ import annotations

import base64
import hashlib
import random
import string
import struct
import uuid
import zlib

import pytest

from rlm_kernel.engine.redaction import MARK, PIECE, Redactor, credential_values, looks_like_credential

RNG = random.Random(9)
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choices(alphabet, k=n))


ANTHROPIC = "sk-" + "ant-api03-" + rand(93, ALNUM + "-_") + "AA"
TOKEN = rand(40)  # a credential with no recognisable shape: only its value (and pieces) can find it


def png_base64(size: int = 64) -> str:
    """A real PNG of random pixels, base64-encoded as notebooks store it (random bytes are the
    hardest case: every character of the base64 alphabet appears in every mix)."""
    raw = b"".join(b"\x00" + RNG.randbytes(size * 3) for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


# --- key formats ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (f"key={ANTHROPIC} end", f"key={MARK} end"),
    ("OPENAI " + "sk-" + "proj-" + rand(40, ALNUM + "_-") + ".", f"OPENAI {MARK}."),
    ("old style " + "sk-" + rand(48), f"old style {MARK}"),
    ("gh " + "ghp_" + rand(36), f"gh {MARK}"),
    ("oauth " + "gho_" + rand(36), f"oauth {MARK}"),
    ("pat " + "github_pat_" + rand(22) + "_" + rand(59), f"pat {MARK}"),
    ("aws " + "AKIA" + rand(16, string.ascii_uppercase + string.digits) + ",", f"aws {MARK},"),
    ("sts " + "ASIA" + rand(16, string.ascii_uppercase + string.digits), f"sts {MARK}"),
    ("hf " + "hf_" + rand(34), f"hf {MARK}"),
    ("slack " + "xoxb-" + rand(12, string.digits) + "-" + rand(24), f"slack {MARK}"),
    ("google " + "AIza" + rand(35), f"google {MARK}"),
    ("jwt " + "eyJ" + rand(20) + ".eyJ" + rand(30) + "." + rand(43), f"jwt {MARK}"),
    ("-----BEGIN RSA PRIVATE KEY-----\n" + rand(64) + "\n" + rand(64) + "\n-----END RSA PRIVATE KEY-----\nafter",
     f"{MARK}\nafter"),
    ("Authorization: Bearer abc.DEF-123_xyz~=", f"Authorization: Bearer {MARK}"),
    ("{'authorization': 'bearer ZZZZZZZZZZ'}", f"{{'authorization': 'bearer {MARK}'}}"),
    ("Authorization: Basic " + base64.b64encode(b"user:hunter2").decode(), f"Authorization: Basic {MARK}"),
    ("curl -H 'Basic " + base64.b64encode(b"me:pw").decode() + "'", f"curl -H 'Basic {MARK}'"),
])
def test_key_formats_are_redacted(text, expected):
    assert Redactor(env={}).text(text) == expected


ORDINARY = [
    "def total(xs: list[int]) -> int:\n    return sum(x * 2 for x in xs if x > 0)  # task-manager, disk-usage\n",
    "import os\nprint(os.environ.get('HOME'), sorted(os.environ)[:3])\n",
    hashlib.sha256(b"a").hexdigest() + " " + hashlib.sha1(b"b").hexdigest() + " " + hashlib.md5(b"c").hexdigest(),
    "commit 3f786850e387550fdab836ed7e6dc881de23001b\nMerge: 89e6c98 a2b4c6d",
    " ".join(str(uuid.UUID(int=RNG.getrandbits(128))) for _ in range(20)),
    png_base64(),
    "a Bearer of bad news; Basic Understanding; Bearer bonds",
    "sk-short, risk-assessment-document-final-v2, whisk-it-quickly-until-fluffy-and-done",
    "AKIAsmall, ASIA-Pacific region, hf_model_name, xoxo-gossip",
    "naïve café ünïcödé — 東京 " * 20,
]


@pytest.mark.parametrize("text", ORDINARY, ids=["code", "environ-code", "hashes", "git", "uuids", "png-base64",
                                                "header-words", "sk-words", "prefix-words", "unicode"])
def test_ordinary_text_is_left_alone(text):
    r = Redactor([ANTHROPIC, TOKEN], env={})
    assert r.text(text) == text and r.count == 0


# --- known secrets: exact values and their pieces ---------------------------------------------------

def test_a_secret_is_found_whole_in_halves_and_in_any_long_piece():
    r = Redactor(env={"MY_SERVICE_TOKEN": TOKEN})
    half = len(TOKEN) // 2
    assert r.text(f"t={TOKEN}.") == f"t={MARK}."
    assert r.text(f"{TOKEN[:half]}\n{TOKEN[half:]}\n") == f"{MARK}\n{MARK}\n"
    assert r.text(f"[{TOKEN[7:7 + PIECE]}]") == f"[{MARK}]"  # any 12 characters from the middle
    # Below the piece length a fragment is ordinary text: 11 characters of a random key are not a key.
    assert r.text(f"[{TOKEN[7:7 + PIECE - 1]}]") == f"[{TOKEN[7:7 + PIECE - 1]}]"
    assert TOKEN[-5:] not in r.text(f"{TOKEN}{TOKEN[:3]}")  # a secret runs into more of itself: all of it goes


def test_secrets_next_to_non_ascii_text_are_cut_exactly():
    r = Redactor([TOKEN], env={})
    assert r.text(f"東京😀{TOKEN}é") == f"東京😀{MARK}é"


def test_overlapping_and_repeated_secrets_are_counted_as_spans():
    inner = TOKEN[5:30]
    r = Redactor([TOKEN, inner], env={})
    assert r.text(f"{TOKEN} {inner} {TOKEN}") == f"{MARK} {MARK} {MARK}"
    assert r.count == 3


def test_the_configured_key_counts_even_when_short():
    assert Redactor(["k3y!"], env={}).text("key is k3y!") == f"key is {MARK}"


# --- which environment variables hold secrets -------------------------------------------------------

def test_credential_variables_are_chosen_by_name_and_by_value():
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC, "my_service_token": TOKEN, "DB_PASSWORD": "Pa55-word-9",
        "AWS_SECRET_ACCESS_KEY": rand(40), "GCP_CREDENTIALS_JSON": '{"k": "' + rand(20) + '"}',
        "HOME": "/root", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "USER_NAME": TOKEN[::-1],  # names: not secrets
        "SHORT_TOKEN": "abc123", "DEBUG_KEY": "true", "KEY_COUNT": "12345678", "PIP_KEYRING_PROVIDER": "subprocess",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/creds.json", "TOKEN_URL": "https://auth.example.com/token",
        "SECRET_URL": "https://user:Sup3r-S3cret@db.example.com/x",
    }
    values = set(credential_values(env))
    assert values >= {ANTHROPIC, TOKEN, "Pa55-word-9", env["AWS_SECRET_ACCESS_KEY"], env["GCP_CREDENTIALS_JSON"],
                      "Sup3r-S3cret"}
    assert TOKEN[::-1] not in values and "/usr/bin:/bin" not in values and "subprocess" not in values
    assert not {"abc123", "true", "12345678", "/home/me/creds.json", "https://auth.example.com/token"} & values
    assert looks_like_credential("X_PASSPHRASE", "correct horse 42")
    assert looks_like_credential("WIFI_PASSWORD", "correcthorsebatterystaple")  # a long word may be a passphrase
    r = Redactor(env=env)
    text = "db at https://user:Sup3r-S3cret@db.example.com/x, creds in /home/me/creds.json via subprocess"
    assert r.text(text) == f"db at https://user:{MARK}@db.example.com/x, creds in /home/me/creds.json via subprocess"


def test_the_environment_is_read_when_the_redactor_is_made(monkeypatch):
    monkeypatch.setenv("LATE_SECRET_TOKEN", TOKEN)
    r = Redactor()
    monkeypatch.setenv("LATER_SECRET_TOKEN", TOKEN[::-1])
    assert r.text(TOKEN) == MARK and r.text(TOKEN[::-1]) == TOKEN[::-1]


# --- structures -------------------------------------------------------------------------------------

def test_deep_redacts_strings_and_keys_but_never_binary_payloads():
    png = png_base64()
    r = Redactor([TOKEN], env={})
    bundle = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": png, "text/plain": f"<Figure {TOKEN}>", "image/svg+xml": f"<svg>{TOKEN}</svg>",
                       "application/pdf": png + TOKEN}}
    clean = r.deep([bundle, (TOKEN, 1), {TOKEN: None}])
    data = clean[0]["data"]
    assert data["image/png"] == png and data["application/pdf"] == png + TOKEN  # untouched, however it looks
    assert data["text/plain"] == f"<Figure {MARK}>" and data["image/svg+xml"] == f"<svg>{MARK}</svg>"
    assert clean[1:] == [[MARK, 1], {MARK: None}]
