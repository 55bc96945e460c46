"""Planned and logged launch commands as structured argv, parsed with the flag table of a version.

``lmdoctor check -- CMD``, ``explain`` (the launch line found in a log) and ``run`` all need to know
which subcommand a command runs, which flags it sets, whether those flags exist in the installed
lmdeploy version, and how to rewrite it (``--cache-max-entry-count 0.8 → 0.2``) without string
surgery. Flag knowledge is data: ``rules/programs/<program>.yaml`` (see ``doctor/programs.py``).

The reading follows argparse, because argparse is what will read the command: a flag's arity comes
from the version's table (``--search-scale False`` is a value on 0.5.x and a stray word on 0.6.3+),
``--flag=value`` and unique prefixes work, and on lmdeploy >= 0.9.2 ``--foo_bar`` means
``--foo-bar``. Shell text (tutorial snippets, log lines) is split like a POSIX shell would:
quotes, backslash-newline continuations, ``VAR=value`` prefixes, ``nohup``/``env`` wrappers,
redirections and ``cmd1 && cmd2`` chains.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from doctor.programs import FlagSpec, ProgramTable, load_program, parse_version

COMMAND_FACTS = {
    "cmd.program": "program the planned/logged command runs (lmdeploy, streamlit, python...)",
    "cmd.subcommand": "lmdeploy subcommand, e.g. `serve api_server`",
    "cmd.model": "model path or hub id given to the command",
    "cmd.model_is_local": "whether the model argument is an existing local folder",
    "cmd.argv": "the command as a list of arguments",
    "cmd.flag.**": "value of a flag given on the command line (true for switches; `cmd.flag.server.port` for dotted flags)",
    "cmd.port": "port the command will listen on (given or default)",
    "cmd.bind_host": "address the command will bind",
    "cmd.backend": "inference backend requested (turbomind | pytorch): given, else that version's default",
    "cmd.lmdeploy_version": "lmdeploy version the command was interpreted against",
    "cmd.unknown_flags": "flags that do not exist for this subcommand in that lmdeploy version",
    "cmd.flag_history": "for unknown flags: `--flag: added in X` / `removed in Y` notes",
    "cmd.subcommand_exists": "whether that lmdeploy version has the subcommand",
    "cmd.subcommand_known": "whether any lmdeploy version has the subcommand (false: a typo)",
    "cmd.subcommand_suggestion": "closest existing subcommand to an unknown one",
    "cmd.subcommand_removed_in": "version that removed the subcommand, when it no longer exists",
    "cmd.subcommand_added_in": "version that introduced the subcommand, when it is newer than the installed one",
    "cmd.invalid_choices": "flag values that version's argparse rejects (`--calib-dataset ptb`, `--tp two`)",
    "cmd.unrecognized_args": "words argparse would reject as `unrecognized arguments` (`False` after a switch)",
    "cmd.missing_positionals": "required positional arguments not given (argparse: `the following arguments are required`)",
    "cmd.env.*": "environment assignments written before the command (VAR=value cmd ...)",
}

# The fact patterns a planned command covers. With no planned command they are covered too (known
# absent): "no command planned" is an observation, so rules about flags pass instead of "couldn't check".
# `cmd.flag.**` because dotted flags keep their dots: `cmd.flag.server.fileWatcherType`.
COMMAND_COVERED = ["cmd.*", "cmd.flag.**", "cmd.env.*"]

_PYTHONS = ("python", "python3")
_WRAPPERS = ("nohup", "exec", "time", "stdbuf", "setsid")
_BOOL_WORDS = ("true", "false")
_PYTHON_OPTS_WITH_VALUE = ("-X", "-W", "-Q")
_CONDA_RUN_OPTS_WITH_VALUE = ("-n", "--name", "-p", "--prefix", "--cwd")


@dataclass
class Token:
    """A parsed flag occurrence: where it sits in argv and how many values follow it."""

    flag: str              # canonical flag (what argparse matched: `--cache-max-entry-count`)
    index: int
    values: List[str]
    inline: bool           # written as --flag=value
    written: str = ""      # as written (`--cache_max_entry_count`, `--cache-max`)
    stray: List[str] = field(default_factory=list)   # `False` after a switch: argparse rejects it

    @property
    def end(self) -> int:
        """Index just past this occurrence in argv (values and stray words included)."""
        return self.index + 1 + (0 if self.inline else len(self.values)) + len(self.stray)


@dataclass
class Command:
    argv: List[str]
    program: str = ""
    subcommand: str = ""
    positionals: List[str] = field(default_factory=list)
    tokens: List[Token] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    version: Optional[str] = None          # lmdeploy version used for the flag table
    table: Optional[ProgramTable] = field(default=None, repr=False)
    start: int = 0                         # index in argv where the program's own arguments begin
    env_indices: List[int] = field(default_factory=list)   # where the VAR=value words sit in argv
    positional_indices: List[int] = field(default_factory=list)

    # -- reading -----------------------------------------------------------------------------
    def _canonical(self, name: str) -> str:
        flag = _dashed(name)
        if self.table is not None:
            return self.table.resolve_flag(self.subcommand, flag, self.version)
        return flag

    def get_flag(self, name: str) -> Optional[str]:
        """Last value given for a flag (``"true"`` for switches); ``name`` with or without dashes."""
        flag = self._canonical(name)
        for tok in reversed(self.tokens):
            if tok.flag == flag:
                return " ".join(tok.values) if tok.values else "true"
        return None

    def get_values(self, name: str) -> Optional[List[str]]:
        """All values of the last occurrence (multi-value flags such as ``--adapters a=x b=y``)."""
        flag = self._canonical(name)
        for tok in reversed(self.tokens):
            if tok.flag == flag:
                return list(tok.values)
        return None

    def has_flag(self, name: str) -> bool:
        return self.get_flag(name) is not None

    def spec(self, name: str) -> Optional[FlagSpec]:
        if self.table is None:
            return None
        return self.table.flag(self.subcommand, self._canonical(name), self.version)

    def default(self, name: str) -> Optional[str]:
        spec = self.spec(name)
        if spec is None or spec.default is None:
            return None
        return _text(spec.default)

    def value(self, name: str) -> Optional[str]:
        """Given value, else this version's default."""
        given = self.get_flag(name)
        return given if given is not None else self.default(name)

    @property
    def model(self) -> Optional[str]:
        """The model argument: by the positional's name in the table (``model_path``, ``model``)."""
        if self.program != "lmdeploy" or not self.positionals:
            return None
        names = [p["name"] for p in self._positional_specs()]
        for i, name in enumerate(names):
            if i < len(self.positionals) and name in ("model_path", "model", "model_path_or_server"):
                value = self.positionals[i]
                if name == "model_path_or_server" and _looks_like_url(value):
                    return None
                return value
        return None if names else self.positionals[0]

    @property
    def model_is_local(self) -> bool:
        return bool(self.model) and os.path.isdir(self.model)

    @property
    def port(self) -> Optional[int]:
        if self.program == "streamlit":
            raw = self.get_flag("server.port") or self.env.get("STREAMLIT_SERVER_PORT") or self.default("server.port") or "8501"
        elif self.program == "lmdeploy":
            if not self.subcommand.startswith("serve ") or self.subcommand == "serve api_client":
                return None
            raw = self.value("server-port")
            if raw is None:   # None in the table means "decided later": api_server falls back to 23333
                raw = {"serve gradio": "6006", "serve proxy": "8000"}.get(self.subcommand, "23333")
        else:
            raw = self.get_flag("server-port") or self.get_flag("port") or self.env.get("GRADIO_SERVER_PORT")
        return int(raw) if raw and str(raw).isdigit() else None

    @property
    def bind_host(self) -> Optional[str]:
        if self.program == "streamlit":
            return self.get_flag("server.address") or self.env.get("STREAMLIT_SERVER_ADDRESS") or "0.0.0.0"
        if self.port is None:
            return None
        return self.value("server-name") or "0.0.0.0"

    @property
    def unknown_flags(self) -> List[str]:
        if self.table is None or not self.table.has_subcommand(self.subcommand, self.version):
            return []
        known = self.table.flags(self.subcommand, self.version)
        out: List[str] = []
        for t in self.tokens:
            if t.flag not in known and t.flag not in ("-h", "--help") and t.flag not in out:
                out.append(t.flag)
        return out

    @property
    def unrecognized_args(self) -> List[str]:
        """Words argparse would refuse: stray words after switches and positionals beyond the declared ones."""
        if self.table is None or not self.table.has_subcommand(self.subcommand, self.version):
            return []
        extra = [w for t in self.tokens for w in t.stray]
        declared = self._positional_specs()
        if not any(p.get("nargs") in ("*", "+", "...") for p in declared):
            extra += self.positionals[len(declared):]
        return extra

    @property
    def missing_positionals(self) -> List[str]:
        if self.table is None or not self.table.has_subcommand(self.subcommand, self.version):
            return []
        declared = self._positional_specs()
        required = [p["name"] for p in declared if p.get("nargs") not in ("?", "*")]
        return required[len(self.positionals):]

    def _positional_specs(self) -> List[Dict[str, object]]:
        if self.table is None or not self.subcommand:
            return []
        return self.table.positionals(self.subcommand, self.version)

    def shell(self) -> str:
        """The command as one shell line (env assignments first, quoted so the shell still assigns)."""
        words = []
        for i, arg in enumerate(self.argv):
            if i in self.env_indices:
                key, value = arg.split("=", 1)
                words.append(f"{key}={shlex.quote(value)}")
            else:
                words.append(shlex.quote(arg))
        return " ".join(words)

    # -- editing (each returns a new Command; the original stays untouched) ---------------
    def _reparse(self, argv: List[str]) -> "Command":
        return parse(argv, version=self.version)

    def with_flag(self, name: str, value: Union[None, str, Sequence[str]] = None) -> "Command":
        """Set a flag's value (replacing every occurrence) or add it; ``value=None`` for a switch.

        A list sets a multi-value flag (``--adapters a=x b=y``). A new flag goes before a ``--``
        separator, where argparse still reads flags.
        """
        flag = self._canonical(name)
        values = [] if value is None else ([str(value)] if isinstance(value, (str, int, float)) else [str(v) for v in value])
        argv = list(self.argv)
        occurrences = [t for t in self.tokens if t.flag == flag]
        if occurrences:
            first = occurrences[0]
            for tok in reversed(occurrences[1:]):
                del argv[tok.index: tok.end]
            if first.inline and len(values) == 1:
                new = [f"{flag}={values[0]}"]
            else:
                new = [flag] + values
            argv[first.index: first.end] = new
        else:
            insert_at = argv.index("--", self.start) if "--" in argv[self.start:] else len(argv)
            argv[insert_at:insert_at] = [flag] + values
        return self._reparse(argv)

    def without_flag(self, name: str) -> "Command":
        """Drop every occurrence with its values (and a stray word after it: ``--search-scale False``)."""
        flag = self._canonical(name)
        argv = list(self.argv)
        for tok in sorted((t for t in self.tokens if t.flag == flag), key=lambda t: -t.index):
            del argv[tok.index: tok.end]
        return self._reparse(argv)

    def with_env(self, name: str, value: str) -> "Command":
        """Set ``NAME=value`` in the command's own environment prefix (replacing an earlier one)."""
        drop = [i for i in self.env_indices if self.argv[i].split("=", 1)[0] == name]
        keep = [i for i in self.env_indices if i not in drop]
        if keep:
            anchor = max(keep) + 1
        elif drop:
            anchor = min(drop)
        else:
            anchor = 1 if self.argv and os.path.basename(self.argv[0]) == "env" else 0
        anchor -= sum(1 for i in drop if i < anchor)
        argv = [a for k, a in enumerate(self.argv) if k not in drop]
        argv.insert(anchor, f"{name}={value}")
        return self._reparse(argv)

    def with_positional(self, index: int, value: str) -> "Command":
        """Replace (or add, at the next slot) a positional argument, e.g. the model path after quantizing."""
        argv = list(self.argv)
        if index < len(self.positional_indices):
            argv[self.positional_indices[index]] = value
        elif index == len(self.positional_indices):
            at = self.start + len(self.subcommand.split()) if self.subcommand else self.start
            if self.positional_indices:
                at = self.positional_indices[-1] + 1
            argv.insert(at, value)
        else:
            raise IndexError(f"positional {index} of a command with {len(self.positional_indices)}")
        return self._reparse(argv)

    def with_subcommand(self, subcommand: str, positionals: Sequence[str], keep_flags: bool = False) -> "Command":
        """Same launcher and environment, another subcommand and positionals (``lite auto_awq``...).

        ``keep_flags`` carries over the flags the new subcommand has in this version (``serve gradio``
        → ``serve api_server`` keeps ``--cache-max-entry-count`` but drops ``--share``).
        """
        launcher = self.argv[: self.start]
        new = parse(launcher + subcommand.split() + list(positionals), version=self.version)
        if not keep_flags or new.table is None:
            return new
        known = new.table.flags(new.subcommand, new.version)
        argv = list(new.argv)
        for tok in self.tokens:
            if tok.flag in known:
                argv += [f"{tok.flag}={tok.values[0]}"] if tok.inline else [tok.flag] + tok.values
        return parse(argv, version=self.version)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _dashed(name: str) -> str:
    return name if name.startswith("-") else "--" + name


