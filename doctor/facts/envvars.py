"""Environment variables that change how LMDeploy, CUDA and the Hugging Face hub behave.

Anything that looks secret is recorded only as present (``<set>``); proxy URLs keep their host but
lose their credentials, so a snapshot can be pasted into an issue as it is.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping

from doctor.facts import ProbeContext, ProbeResult, probe

NAMES = {
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTORCH_CUDA_ALLOC_CONF",
    "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE", "MODELSCOPE_CACHE", "LMDEPLOY_USE_MODELSCOPE", "VIRTUAL_ENV", "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "ALL_PROXY", "all_proxy", "OMP_NUM_THREADS", "TRITON_CACHE_DIR", "TORCH_CUDA_ARCH_LIST",
}
PREFIXES = ("LMDEPLOY_", "TM_", "NCCL_", "HF_", "CUDA_", "TRANSFORMERS_", "TORCH_", "TRITON_", "STREAMLIT_",
            "GRADIO_", "OPENAI_")
SECRET = re.compile(r"TOKEN|KEY|SECRET|PASSW|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
# user[:password]@ in a URL, with or without a scheme (`http_proxy=user:pass@proxy:3128` works for curl/pip).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)?(?P<userinfo>[^/\s,;]+)@", re.I)


def redact_value(name: str, value: str) -> str:
    """What may be shown of a variable: `<set>` for secrets, URLs without user:password."""
    if SECRET.search(name):
        return "<set>"
    return _URL_CREDENTIALS.sub(lambda m: (m.group("scheme") or "") + "***@", value)


def interesting(name: str) -> bool:
    return name in NAMES or name.startswith(PREFIXES)


def snapshot(environ: Mapping[str, str]) -> Dict[str, str]:
    return {name: redact_value(name, value) for name, value in environ.items() if interesting(name)}


@probe("envvars", {"env.*": "value of a relevant environment variable (secrets recorded as <set>)"})
def env_facts(ctx: ProbeContext) -> ProbeResult:
    return ProbeResult({f"env.{name}": value for name, value in snapshot(ctx.environ).items()})
