"""Python facts: the examined interpreter, its env, and which `lmdeploy` the shell would run."""
from __future__ import annotations

import os
import shutil

from doctor.facts import ProbeContext, ProbeResult, probe


def _shebang_python(script: str) -> str:
    """The interpreter named on a console script's first line ('' when unreadable)."""
    try:
        with open(script, "rb") as fh:
            first = fh.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    if not first.startswith("#!"):
        return ""
    parts = first[2:].split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return shutil.which(parts[1]) or parts[1]
    return parts[0] if parts else ""


@probe("python", {
    "py.version": "Python version of the examined interpreter (e.g. 3.10.13)",
    "py.executable": "path of the examined interpreter",
    "py.prefix": "sys.prefix of the examined interpreter",
    "py.implementation": "CPython, PyPy...",
    "py.env.kind": "venv | conda | system",
    "py.env.name": "conda env or venv name",
    "py.runs": "whether the interpreter started (false for a broken env)",
    "py.error": "why the interpreter could not start",
    "py.is_lmdoctor_env": "whether lmdoctor itself runs in the examined env",
    "py.lmdeploy_script": "path of the `lmdeploy` command found on PATH",
    "py.lmdeploy_script_python": "interpreter that `lmdeploy` on PATH runs with",
    "py.lmdeploy_script_matches": "whether `lmdeploy` on PATH belongs to the examined env",
})
def python_facts(ctx: ProbeContext) -> ProbeResult:
    t = ctx.target
    facts = {
        "py.executable": t.python,
        "py.env.kind": t.env_kind,
        "py.runs": t.error is None,
        "py.is_lmdoctor_env": t.is_self,
    }
    for key, value in (("py.version", t.version), ("py.prefix", t.prefix), ("py.implementation", t.implementation),
                       ("py.env.name", t.env_name), ("py.error", t.error)):
        if value:
            facts[key] = value
    script = shutil.which("lmdeploy", path=ctx.environ.get("PATH", os.defpath))
    if script:
        facts["py.lmdeploy_script"] = script
        interp = _shebang_python(script)
        if interp:
            facts["py.lmdeploy_script_python"] = interp
            if t.prefix:
                interp_prefix = os.path.dirname(os.path.dirname(os.path.abspath(interp)))
                facts["py.lmdeploy_script_matches"] = os.path.realpath(interp_prefix) == os.path.realpath(t.prefix) or \
                    os.path.realpath(interp) == os.path.realpath(t.python)
    return ProbeResult(facts)
