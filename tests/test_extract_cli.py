"""tools/extract_lmdeploy_cli.py without the network: the parser worker on a miniature lmdeploy tree,
and the merge of per-version parsers into the committed table format."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from doctor.programs import ProgramTable, validate

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import extract_lmdeploy_cli as tool  # noqa: E402

# A miniature lmdeploy with what makes the real one hard to read statically: a heavy package
# __init__ (torch), mmengine's DictAction and Registry, ArgumentHelper indirection with overridden
# defaults, type=bool, a closure-based type, and nested subparsers built by entrypoint.run().
MINI = {
    "lmdeploy/__init__.py": """
        import torch
        from .version import __version__
        """,
    "lmdeploy/version.py": "__version__ = '9.9.9'\n",
    "lmdeploy/model.py": """
        from mmengine import Registry
        MODELS = Registry('model')

        @MODELS.register_module(name='internlm2')
        class InternLM2:
            @classmethod
            def match(cls, path):
                return 'internlm2' if 'internlm2' in path.lower() else None

        def best_match_model(query):
            for name, model in MODELS.module_dict.items():
                if model.match(query):
                    return model.match(query)
            return 'base'
        """,
    "lmdeploy/cli/__init__.py": "",
    "lmdeploy/cli/utils.py": """
        import argparse
        from mmengine.config import DictAction

        class ArgumentHelper:
            @staticmethod
            def tp(parser, default=1):
                return parser.add_argument('--tp', type=int, default=default)

            @staticmethod
            def policy(parser):
                names = {'none': 0, 'int8': 8}

                def _parse(x):
                    if x.lower() in names:
                        return names[x.lower()]
                    v = int(x)
                    if v not in (0, 4, 8):
                        raise ValueError(x)
                    return v
                return parser.add_argument('--quant-policy', type=_parse, default=0)
        """,
    "lmdeploy/cli/entrypoint.py": """
        import argparse
        import torch.nn as nn
        from .utils import ArgumentHelper, DictAction

        def run():
            parser = argparse.ArgumentParser(prog='lmdeploy')
            parser.add_argument('-v', '--version', action='version', version='9.9.9')
            subs = parser.add_subparsers(dest='command')
            chat = subs.add_parser('chat')
            chat.add_argument('model_path')
            ArgumentHelper.tp(chat, default=2)
            chat.add_argument('--search-scale', type=bool, default=False)
            chat.add_argument('--extra', nargs='*', action=DictAction)
            serve = subs.add_parser('serve').add_subparsers(dest='serve')
            api = serve.add_parser('api_server')
            api.add_argument('model_path')
            ArgumentHelper.tp(api)
            ArgumentHelper.policy(api)
            api.add_argument('--backend', choices=['pytorch', 'turbomind'], default='turbomind')
            api.add_argument('--eager-mode', action='store_true')
            parser.parse_args()
        """,
}


needs_310 = pytest.mark.skipif(sys.version_info < (3, 10), reason="the extraction tool needs Python >= 3.10")


@pytest.fixture(scope="module")
def mini_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmdeploy-src")
    for rel, text in MINI.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_worker(flag: str, src) -> dict:
    proc = subprocess.run([sys.executable, "-I", "-S", "-B", str(REPO / "tools" / "extract_lmdeploy_cli.py"), flag,
                           str(src)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_310
def test_worker_builds_the_parser_with_heavy_imports_stubbed(mini_src):
    raw = run_worker("--worker", mini_src)
    assert set(raw) == {"", "chat", "serve", "serve api_server"}
    chat = raw["chat"]
    assert [p["dest"] for p in chat["positionals"]] == ["model_path"]
    assert chat["flags"]["--tp"]["default"] == 2                      # the helper's default override
    assert chat["flags"]["--search-scale"]["type"] == "bool"
    assert chat["flags"]["--extra"]["action"] == "mmengine.config.DictAction"
    api = raw["serve api_server"]["flags"]
    assert api["--backend"]["choices"] == ["pytorch", "turbomind"]
    assert api["--eager-mode"]["nargs"] == 0 and api["--eager-mode"]["action"] == "store_true"
    assert api["--quant-policy"]["accepts"] == {"0": 0, "4": 4, "8": 8, "none": 0, "int8": 8}
    assert not list(mini_src.rglob("__pycache__"))                    # shared sources stay clean


@needs_310
def test_template_worker_runs_the_real_matcher(mini_src):
    found = run_worker("--worker-templates", mini_src)
    assert found["/root/models/internlm2-chat-1_8b"] == "internlm2"
    assert found["/root/models/my-chat-model"] == "base"


def view(flags_by_sub: dict) -> dict:
    return {"subcommands": {s: {"positionals": [{"name": "model_path", "nargs": 1}], "flags": f}
                            for s, f in flags_by_sub.items()},
            "flexible": False, "root_flags": {}}


def test_merge_builds_ranges_and_skips_identical_posts():
    a = view({"chat": {"--tp": {"nargs": 1, "type": "int", "default": 1}},
              "serve gradio": {"--tp": {"nargs": 1, "type": "int", "default": 1}}})
    b = view({"chat": {"--tp": {"nargs": 1, "type": "int", "default": 1}, "--dtype": {"nargs": 1}},
              "serve gradio": {"--tp": {"nargs": 1, "type": "int", "default": 1}}})
    c = view({"chat": {"--tp": {"nargs": 1, "type": "int", "default": 2}, "--dtype": {"nargs": 1}}})
    views = {"0.1.0": a, "0.1.0.post1": a, "0.2.0": b, "0.2.0.post1": c, "0.3.0": c}
    kept, skipped = tool.select_versions(views)
    assert kept == ["0.1.0", "0.2.0", "0.2.0.post1", "0.3.0"] and skipped == ["0.1.0.post1"]
    table = tool.merge(views, kept)
    chat = table["subcommands"]["chat"]["flags"]
    assert chat["--dtype"] == [{"since": "0.2.0", "nargs": 1}]
    assert chat["--tp"] == [{"until": "0.2.0.post1", "nargs": 1, "type": "int", "default": 1},
                            {"since": "0.2.0.post1", "nargs": 1, "type": "int", "default": 2}]
    gradio = table["subcommands"]["serve gradio"]
    assert gradio["until"] == "0.2.0.post1" and gradio["flags"]["--tp"] == [{"nargs": 1, "type": "int", "default": 1}]
    text = tool.render_yaml(table, skipped)
    loaded = yaml.safe_load(text)
    assert loaded == json.loads(json.dumps(table))
    assert validate(ProgramTable(loaded, "merged")) == []


def test_merge_refuses_a_subcommand_that_comes_back():
    views = {"0.1.0": view({"list": {}}), "0.2.0": view({}), "0.3.0": view({"list": {}})}
    with pytest.raises(RuntimeError, match="comes back"):
        tool.merge(views, ["0.1.0", "0.2.0", "0.3.0"])


def test_committed_table_is_what_the_tool_emits():
    """The committed file is the tool's own rendering (nobody edited it by hand)."""
    text = (REPO / "rules" / "programs" / "lmdeploy.yaml").read_text()
    data = yaml.safe_load(text)
    skipped = text.split("(left out): ", 1)[1].split("\n", 1)[0].split(", ")
    assert tool.render_yaml(data, skipped) == text