def _looks_like_url(text: str) -> bool:
    return "://" in text or bool(re.match(r"^[\w.\-]+:\d+(/|$)", text))


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _is_flag_like(text: str) -> bool:
    return text.startswith("-") and len(text) > 1 and not _is_number(text)


def _split_launcher(argv: List[str]) -> Tuple[Dict[str, str], List[int], str, int]:
    """Env assignments (and their indices), the program name, and where its own arguments start.

    Understands ``VAR=x nohup env VAR2=y python -u -m lmdeploy ...``, ``conda run -n ENV lmdeploy ...``
    and ``python script.py``.
    """
    env: Dict[str, str] = {}
    env_indices: List[int] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        base = os.path.basename(word)
        if "=" in word and not word.startswith("-") and word.split("=", 1)[0].isidentifier():
            key, value = word.split("=", 1)
            env[key] = value
            env_indices.append(i)
            i += 1
        elif base == "env":
            i += 1
            while i < len(argv) and argv[i].startswith("-"):   # env -u NAME / env -i
                i += 2 if argv[i] in ("-u", "--unset", "-C", "--chdir") else 1
        elif base == "conda" and i + 1 < len(argv) and argv[i + 1] == "run":   # conda run -n ENV cmd
            i += 2
            while i < len(argv) and argv[i].startswith("-"):
                i += 2 if argv[i] in _CONDA_RUN_OPTS_WITH_VALUE else 1
        elif base in _WRAPPERS:
            i += 1
            while i < len(argv) and argv[i].startswith("-"):
                i += 1
        else:
            break
    if i >= len(argv):
        return env, env_indices, "", i
    head = os.path.basename(argv[i])
    if head.startswith(_PYTHONS):
        j = i + 1
        while j < len(argv) and argv[j].startswith("-") and argv[j] != "-m":
            if argv[j] == "-c":
                return env, env_indices, "python", j
            j += 2 if argv[j] in _PYTHON_OPTS_WITH_VALUE else 1
        if j + 1 < len(argv) and argv[j] == "-m":
            # `python -m lmdeploy.cli` is lmdeploy; `python -m http.server` stays http.server.
            module = argv[j + 1]
            head_module = module.split(".")[0]
            return env, env_indices, head_module if load_program(head_module) is not None else module, j + 2
        return env, env_indices, "python", j
    return env, env_indices, head, i + 1


