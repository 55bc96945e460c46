# Prepare real lmdeploy on the offline GPU machine. SOURCE it (it exports PYTHONPATH):
#   . lab/setup.sh [DEST]          DEST: the carried folder made by lab/fetch_wheels.sh (default .lab)
# Installs DEST/whl/*.whl into $LAB_SITE (default /tmp/site) with --no-index --no-deps --target, unpacks
# lmdeploy's Python code next to them, restores DEST/triton_cache.tgz when present, exports PYTHONPATH and
# checks that lmdeploy's server and engine modules import. Returns non-zero (never exits the shell) on
# failure, so `. lab/setup.sh && python3 lab/matrix.py ...` stops early instead of wasting GPU minutes.
_lab_setup() {
  local dest=${1:-.lab} site=${LAB_SITE:-/tmp/site} t0
  t0=$(date +%s)
  if [ ! -d "$dest/whl" ] || [ ! -f "$dest/lmdeploy_src.tgz" ]; then
    echo "setup: $dest/whl or $dest/lmdeploy_src.tgz missing: run lab/fetch_wheels.sh $dest where PyPI works, and carry $dest" >&2
    return 2
  fi
  mkdir -p "$site" || return 1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    --target "$site" "$dest"/whl/*.whl || { echo "setup: pip install into $site failed" >&2; return 1; }
  tar xzf "$dest/lmdeploy_src.tgz" -C "$site" || return 1
  case ":${PYTHONPATH:-}:" in *":$site:"*) ;; *) export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" ;; esac
  if [ -f "$dest/triton_cache.tgz" ]; then
    mkdir -p "$HOME/.triton" && tar xzf "$dest/triton_cache.tgz" -C "$HOME/.triton" && echo "setup: triton cache restored"
  fi
  python3 - <<'PY' || { echo "setup: lmdeploy does not import (see above)" >&2; return 1; }
import importlib.metadata as md, sys
import lmdeploy
from lmdeploy.serve.openai import api_server  # fastapi, uvicorn, pydantic, openai protocol
from lmdeploy.pytorch.engine import engine  # torch, triton, zmq
vers = {d: md.version(d) for d in ("torch", "transformers", "triton", "fastapi", "pydantic", "openai")}
print("setup: lmdeploy", lmdeploy.__version__, "from", lmdeploy.__file__, "| python", sys.version.split()[0], "|",
      " ".join(f"{k} {v}" for k, v in vers.items()))
PY
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/setup: GPU /'
  echo "setup: disk free $(df -h /tmp | awk 'NR==2 {print $4}'), PYTHONPATH=$PYTHONPATH, $(( $(date +%s) - t0 )) s"
}
_lab_setup "$@"
