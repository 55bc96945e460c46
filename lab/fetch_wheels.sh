#!/usr/bin/env bash
# Fetch what real lmdeploy (PyTorch engine) needs on the offline GPU machine, beyond its image.
#
# Usage (here, where PyPI is reachable):  lab/fetch_wheels.sh .lab
#   DEST must be a git-ignored folder inside the repo (.lab/ is in .gitignore); the lead carries it.
# Produces DEST/whl/*.whl (cp312 manylinux wheels, --no-deps) and DEST/lmdeploy_src.tgz (lmdeploy's
# Python code without the TurboMind extension), then checks the closure with lab/wheelcheck.py.
#
# Why these and no others: the GPU image (torch 2.11+cu130, transformers 5.17, triton 3.6, numpy,
# safetensors, tokenizers, einops, timm, accelerate, aiohttp, peft, pillow, protobuf, sentencepiece,
# tiktoken, prometheus-client, opencv, httpx, anyio, h11, click, rich, pyyaml, ...) already has the rest
# of lmdeploy 0.18.0's Requires-Dist; lab/wheelcheck.py lists each requirement and where it is met.
# The list and its pins are in lab/wheels.txt (exact versions seen working there, with the reasons).
set -euo pipefail
dest=${1:?usage: lab/fetch_wheels.sh DEST   (a git-ignored folder in the repo, e.g. .lab)}
version=${LMDEPLOY_VERSION:-0.18.0}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dest/whl"
plat=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
      --platform manylinux1_x86_64 --platform any)
python3 -m pip download -q --no-deps "${plat[@]}" -d "$dest/whl" -r "$here/wheels.txt"
# lmdeploy's wheel is ~107 MB, almost all of it the TurboMind extension, which needs CUDA 12 cuBLAS
# (libcublas.so.12) that the CUDA 13 image lacks; only the Python part travels (~1.3 MB) and lmdeploy
# falls back to its PyTorch engine ("Fallback to pytorch engine because turbomind is not built").
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps "${plat[@]}" -d "$tmp" "lmdeploy==$version"
(cd "$tmp" && unzip -q lmdeploy-*.whl -x 'lmdeploy/turbomind/*.so' 'lmdeploy/turbomind/lib64/*' \
  && tar czf lmdeploy_src.tgz lmdeploy lmdeploy-*.dist-info)
mv "$tmp/lmdeploy_src.tgz" "$dest/"
python3 "$here/wheelcheck.py" "$dest"
du -sh "$dest"
