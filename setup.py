"""Packaging shim: ships the top-level rules/ folder inside the wheel as the package doctor._rules.

pyproject.toml cannot express "find the doctor packages and add one mapped package", so this does.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["doctor", "doctor.*"]) + ["doctor._rules"])