def parse(argv: Sequence[str], version: Optional[str] = None) -> Command:
    """Parse a command line (list of arguments) with the flag table of ``version``."""
    argv = [str(a) for a in argv]
    env, env_indices, program, start = _split_launcher(argv)
    cmd = Command(argv=argv, program=program, env=env, start=start, version=version, env_indices=env_indices)
    table = load_program(program) if program else None
    cmd.table = table
    rest = argv[start:]
    if table is not None:
        cmd.subcommand = table.match_subcommand(rest)
    offset = start + (len(cmd.subcommand.split()) if cmd.subcommand else 0)
    i = offset
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            cmd.positionals += argv[i + 1:]
            cmd.positional_indices += list(range(i + 1, len(argv)))
            break
        if _is_flag_like(arg):
            written, eq, inline_value = arg.partition("=")
            flag = table.resolve_flag(cmd.subcommand, written, version) if table is not None else written
            if eq:
                cmd.tokens.append(Token(flag, i, [inline_value], True, written))
                i += 1
                continue
            spec = table.any_variant(cmd.subcommand, flag, version) if table is not None else None
            values, j = _take_values(argv, i + 1, spec)
            tok = Token(flag, i, values, False, written)
            if spec is not None and spec.is_switch and j < len(argv) and argv[j].lower() in _BOOL_WORDS:
                tok.stray = [argv[j]]   # `--search-scale False` where the flag is a switch
            cmd.tokens.append(tok)
            i = tok.end
            continue
        cmd.positionals.append(arg)
        cmd.positional_indices.append(i)
        i += 1
    return cmd


