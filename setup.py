"""Packaging shim: ships the top-level rules/ folder inside the wheel as the package doctor._rules.

pyproject.toml cannot express "find the doctor packages and add one mapped package", so this does.
It also writes doctor/_rules/_bundle.json into the build: the YAML data files pre-parsed, which
`lmdoctor check` reads instead of parsing ~50 YAML files at every start (see doctor/yamlio.py).
"""
import importlib.util
import json
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithBundle(build_py):
    def run(self):
        super().run()
        rules = os.path.join(self.build_lib, "doctor", "_rules")
        if not os.path.isdir(rules):  # editable installs read the checkout's YAML directly
            return
        spec = importlib.util.spec_from_file_location("_lmdoctor_yamlio", os.path.join("doctor", "yamlio.py"))
        yamlio = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(yamlio)
        with open(os.path.join(rules, yamlio.BUNDLE), "w", encoding="utf-8") as fh:
            json.dump(yamlio.build_bundle(rules), fh, ensure_ascii=False, separators=(",", ":"))


setup(packages=find_packages(include=["doctor", "doctor.*"]) + ["doctor._rules"],
      cmdclass={"build_py": BuildPyWithBundle})
