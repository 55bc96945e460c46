"""Will it fit? LMDeploy's GPU memory model, the search for the cheapest change, and the `fit` probe.

The question every user of an 8/24/40 GiB slice asks before launching: does
``lmdeploy serve api_server MODEL --cache-max-entry-count R --quant-policy Q ...`` fit here, and if
not, what is the cheapest change that does? The pieces, one job each:

* ``shapes``     model shapes from a local folder (config.json + safetensors headers, never the weights)
* ``catalogue``  the built-in shapes of popular models (rules/knowledge/model-shapes.yaml)
* ``semantics``  what each lmdeploy version does (rules/knowledge/memory.yaml)
* ``terms``      the memory terms: weights, vision tower, KV cache, runtime buffers, images...
* ``hardware``   the GPU planned for: live NVML facts, or ``--vram`` / ``--gpu`` / ``--gpu-slice``
* ``launch``     the planned command's settings, with each version's defaults
* ``predict``    the terms put together, stage by stage, as lmdeploy allocates them
* ``search``     the cheapest rewritten command that fits; ``quantize`` the "quantize first" plan
* ``probe``      the stage-2 probe that turns all this into ``fit.*`` facts for the MEM rules
"""
from __future__ import annotations

MIB = 1 << 20
GIB = 1 << 30


def mib(nbytes: float) -> float:
    """Bytes to MiB (floats: the terms are summed before rounding)."""
    return nbytes / MIB
