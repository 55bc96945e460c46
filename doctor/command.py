"""Planned and logged launch commands as structured argv, parsed with the flag table of a version.

``lmdoctor check -- CMD``, ``explain`` (the launch line found in a log) and ``run`` all need to know
which subcommand a command runs, which flags it sets, whether those flags exist in the installed
lmdeploy version, and how to rewrite it (``--cache-max-entry-count 0.8 → 0.2``) without string
surgery. Flag knowledge is data: ``rules/programs/<program>.yaml`` (see ``doctor/programs.py``).
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from doctor.programs import FlagSpec, ProgramTable, load_program

COMMAND_FACTS = {
    "cmd.program": "program the planned/logged command runs (lmdeploy, streamlit, python...)",
    "cmd.subcommand": "lmdeploy subcommand, e.g. `serve api_server`",
    "cmd.model": "model path or hub id given to the command",
    "cmd.model_is_local": "whether the model argument is an existing local folder",
    "cmd.argv": "the command as a list of arguments",
    "cmd.flag.*": "value of a flag given on the command line (true for switches)",
    "cmd.port": "port the command will listen on (given or default)",
    "cmd.bind_host": "address the command will bind",
    "cmd.backend": "inference backend requested (turbomind | pytorch)",
    "cmd.lmdeploy_version": "lmdeploy version the command was interpreted against",
    "cmd.unknown_flags": "flags that do not exist for this subcommand in that lmdeploy version",
    "cmd.flag_history": "for unknown flags: `--flag: added in X` / `removed in Y` notes",
    "cmd.subcommand_removed_in": "version that removed the subcommand, when it no longer exists",
    "cmd.subcommand_added_in": "version that introduced the subcommand, when it is newer than the installed one",
    "cmd.invalid_choices": "flag values outside the choices of that version (`--calib-dataset ptb`)",
    "cmd.env.*": "environment assignments written before the command (VAR=value cmd ...)",
}

_PYTHONS = ("python", "python3")


@dataclass
class Token:
    """A parsed flag occurrence: where it sits in argv and how many values follow it."""

    flag: str
    index: int
    values: List[str]
    inline: bool  # written as --flag=value


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

    # -- reading -----------------------------------------------------------------------------
    def get_flag(self, name: str) -> Optional[str]:
        """Last value given for a flag (``"true"`` for switches); ``name`` with or without dashes."""
        flag = _dashed(name)
        for tok in reversed(self.tokens):
            if tok.flag == flag:
                return " ".join(tok.values) if tok.values else "true"
        return None

    def has_flag(self, name: str) -> bool:
        return self.get_flag(name) is not None

    def spec(self, name: str) -> Optional[FlagSpec]:
        if self.table is None:
            return None
        return self.table.flag(self.subcommand, _dashed(name), self.version)

    def default(self, name: str) -> Optional[str]:
        spec = self.spec(name)
        return None if spec is None or spec.default is None else str(spec.default)

    def value(self, name: str) -> Optional[str]:
        """Given value, else this version's default."""
        given = self.get_flag(name)
        return given if given is not None else self.default(name)

    @property
    def model(self) -> Optional[str]:
        if self.program in ("lmdeploy",) and self.positionals:
            return self.positionals[0]
        return None

    @property
    def model_is_local(self) -> bool:
        return bool(self.model) and os.path.isdir(self.model)

    @property
    def port(self) -> Optional[int]:
        if self.program == "streamlit":
            raw = self.get_flag("server.port") or self.env.get("STREAMLIT_SERVER_PORT") or "8501"
        elif self.program == "lmdeploy":
            raw = self.value("server-port")
            if raw is None and self.subcommand.startswith("serve "):
                raw = {"serve gradio": "6006", "serve proxy": "8000"}.get(self.subcommand, "23333")
        else:
            raw = self.get_flag("server-port") or self.get_flag("port") or self.env.get("GRADIO_SERVER_PORT")
        return int(raw) if raw and str(raw).isdigit() else None

    @property
    def bind_host(self) -> Optional[str]:
        if self.program == "streamlit":
            return self.get_flag("server.address") or "0.0.0.0"
        return self.value("server-name") or ("0.0.0.0" if self.port else None)

    @property
    def unknown_flags(self) -> List[str]:
        if self.table is None or not self.table.has_subcommand(self.subcommand, self.version):
            return []
        known = self.table.flags(self.subcommand, self.version)
        return [t.flag for t in self.tokens if t.flag not in known and t.flag not in ("-h", "--help")]

    def shell(self) -> str:
        """The command as one shell line (env assignments first)."""
        return " ".join(shlex.quote(a) for a in self.argv)

    # -- editing (each returns a new Command; the original stays untouched) ---------------
    def with_flag(self, name: str, value: Optional[str] = None) -> "Command":
        """Set a flag's value (replacing every occurrence) or add it; ``value=None`` for a switch."""
        flag = _dashed(name)
        argv = list(self.argv)
        occurrences = [t for t in self.tokens if t.flag == flag]
        if occurrences:
            first = occurrences[0]
            for tok in reversed(occurrences[1:]):
                del argv[tok.index: tok.index + 1 + (0 if tok.inline else len(tok.values))]
            if value is None:
                new = [flag]
            elif first.inline:
                new = [f"{flag}={value}"]
            else:
                new = [flag, str(value)]
            argv[first.index: first.index + 1 + (0 if first.inline else len(first.values))] = new
        else:
            argv += [flag] if value is None else [flag, str(value)]
        return parse(argv, version=self.version)

    def without_flag(self, name: str) -> "Command":
        flag = _dashed(name)
        argv = list(self.argv)
        for tok in sorted((t for t in self.tokens if t.flag == flag), key=lambda t: -t.index):
            del argv[tok.index: tok.index + 1 + (0 if tok.inline else len(tok.values))]
        return parse(argv, version=self.version)

    def with_env(self, name: str, value: str) -> "Command":
        env_part = [a for a in self.argv[: self.start] if "=" in a and not a.startswith("-")]
        rest = self.argv[len(env_part):]
        env_part = [a for a in env_part if a.split("=", 1)[0] != name] + [f"{name}={value}"]
        return parse(env_part + rest, version=self.version)

    def with_positional(self, index: int, value: str) -> "Command":
        """Replace a positional argument (e.g. the model path after quantizing)."""
        argv = list(self.argv)
        positions = _positional_indices(self)
        argv[positions[index]] = value
        return parse(argv, version=self.version)

    def with_subcommand(self, subcommand: str, positionals: Sequence[str]) -> "Command":
        """Same program/launcher, another subcommand and positionals, no flags (for `lite auto_awq` etc.)."""
        launcher = self.argv[: self.start]
        return parse(launcher + subcommand.split() + list(positionals), version=self.version)


