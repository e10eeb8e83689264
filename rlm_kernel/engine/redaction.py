"""What counts as a secret, and the Redactor that takes secrets out of text.

A run executes code that a model wrote, in a process whose environment holds the API key. That code
can print `os.environ`, pass the key to `llm_query`, or answer with it; everything it produces is
fed back to the model, written to the run log, shown in the tree and returned. So every string a
run produces passes through one Redactor, made when the run tree starts (see `EventBus.emit`), and the
export runs its own pass as a second line. This module is the one place that says what a secret is:

- the exact value of the configured key and of every environment variable whose name looks like a
  credential (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`, ...), read when the run
  starts, leaving out values too plain to be secrets (short, numbers, booleans, paths, bare words);
- any piece of 12 or more characters of such a value, so a key printed in two halves, or cut by
  truncation, does not leak either;
- the common key formats (`KEY_FORMATS`: Anthropic, OpenAI, GitHub, AWS access key ids, Hugging
  Face, Slack, Google, JWTs, PEM private keys, `Bearer`/`Basic` credentials).

How pieces are found: any 12-character piece of a secret contains one of its 6-character anchors,
taken every 7 characters. The anchors of all secrets go into one Aho-Corasick automaton
(`ahocorasick_rs`, a Rust extension), which finds them all in one pass over the text however many
secrets there are; each hit is extended both ways along its secret, and kept when the match is 12
characters or more. The same automaton holds the literal prefixes the key formats start with
(`sk-`, `ghp_`, `AKIA`, `Bearer`, ...), and a format's regex runs only where its prefix occurs.
(Putting every 12-gram in the automaton instead makes it 12 times larger: 0.1 s to build for 20
secrets.) benchmarks/redaction.py measures it; results in benchmarks/results/redaction.md.

Why not a secret-scanning library: detect-secrets (Yelp, 1.5.0, May 2024) was tried. It scans line
by line and reports findings rather than spans (its GitHub plugin reports just "ghp"), it took 17 s
per MB with its default plugins and 0.5 to 1.8 s with only its regex plugins (this Redactor: a
few ms), its entropy plugins flag
ordinary words, hashes and UUIDs, and it knows neither Anthropic nor Hugging Face keys. Redaction
must be exact about spans and fast on every output, so the patterns are written here, learning
from the formats such scanners document.

What no redactor can stop: a model that spells a key out character by character, reverses or
encodes it; pieces shorter than 12 characters. Text is redacted piece by piece where it arrives in
pieces (streamed reply deltas, the kernel's live prints), whole in the record. Keep secrets out of
the kernel's environment (README, "Keys and secrets")."""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs

from .text import is_binary

__all__ = ["KEY_FORMATS", "MARK", "PIECE", "KeyFormat", "Redactor", "credential_values", "looks_like_credential"]

MARK = "[REDACTED]"
#: A run of this many characters of a secret counts as the secret.
PIECE = 12
#: Every 12-character piece of a secret holds one whole 6-character anchor taken every 7 characters.
ANCHOR = 6
_STRIDE = PIECE - ANCHOR + 1
#: Known secrets shorter than this are too likely to be ordinary text; the configured key is kept
#: from 4 characters on (it is known to be a secret).
MIN_SECRET = 8
_MIN_CONFIGURED = 4

#: Environment variable names that hold credentials (matched anywhere in the name, any case).
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
#: A setting such as PIP_KEYRING_PROVIDER=subprocess; from 16 characters on, it may be a passphrase.
_WORD = re.compile(r"[a-z]{1,15}|(?=.{1,15}$)[a-z]+(?:[-_.][a-z]+)+")
_PATH = re.compile(r"(?:[~/.]|[A-Za-z]:[\\/])\S*")


@dataclass(frozen=True)
class KeyFormat:
    """One key format. It starts with one of `prefixes`; `regex`, matched where a prefix occurs,
    finds the whole of it; `group` is the part that is secret (0: all of it); `check`, when given,
    must accept the match (for formats whose shape alone says too little)."""

    name: str
    prefixes: tuple[str, ...]
    regex: re.Pattern[str]
    group: int = 0
    check: Callable[[re.Match[str]], bool] | None = None


def _in_auth_header(m: re.Match[str]) -> bool:
    """Whether the match follows an `Authorization` header name (`Authorization: Bearer ...`)."""
    return "authorization" in m.string[max(0, m.start() - 24):m.start()].lower()