def _take_values(argv: List[str], j: int, spec: Optional[FlagSpec]) -> Tuple[List[str], int]:
    """The values argparse gives a flag of that arity, starting at ``argv[j]``."""
    values: List[str] = []
    nargs = spec.nargs if spec is not None else 1
    if nargs == 0:
        return values, j
    if nargs in ("+", "*"):
        while j < len(argv) and not _is_flag_like(argv[j]) and argv[j] != "--":
            values.append(argv[j])
            j += 1
        return values, j
    count = 1 if nargs == "?" or not isinstance(nargs, int) else nargs
    while count and j < len(argv) and not _is_flag_like(argv[j]) and argv[j] != "--":
        values.append(argv[j])
        j += 1
        count -= 1
    return values, j


# -- shell text ------------------------------------------------------------------------------------
_OPERATORS = ("&&", "||", ";;", "|&", ">>", "&>>", "&>", ">&", "<<", ">|", "|", "&", ";", ">", "<", "\n")
_REDIRECTS = (">>", "&>>", "&>", ">&", "<<", ">|", ">", "<")
_PROMPT = re.compile(r"^\s*(\([^)]*\)\s*)?([\w.\-]+@[\w.\-]+:[^#$\n]*[#$]|\$)\s+")
_PROGRAMS = ("lmdeploy", "streamlit", "python", "python3")