def _dashed(name: str) -> str:
    return name if name.startswith("-") else "--" + name


def _positional_indices(cmd: Command) -> List[int]:
    taken = set()
    for tok in cmd.tokens:
        taken.add(tok.index)
        if not tok.inline:
            taken.update(range(tok.index + 1, tok.index + 1 + len(tok.values)))
    sub_len = len(cmd.subcommand.split()) if cmd.subcommand else 0
    return [i for i in range(cmd.start + sub_len, len(cmd.argv)) if i not in taken]


def _split_launcher(argv: List[str]) -> Tuple[Dict[str, str], str, int]:
    """Leading VAR=value assignments, the program name, and where its own arguments start."""
    env: Dict[str, str] = {}
    i = 0
    if argv and os.path.basename(argv[0]) == "env":
        i = 1
    while i < len(argv) and "=" in argv[i] and not argv[i].startswith("-") and argv[i].split("=", 1)[0].isidentifier():
        key, value = argv[i].split("=", 1)
        env[key] = value
        i += 1
    if i >= len(argv):
        return env, "", i
    head = os.path.basename(argv[i])
    if head.startswith(_PYTHONS):
        j = i + 1
        while j < len(argv) and argv[j].startswith("-") and argv[j] != "-m":
            j += 1
        if j + 1 < len(argv) and argv[j] == "-m":
            module = argv[j + 1]
            # `python -m lmdeploy.cli` is lmdeploy; `python -m http.server` stays http.server.
            head_module = module.split(".")[0]
            return env, head_module if load_program(head_module) is not None else module, j + 2
        if j < len(argv):
            return env, "python", j
        return env, "python", j
    return env, head, i + 1


def parse(argv: Sequence[str], version: Optional[str] = None) -> Command:
    """Parse a command line (list of arguments) with the flag table of ``version``."""
    argv = [str(a) for a in argv]
    env, program, start = _split_launcher(argv)
    cmd = Command(argv=argv, program=program, env=env, start=start, version=version)
    table = load_program(program) if program else None
    cmd.table = table
    rest = argv[start:]
    if table is not None:
        cmd.subcommand = table.match_subcommand(rest)
    elif program == "streamlit" and rest[:1] == ["run"]:
        cmd.subcommand = "run"
    elif program == "python" and rest:
        cmd.subcommand = ""
    offset = start + (len(cmd.subcommand.split()) if cmd.subcommand else 0)
    i = offset
    known = table.flags(cmd.subcommand, version) if table is not None else {}
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            cmd.positionals += argv[i + 1:]
            break
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            flag, eq, inline_value = arg.partition("=")
            if eq:
                cmd.tokens.append(Token(flag, i, [inline_value], True))
                i += 1
                continue
            spec = known.get(flag)
            values: List[str] = []
            j = i + 1
            if spec is not None and spec.nargs == 0:
                pass
            elif spec is not None and spec.nargs in ("+", "*"):
                while j < len(argv) and not (argv[j].startswith("-") and not _is_number(argv[j])):
                    values.append(argv[j])
                    j += 1
            elif spec is not None and spec.nargs == "?":
                if j < len(argv) and not argv[j].startswith("-"):
                    values.append(argv[j])
                    j += 1
            else:  # nargs 1, or an unknown flag: take one value unless the next token is a flag
                if j < len(argv) and (not argv[j].startswith("-") or _is_number(argv[j])):
                    values.append(argv[j])
                    j += 1
            cmd.tokens.append(Token(flag, i, values, False))
            i = j
            continue
        cmd.positionals.append(arg)
        i += 1
    return cmd


def parse_shell(line: str, version: Optional[str] = None) -> Command:
    """Parse a shell line, tolerating backslash-newline continuations and stray quotes."""
    line = line.replace("\\\n", " ").replace("\\\r\n", " ")
    try:
        parts = shlex.split(line)
    except ValueError:
        parts = line.split()
    return parse(parts, version=version)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


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
        backend = cmd.get_flag("backend")
        if backend:
            facts["cmd.backend"] = backend
        facts["cmd.unknown_flags"] = cmd.unknown_flags
        history = [table.flag_history(cmd.subcommand, f) for f in cmd.unknown_flags]
        facts["cmd.flag_history"] = [h for h in history if h]
        if cmd.version and not table.has_subcommand(cmd.subcommand, cmd.version):
            removed = table.subcommand_until(cmd.subcommand)
            added = table.subcommand_since(cmd.subcommand)
            if removed:
                facts["cmd.subcommand_removed_in"] = removed
            if added:
                facts["cmd.subcommand_added_in"] = added
        facts["cmd.invalid_choices"] = table.invalid_choices(cmd)
    return facts
