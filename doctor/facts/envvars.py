"""Environment variables that change how LMDeploy, CUDA and the Hugging Face hub behave.

Anything that looks secret is recorded only as present (``<set>``); proxy URLs keep their host but
lose their credentials, so a snapshot can be pasted into an issue as it is (``doctor/redact.py``
decides what is secret, for every output of lmdoctor).
"""
from __future__ import annotations

from typing import Dict, Mapping

from doctor.facts import ProbeContext, ProbeResult, probe
from doctor.redact import env_value

NAMES = {
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTORCH_CUDA_ALLOC_CONF",
    "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE", "MODELSCOPE_CACHE", "LMDEPLOY_USE_MODELSCOPE", "VIRTUAL_ENV", "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "ALL_PROXY", "all_proxy", "OMP_NUM_THREADS", "TRITON_CACHE_DIR", "TORCH_CUDA_ARCH_LIST",
}
PREFIXES = ("LMDEPLOY_", "TM_", "NCCL_", "HF_", "CUDA_", "TRANSFORMERS_", "TORCH_", "TRITON_", "STREAMLIT_",
            "GRADIO_", "OPENAI_")


def interesting(name: str) -> bool:
    return name in NAMES or name.startswith(PREFIXES)


def snapshot(environ: Mapping[str, str]) -> Dict[str, str]:
    return {name: env_value(name, value) for name, value in environ.items() if interesting(name)}


@probe("envvars", {"env.*": "value of a relevant environment variable (secrets recorded as <set>)"})
def env_facts(ctx: ProbeContext) -> ProbeResult:
    return ProbeResult({f"env.{name}": value for name, value in snapshot(ctx.environ).items()})