def split_shell(line: str) -> List[List[str]]:
    """Split shell text into simple commands (words), like a POSIX shell would.

    Quotes and backslashes work as in sh (backslash-newline joins lines); ``&&``, ``||``, ``;``,
    ``|``, ``&`` and newlines separate commands; redirections (``> log 2>&1``) are dropped with
    their targets; ``#`` starts a comment at the beginning of a word; a copied prompt
    (``(env) root@host:~# ``, ``$ ``) in front of a line is ignored.
    """
    line = "\n".join(_PROMPT.sub("", ln) for ln in line.replace("\r\n", "\n").split("\n"))
    commands: List[List[str]] = [[]]
    word: List[str] = []
    in_word = False
    skip_next_word = False
    i, n = 0, len(line)

    def finish() -> None:
        nonlocal word, in_word, skip_next_word
        if in_word:
            if skip_next_word:
                skip_next_word = False
            else:
                commands[-1].append("".join(word))
        word, in_word = [], False

    while i < n:
        c = line[i]
        if c == "\\":
            if i + 1 < n and line[i + 1] == "\n":
                i += 2
                continue
            if i + 1 < n:
                word.append(line[i + 1])
                in_word = True
            i += 2
            continue
        if c == "'":
            end = line.find("'", i + 1)
            end = n if end < 0 else end
            word.append(line[i + 1:end])
            in_word = True
            i = end + 1
            continue
        if c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n and line[j + 1] in '"\\$`\n':
                    if line[j + 1] != "\n":
                        word.append(line[j + 1])
                    j += 2
                    continue
                word.append(line[j])
                j += 1
            in_word = True
            i = j + 1
            continue
        if c == "#" and not in_word:
            nl = line.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c in " \t":
            finish()
            i += 1
            continue
        op = next((o for o in _OPERATORS if line.startswith(o, i)), None)
        if op is not None:
            if op in _REDIRECTS and in_word and "".join(word).isdigit():
                word, in_word = [], False          # `2>`: the digits name a file descriptor
            finish()
            i += len(op)
            if op in _REDIRECTS:
                if op.endswith("&") and i < n and (line[i].isdigit() or line[i] == "-"):
                    while i < n and (line[i].isdigit() or line[i] == "-"):
                        i += 1                         # `2>&1`: no file word follows
                else:
                    skip_next_word = True
            elif commands[-1]:
                commands.append([])
            continue
        word.append(c)
        in_word = True
        i += 1
    finish()
    return [c for c in commands if c]


