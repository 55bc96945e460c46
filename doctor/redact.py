"""Remove secrets (and, by default, who you are) from anything lmdoctor may show or write.

One implementation for every output that can be pasted somewhere: the ``env.*`` facts, ``report``,
and later ``explain`` / ``run`` output. People paste launch lines with ``--api-keys sk-…``, logs
with ``HF_TOKEN=hf_…`` and proxy URLs with passwords into issues and chat groups, so redaction is
on by default and structure-aware where structure exists (argv lists, JSON-like data, fact names).

What is masked (replaced by :data:`MASK`; the name, flag or URL around it stays readable):

* values of secret-named things — the *last* segment of the name (split at ``_ - .`` and camelCase)
  is one of :data:`SECRET_WORDS`: ``HF_TOKEN=…``, ``"api_key": "…"``, ``?access_token=…``,
  ``--api-keys a b`` (a plural flag masks every value up to the next flag), ``--hf-token …``,
  ``apiKey: …``. Near misses stay: ``--max-new-tokens 512`` (plural ``tokens``),
  ``max_prefill_token_num``, ``session_len``, ``HF_TOKEN_PATH`` (a path), ``PWD``;
* ``Authorization:`` / ``Proxy-Authorization:`` / ``Cookie:`` / ``X-Api-Key:`` header values
  and any ``Bearer …`` / ``Basic …`` credential;
* well-known key formats anywhere, whatever they are called: OpenAI ``sk-…``, Hugging Face
  ``hf_…``, GitHub ``ghp_…`` / ``github_pat_…``, AWS ``AKIA…``, Google ``AIza…``, Slack ``xox?-…``, JWTs;
* ``user:password@`` in URLs (proxies included) and ``--proxy-user/--user USER:PASS``;
* the body of ``-----BEGIN … PRIVATE KEY-----`` blocks (to the END line, or to the end of the
  text when a log was cut);
* every later occurrence of a secret value found once (``--api-keys sk-x`` makes ``sk-x`` masked
  in the log as well) and of the values of secret-named environment variables of this process.

Identity (``identity=True``, the default of reports; ``--no-redact`` turns everything off):
the current ``$HOME`` becomes ``~``; other ``/home/NAME`` and ``/Users/NAME`` become ``/home/USER``;
the current user name and host name become ``USER`` / ``HOST`` as whole words. ``/root`` and the
user ``root`` are kept: they identify nobody (every container runs as root) and tutorial paths
such as ``/root/models/…`` are part of the diagnosis. Generic account names (``user``, ``admin``,
``ubuntu``…), user names shorter than 3 and host names shorter than 5 characters are kept too, so
that ordinary words survive.
"""
from __future__ import annotations

import os
import re
import socket
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

MASK = "[REDACTED]"
PRESENT = "<set>"      # how env.* facts record a secret variable: set, value withheld

SECRET_WORDS = frozenset({
    "token", "accesstoken", "authtoken", "refreshtoken", "idtoken", "bearertoken",
    "key", "keys", "apikey", "apikeys", "accesskey", "secretkey", "privatekey",
    "secret", "secrets", "clientsecret", "password", "passwd", "passphrase",
    "credential", "credentials", "auth", "authorization", "cookie", "signature", "sig",
})
# two-segment names that are secret although their last segment alone is not a secret word
_SECRET_PAIRS = frozenset({("api", "key"), ("api", "keys"), ("access", "key"), ("secret", "key"),
                           ("private", "key"), ("client", "secret"), ("access", "token")})
_NOT_SECRET_VALUES = frozenset({"", "true", "false", "none", "null", "yes", "no", "0", "1", "on", "off",
                                MASK.lower(), PRESENT})
_GENERIC_USERS = frozenset({"root", "user", "admin", "ubuntu", "nobody", "jovyan", "runner", "guest",
                            "default", "localhost", "host", "ec2-user", "centos", "debian"})
_MIN_LEARNED = 4       # shorter secret values are not searched for elsewhere (would mask ordinary text)