def _is_bearer_token(m: re.Match[str]) -> bool:
    """A token has digits or length; "a Bearer of bad news" has neither (nor a header before it)."""
    token = m.group(1)
    return any(c.isdigit() for c in token) or len(token) >= 20 or _in_auth_header(m)


def _is_basic_credential(m: re.Match[str]) -> bool:
    """`Basic <base64 of user:password>`: decoding tells it apart from "Basic Understanding"."""
    try:
        return b":" in base64.b64decode(m.group(1), validate=True) or _in_auth_header(m)
    except (binascii.Error, ValueError):
        return _in_auth_header(m)


_NOT_AFTER_WORD = r"(?<![A-Za-z0-9_\-])"
_TOKEN = r"[A-Za-z0-9._~+/\-]{8,}=*"
KEY_FORMATS: tuple[KeyFormat, ...] = (
    KeyFormat("anthropic", ("sk-ant-",), re.compile(_NOT_AFTER_WORD + r"sk-ant-[A-Za-z0-9_\-]{8,}")),
    # OpenAI: sk-..., sk-proj-..., sk-svcacct-...
    KeyFormat("openai", ("sk-",), re.compile(_NOT_AFTER_WORD + r"sk-[A-Za-z0-9_\-]{16,}")),
    KeyFormat("github", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
              re.compile(_NOT_AFTER_WORD + r"gh[pousr]_[A-Za-z0-9]{36,}")),
    KeyFormat("github", ("github_pat_",), re.compile(_NOT_AFTER_WORD + r"github_pat_[A-Za-z0-9_]{22,}")),
    KeyFormat("aws-access-key-id", ("AKIA", "ASIA"),
              re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    KeyFormat("huggingface", ("hf_",), re.compile(_NOT_AFTER_WORD + r"hf_[A-Za-z0-9]{30,}")),
    KeyFormat("slack", ("xox",), re.compile(_NOT_AFTER_WORD + r"xox[baprs]-[A-Za-z0-9\-]{10,}")),
    KeyFormat("google-api-key", ("AIza",), re.compile(_NOT_AFTER_WORD + r"AIza[0-9A-Za-z_\-]{35}")),
    KeyFormat("jwt", ("eyJ",),
              re.compile(_NOT_AFTER_WORD + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    KeyFormat("private-key", ("-----BEGIN",),
              re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:(?!-----END)[\s\S]){0,20000}"
                         r"(?:-----END[A-Z ]*PRIVATE KEY-----)?")),
    # Authorization headers: the word stays so the text still reads; only the credential goes.
    KeyFormat("bearer", ("Bearer", "bearer"), re.compile(rf"[Bb]earer\s+({_TOKEN})"), 1, _is_bearer_token),
    KeyFormat("basic", ("Basic",), re.compile(r"Basic\s+([A-Za-z0-9+/]{4,}={0,2})"), 1, _is_basic_credential),
)


def looks_like_credential(name: str, value: str) -> bool:
    """Whether environment variable `name=value` is a secret worth redacting wherever it appears."""
    if not CREDENTIAL_NAME.search(name):
        return False
    v = value.strip()
    return (len(v) >= MIN_SECRET and not _NUMBER.fullmatch(v) and not _WORD.fullmatch(v)
            and not _PATH.fullmatch(v) and not _is_plain_url(v))


def _is_plain_url(value: str) -> bool:
    """A URL without a password in it names a place, not a secret (TOKEN_URL=https://...)."""
    if "://" not in value:
        return False
    try:
        return urllib.parse.urlsplit(value).password is None
    except ValueError:
        return False


def _secret_parts(value: str) -> list[str]:
    """The secret in a value: a URL's password rather than the whole URL (its host is not secret)."""
    if "://" in value:
        try:
            password = urllib.parse.urlsplit(value).password
        except ValueError:
            password = None
        if password:
            return [urllib.parse.unquote(password), password]
    return [value]


def credential_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of credential-like variables in `env` (default: os.environ), longest first."""
    env = os.environ if env is None else env
    found = {part for name, value in env.items() if looks_like_credential(name, value)
             for part in _secret_parts(value.strip())}
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


class Redactor:
    """Replaces secrets in text with MARK, and counts how many spans it replaced.

    `secrets` are values known to be secret (the configured key); `env` (default: os.environ, read
    now) adds the values of credential-like variables. Safe to use from several threads."""

    def __init__(self, secrets: Iterable[str | None] = (), *, env: Mapping[str, str] | None = None) -> None:
        known = {s for s in secrets if s and len(s) >= _MIN_CONFIGURED}
        self.secrets: list[str] = sorted(known | set(credential_values(env)), key=len, reverse=True)
        anchors: dict[str, list[tuple[str, int]]] = {}
        for secret in self.secrets:
            if len(secret) >= PIECE:
                for at in range(0, len(secret) - ANCHOR + 1, _STRIDE):
                    anchors.setdefault(secret[at:at + ANCHOR], []).append((secret, at))
        short = [s for s in self.secrets if len(s) < PIECE]
        # One automaton, one pass: the anchors (each hit is extended to the whole matching piece),
        # the short secrets (matched whole), and the key formats' prefixes (each hit tries the format).
        self._anchored = list(anchors.values())
        self._short = len(self._anchored) + len(short)
        self._formats = [fmt for fmt in KEY_FORMATS for _ in fmt.prefixes]
        patterns = [*anchors, *short, *(p for fmt in KEY_FORMATS for p in fmt.prefixes)]
        self._automaton = ahocorasick_rs.AhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.Standard,
                                                     implementation=ahocorasick_rs.Implementation.DFA)
        self._shortest = min([MIN_SECRET, *map(len, short)])  # nothing shorter can hold a secret
        self.count = 0
        self._lock = threading.Lock()

    def spans(self, s: str) -> list[tuple[int, int]]:
        """Where the secrets are in `s`: sorted, merged [start, end) spans."""
        found: list[tuple[int, int]] = []
        tried: set[tuple[int, int]] = set()
        # A printed secret hits every one of its anchors; the first hit's extension covers the rest.
        extended: dict[str, tuple[int, int, int]] = {}  # secret -> its last match (start, end, offset)
        anchored = len(self._anchored)
        for i, start, end in self._automaton.find_matches_as_indexes(s, overlapping=True):
            if i < anchored:
                for secret, at in self._anchored[i]:
                    lo, hi, off = extended.get(secret, (0, 0, 0))
                    if lo <= start < hi and start - lo == at - off:
                        continue  # the same alignment as the match already found
                    lo, hi, off = extended[secret] = _piece_at(s, start, secret, at)
                    if hi - lo >= PIECE:
                        found.append((lo, hi))
            elif i < self._short:
                found.append((start, end))
            else:
                fmt = self._formats[i - self._short]
                if (id(fmt), start) not in tried:
                    tried.add((id(fmt), start))
                    m = fmt.regex.match(s, start)
                    if m and (fmt.check is None or fmt.check(m)):
                        found.append(m.span(fmt.group))
        if not found:
            return []
        found.sort()
        merged = [found[0]]
        for start, end in found[1:]:
            if start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    def text(self, s: str) -> str:
        """`s` with every secret replaced by MARK (the same object when there was none)."""
        if len(s) < self._shortest:
            return s
        spans = self.spans(s)
        if not spans:
            return s
        parts, pos = [], 0
        for start, end in spans:
            parts += [s[pos:start], MARK]
            pos = end
        parts.append(s[pos:])
        with self._lock:
            self.count += len(spans)
        return "".join(parts)

    def deep(self, obj: Any) -> Any:
        """`obj` with every string inside dicts, lists and tuples redacted (dict keys too). Binary
        payloads (base64 `image/png` and the like in a mimebundle) are left as they are."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {(self.text(k) if isinstance(k, str) else k):
                    (v if isinstance(k, str) and is_binary(k) else self.deep(v)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj


def _piece_at(text: str, pos: int, secret: str, at: int) -> tuple[int, int, int]:
    """The longest span of text around `pos` that matches `secret` around its anchor at `at`:
    (start, end, where in the secret it starts). Shorter than PIECE, it is ordinary text."""
    lo, so = pos, at
    while lo > 0 and so > 0 and text[lo - 1] == secret[so - 1]:
        lo, so = lo - 1, so - 1
    hi, eo = pos + ANCHOR, at + ANCHOR
    while hi < len(text) and eo < len(secret) and text[hi] == secret[eo]:
        hi, eo = hi + 1, eo + 1
    return lo, hi, so