def _head(words: List[str]) -> str:
    _, _, program, _ = _split_launcher(words)
    return program


def parse_shell(line: str, version: Optional[str] = None) -> Command:
    """Parse shell text: the first simple command that runs a known program (else the first one).

    ``conda activate x && lmdeploy serve ...`` and a pasted tutorial block (``conda activate`` on
    one line, the launch on the next) both yield the launch.
    """
    commands = split_shell(line)
    if not commands:
        return parse([], version=version)
    chosen = next((c for c in commands if _head(c) in _PROGRAMS or load_program(_head(c)) is not None), commands[0])
    return parse(chosen, version=version)


def command_facts(cmd: Command) -> Dict[str, object]:
    """The cmd.* facts rules can test (see COMMAND_FACTS)."""
    facts: Dict[str, object] = {"cmd.program": cmd.program, "cmd.argv": list(cmd.argv)}
    if cmd.subcommand:
        facts["cmd.subcommand"] = cmd.subcommand
    if cmd.model:
        facts["cmd.model"] = cmd.model
        facts["cmd.model_is_local"] = cmd.model_is_local
    for tok in cmd.tokens:
        name = tok.flag.lstrip("-")
        facts[f"cmd.flag.{name}"] = " ".join(tok.values) if tok.values else True
    if cmd.port is not None:
        facts["cmd.port"] = cmd.port
    if cmd.bind_host:
        facts["cmd.bind_host"] = cmd.bind_host
    if cmd.version:
        facts["cmd.lmdeploy_version"] = cmd.version
    for key, value in cmd.env.items():
        facts[f"cmd.env.{key}"] = value
    table = cmd.table
    if table is not None and cmd.subcommand:
        backend = cmd.value("backend") if table.has_subcommand(cmd.subcommand, cmd.version) else cmd.get_flag("backend")
        if backend:
            facts["cmd.backend"] = backend
        exists = table.has_subcommand(cmd.subcommand, cmd.version)
        facts["cmd.subcommand_exists"] = exists
        facts["cmd.subcommand_known"] = table.knows_subcommand(cmd.subcommand) or table.is_group(cmd.subcommand)
        facts["cmd.unknown_flags"] = cmd.unknown_flags
        history = [table.flag_history(cmd.subcommand, f, cmd.version) for f in cmd.unknown_flags]
        facts["cmd.flag_history"] = [h for h in history if h]
        facts["cmd.unrecognized_args"] = cmd.unrecognized_args
        facts["cmd.missing_positionals"] = cmd.missing_positionals
        if not exists and cmd.version:
            v = parse_version(cmd.version)
            removed, added = table.subcommand_until(cmd.subcommand), table.subcommand_since(cmd.subcommand)
            if v is not None and removed and v >= parse_version(removed):
                facts["cmd.subcommand_removed_in"] = removed
            if v is not None and added and v < parse_version(added):
                facts["cmd.subcommand_added_in"] = added
        if not exists and not table.knows_subcommand(cmd.subcommand):
            suggestion = table.suggest_subcommand(cmd.subcommand, cmd.version)
            if suggestion:
                facts["cmd.subcommand_suggestion"] = suggestion
        facts["cmd.invalid_choices"] = table.invalid_choices(cmd) if exists else []
    return facts