# Detection runs on a lowercased copy of the text (same length, so spans map back) with patterns
# that start with a literal: the regex engine then skips ahead instead of trying every position,
# which keeps a multi-megabyte log fast. Word boundaries are checked by hand on the (rare) hits.
_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_HINT = re.compile(r"token|key|secret|passw|passphrase|credential|auth|cookie|signature|sig")
# a quoted string, a [list] / (tuple), or a bare run up to a separator
_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|\[[^\]\n]*\]|\([^)\n]*\)|[^\s&,;"'<>()\[\]{}]+)"""
_ASSIGN_TAIL = re.compile(rf"""["']?[ \t]*[=:][ \t]*(?P<value>{_VALUE})""")
_FLAG_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|(?!-)(?!\\(?:\r?\n|$))[^\s"']+)"""
_GAP = r"(?:[ \t]|\\\r?\n)+"
_FLAG_TAIL = re.compile(rf"(?:[ \t]*=[ \t]*|{_GAP})(?P<values>{_FLAG_VALUE}(?:{_GAP}{_FLAG_VALUE})*)")
_ONE_FLAG_VALUE = re.compile(_FLAG_VALUE)
_HEADER = re.compile(r"authorization|cookie|x-api-key")  # on the lowercased text
_HEADER_VALUE = re.compile(r"[ \t]*:[ \t]*(?:(?:Bearer|Basic|Token|Digest)[ \t]+)?(?P<value>[^\"'\r\n]+)", re.I)
_SCHEME_CRED = re.compile(r"(?:bearer|basic)[ \t]+(?P<value>[a-z0-9._~+/=\-]{8,})")  # on the lowercased text
_URL_CRED = re.compile(r"://(?P<value>[^/@\s:'\"]+(?::[^/@\s'\"]*)?)@")
_USER_PASS_FLAG = re.compile(r"--(?:proxy-)?user(?:[ \t]*=[ \t]*|[ \t]+)(?P<value>[^\s:\"']+:[^\s\"']+)")
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<value>.*?)"
                          r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)
_KNOWN_FORMATS = re.compile(
    r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"   # OpenAI / Anthropic-style
    r"|hf_[A-Za-z0-9]{30,}"                                    # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"  # GitHub
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"                              # AWS access key id
    r"|AIza[0-9A-Za-z_\-]{35}"                                 # Google API key
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"                         # Slack
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")  # JWT
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _segments(name: str) -> List[str]:
    """``--api-keys`` → [api, keys]; ``env.HF_TOKEN`` → [env, HF, TOKEN]; ``apiKey`` → [api, Key]."""
    return [s for s in re.split(r"[_.\-\s]+", _CAMEL.sub("_", name.strip("-\"' "))) if s]


def secret_name(name: str, any_segment: bool = False) -> bool:
    """Whether a variable, key, flag or fact name holds a secret.

    By default only the last segment counts (``HF_TOKEN`` yes, ``HF_TOKEN_PATH`` no) so that the
    values of ordinary settings stay visible. ``any_segment`` is for places where a false positive
    costs nothing (environment variables are then recorded as present, not shown).
    """
    segs = [s.lower() for s in _segments(name)]
    if not segs:
        return False
    if any_segment:
        return any(s in SECRET_WORDS for s in segs) or any(p in _SECRET_PAIRS for p in zip(segs, segs[1:]))
    return segs[-1] in SECRET_WORDS or tuple(segs[-2:]) in _SECRET_PAIRS


def _plural(name: str) -> bool:
    segs = _segments(name)
    return bool(segs) and segs[-1].lower().endswith("s") and segs[-1].lower() in SECRET_WORDS


def _maskable(value: str) -> bool:
    return value.strip("\"'").lower() not in _NOT_SECRET_VALUES and MASK not in value


def _glued(text: str, index: int, edge: str, chars: Optional[frozenset] = None) -> bool:
    """Whether ``text[index]`` continues a word that ends (or starts) with ``edge``."""
    if not 0 <= index < len(text) or not edge.isalnum():
        return False
    return text[index] in chars if chars is not None else (text[index].isalnum() or text[index] == "_")


def _name_prefix(text: str, start: int) -> str:
    """The part of a name before ``start`` (``proxy-`` for ``proxy-authorization``; "" at a word start)."""
    left = start
    while left > 0 and text[left - 1] in _NAME_CHARS:
        left -= 1
    return text[left:start]


def _named_value_spans(text: str, low: str) -> Iterator[Tuple[int, int]]:
    """Values of secret-named things: ``NAME=value``, ``"name": "value"``, ``--flag value [value…]``.

    Found from the secret words outward (rare in logs) instead of matching every ``x=y``."""
    done = -1
    for hit in _HINT.finditer(low):
        if hit.start() < done:
            continue
        left, right = hit.start(), hit.end()
        while left > 0 and text[left - 1] in _NAME_CHARS:
            left -= 1
        while right < len(text) and text[right] in _NAME_CHARS:
            right += 1
        done = right
        name = text[left:right]
        if not secret_name(name):
            continue
        if name.startswith("-"):
            m = _FLAG_TAIL.match(text, right)
            if m is None:
                continue
            values = list(_ONE_FLAG_VALUE.finditer(text, m.start("values"), m.end("values")))
            for v in values if _plural(name) else values[:1]:
                if _maskable(v.group()):
                    yield _unquoted(v.span(), text)
        else:
            m = _ASSIGN_TAIL.match(text, right)
            if m and _maskable(m.group("value")) and m.group("value").lower() not in ("bearer", "basic"):
                yield _unquoted(m.span("value"), text)


def _unquoted(span: Tuple[int, int], text: str) -> Tuple[int, int]:
    """Mask inside quotes, so `"sk-x"` becomes `"[REDACTED]"` and stays valid JSON/shell."""
    start, end = span
    if end - start >= 2 and text[start] in "\"'" and text[end - 1] == text[start]:
        return start + 1, end - 1
    return start, end


class Redactor:
    """Redacts text, argv lists and JSON-like data; remembers secrets it saw to mask them elsewhere.

    Use one instance per document: call :meth:`learn` on every input first (the command, the log,
    the facts), then redact each part; a key found in the command is then masked in the log too.
    ``Redactor(enabled=False)`` is the ``--no-redact`` pass-through.
    """

    def __init__(self, enabled: bool = True, identity: bool = True, environ: Optional[Mapping[str, str]] = None,
                 home: Optional[str] = None, users: Optional[Iterable[str]] = None,
                 hosts: Optional[Iterable[str]] = None):
        self.enabled = enabled
        env = os.environ if environ is None else environ
        self.learned: Set[str] = set()
        if enabled:  # a secret of this process's environment is masked wherever it shows up
            for name, value in env.items():
                if secret_name(name):
                    self._remember(value)
        self._identity: List[Tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]] = []
        if enabled and identity:
            home = (env.get("HOME", "") if home is None else home).rstrip("/")
            self._identity = _identity_passes(
                "" if home in ("", "/root") else home,
                {u for u in (_current_users(env) if users is None else users)
                 if len(u) >= 3 and u.lower() not in _GENERIC_USERS},
                {h for h in (_current_hosts() if hosts is None else hosts)
                 if len(h) >= 5 and h.lower() not in _GENERIC_USERS})

    # -- learning ------------------------------------------------------------------------------
    def _remember(self, value: Any) -> None:
        if isinstance(value, str):
            v = value.strip().strip("\"'")
            if v[:1] in "[(":  # a printed list (`api_keys=['sk-a', 'sk-b']`): remember each item
                for item in re.findall(r"[\"']([^\"']+)[\"']", v):
                    self._remember(item)
            elif len(v) >= _MIN_LEARNED and _maskable(v):
                self.learned.add(v)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._remember(item)

    def learn(self, obj: Any) -> None:
        """Find secrets in ``obj`` (text, argv or data) without changing it."""
        if not self.enabled:
            return
        if isinstance(obj, str):
            for start, end in self._secret_spans(obj):
                self._remember(obj[start:end])
        elif isinstance(obj, Mapping):
            for key, value in obj.items():
                if isinstance(key, str) and secret_name(key) and not isinstance(value, bool):
                    self._remember(value)
                self.learn(key)
                self.learn(value)
        elif isinstance(obj, (list, tuple)):
            if all(isinstance(x, str) for x in obj):
                for i in self._argv_secret_indices(list(obj)):
                    self._remember(obj[i].split("=", 1)[-1] if obj[i].startswith("-") else obj[i])
            for item in obj:
                self.learn(item)

    # -- text ----------------------------------------------------------------------------------
    @staticmethod
    def _secret_spans(text: str) -> List[Tuple[int, int]]:
        """Where the secrets of a text are (the values only: names, flags and URLs stay)."""
        spans: List[Tuple[int, int]] = []
        low = text.lower()
        if len(low) != len(text):  # a few non-ASCII letters lower to two characters: keep spans aligned
            low = text.translate(_LOWER)
        if "-----begin " in low:
            for m in _PRIVATE_KEY.finditer(text):
                body = m.group("value")
                if body.strip():  # keep the BEGIN/END lines and the line breaks around the body
                    start = m.start("value") + len(body) - len(body.lstrip())
                    spans.append((start, start + len(body.strip())))
        for m in _HEADER.finditer(low):
            v = _HEADER_VALUE.match(text, m.end())
            if v and _name_prefix(low, m.start()) in ("", "proxy-", "set-") and _maskable(v.group("value")):
                spans.append(v.span("value"))
        for rx, where in ((_SCHEME_CRED, low), (_USER_PASS_FLAG, text)):
            for m in rx.finditer(where):
                if not _name_prefix(low, m.start()) and _maskable(text[m.start("value"):m.end("value")]):
                    spans.append(m.span("value"))
        for m in _URL_CRED.finditer(text):
            if _maskable(m.group("value")):
                spans.append(m.span("value"))
        for m in _KNOWN_FORMATS.finditer(text):
            if not _glued(text, m.start() - 1, "a", _TOKEN_CHARS) and not _glued(text, m.end(), "a", _TOKEN_CHARS):
                spans.append(m.span())
        spans.extend(_named_value_spans(text, low))
        return spans

    def _learned_spans(self, text: str) -> List[Tuple[int, int]]:
        """Every occurrence of a secret seen before, as a whole word (``test`` does not mask ``latest``)."""
        spans = []
        for secret in self.learned:
            start = text.find(secret)
            while start != -1:
                end = start + len(secret)
                if not (_glued(text, start - 1, secret[0]) or _glued(text, end, secret[-1])):
                    spans.append((start, end))
                start = text.find(secret, start + 1)
        return spans

    def text(self, text: str) -> str:
        """Redacted copy of a text (a log, a Markdown document, a shell line)."""
        if not self.enabled or not text:
            return text
        spans = self._secret_spans(text)
        for start, end in spans:
            self._remember(text[start:end])
        out = _apply(text, spans + self._learned_spans(text))
        for rx, sub in self._identity:
            out = rx.sub(sub, out)
        return out

    # -- argv ----------------------------------------------------------------------------------
    @staticmethod
    def _argv_secret_indices(argv: List[str]) -> List[int]:
        """Indices of argv items that are secret values: after a secret flag (all up to the next flag
        for plural flags such as ``--api-keys``) or the item itself when written ``--flag=value``."""
        out: List[int] = []
        i = 0
        while i < len(argv):
            flag, eq, value = argv[i].partition("=")
            i += 1
            if not flag.startswith("-") or not secret_name(flag):
                continue
            if eq:
                if _maskable(value):
                    out.append(i - 1)
                continue
            while i < len(argv) and not argv[i].startswith("-"):
                if _maskable(argv[i]):
                    out.append(i)
                i += 1
                if not _plural(flag):
                    break
        return out

    def argv(self, argv: Sequence[str]) -> List[str]:
        """Redacted copy of an argument list (element boundaries kept)."""
        items = list(argv)
        if not self.enabled:
            return items
        self.learn(items)
        for i in self._argv_secret_indices(items):
            flag, eq, _ = items[i].partition("=")
            items[i] = f"{flag}={MASK}" if eq and items[i].startswith("-") else MASK
        return [self.text(x) for x in items]

    # -- data ----------------------------------------------------------------------------------
    def data(self, obj: Any) -> Any:
        """Redacted deep copy of JSON-like data: secret-named keys lose their values, every string
        is redacted as text, lists of strings as argv."""
        if not self.enabled:
            return obj
        self.learn(obj)
        return self._data(obj)

    def _data(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            out = {}
            for key, value in obj.items():
                new_key = self.text(key) if isinstance(key, str) else key
                if isinstance(key, str) and secret_name(key) and value not in (None, PRESENT) \
                        and not isinstance(value, bool) and (not isinstance(value, str) or _maskable(value)):
                    out[new_key] = [MASK for _ in value] if isinstance(value, (list, tuple)) else MASK
                else:
                    out[new_key] = self._data(value)
            return out
        if isinstance(obj, (list, tuple)):
            if obj and all(isinstance(x, str) for x in obj):
                return self.argv(obj)
            return [self._data(x) for x in obj]
        return obj


def _identity_passes(home: str, users: Set[str], hosts: Set[str]) -> List[Tuple["re.Pattern[str]", Callable]]:
    """The identity passes, in order: $HOME → ``~``, other homes → ``/home/USER``, user names →
    ``USER``, host names → ``HOST``. Separate passes, each starting with a literal, so the regex
    engine skips ahead (one alternation of them is several times slower on a large log); left word
    boundaries are checked by hand."""
    def word(replacement: str, chars: Optional[frozenset]) -> Callable[["re.Match[str]"], str]:
        def sub(m: "re.Match[str]") -> str:
            return m.group() if _glued(m.string, m.start() - 1, m.group()[0], chars) else replacement
        return sub

    passes: List[Tuple["re.Pattern[str]", Callable]] = []
    if home:
        passes.append((re.compile(rf"{re.escape(home)}(?![A-Za-z0-9_.\-])"), lambda m: "~"))
    passes.append((re.compile(r"/(home|Users)/(?!USER(?![A-Za-z0-9_.\-]))[A-Za-z0-9_.\-]+"),
                   lambda m: f"/{m.group(1)}/USER"))
    if users:
        alternatives = "|".join(map(re.escape, sorted(users, key=len, reverse=True)))
        passes.append((re.compile(rf"(?:{alternatives})(?![A-Za-z0-9])"), word("USER", None)))
    if hosts:
        alternatives = "|".join(map(re.escape, sorted(hosts, key=len, reverse=True)))
        passes.append((re.compile(rf"(?:{alternatives})(?![A-Za-z0-9\-])"), word("HOST", _TOKEN_CHARS)))
    return passes


def _apply(text: str, spans: List[Tuple[int, int]]) -> str:
    """Replace the union of the spans with MASK (overlapping or touching spans become one)."""
    if not spans:
        return text
    merged: List[List[int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _current_users(environ: Mapping[str, str]) -> Set[str]:
    names = {environ.get(k, "") for k in ("LOGNAME", "USER", "LNAME", "USERNAME")}
    try:
        import pwd
        names.add(pwd.getpwuid(os.getuid()).pw_name)
    except (ImportError, KeyError, OSError):
        pass
    home = environ.get("HOME", "")
    if home.startswith(("/home/", "/Users/")):
        names.add(home.rstrip("/").rsplit("/", 1)[-1])
    return {n for n in names if n}


def _current_hosts() -> Set[str]:
    try:
        name = socket.gethostname()
    except OSError:
        return set()
    return {name, name.split(".", 1)[0]} if name else set()


_PROXY_NAME = re.compile(r"proxy", re.I)
_BARE_USERINFO = re.compile(r"(?:(?<=^)|(?<=[,;\s]))(?![a-z][a-z0-9+.\-]*://)[^/@\s,;]+@")


def env_value(name: str, value: str) -> str:
    """How an environment variable may be recorded in facts: :data:`PRESENT` for secret names (any
    segment), otherwise the value with URL credentials and known key formats masked. Paths are kept:
    facts feed rules; identity is removed only where a document is shared (``report``)."""
    if secret_name(name, any_segment=True):
        return PRESENT
    if _PROXY_NAME.search(name):
        # curl and pip accept proxies without a scheme (`user:pass@proxy:3128`): mask that userinfo too.
        value = _BARE_USERINFO.sub(lambda m: MASK + "@", value)
    return Redactor(identity=False, environ={}).text(value)


def redact_text(text: str, identity: bool = True) -> str:
    return Redactor(identity=identity).text(text)


def redact_argv(argv: Sequence[str], identity: bool = True) -> List[str]:
    return Redactor(identity=identity).argv(argv)


def redact_data(obj: Any, identity: bool = True) -> Any:
    return Redactor(identity=identity).data(obj)
