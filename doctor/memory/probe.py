"""The `fit` probe (stage 2): the memory model's answer for the planned command, as ``fit.*`` facts.

It runs after the knowledge joins of stage 1 and reads the planned command (``ctx.planned``), the GPU,
host and package facts, and the planning options ``--vram`` / ``--gpu`` / ``--gpu-slice`` /
``--backend`` (``plan.*`` facts that ``check`` adds before the derived stages). The MEM rules in
``rules/memory/`` decide what to tell; ``check`` puts ``fit.report`` into the JSON as the top-level
``fit`` object. When the fit cannot be predicted, ``fit.verdict`` is ``unknown`` and the facts the
rules need are *unknown* with the reason, so those rules say "couldn't check" instead of passing.
"""
from __future__ import annotations

from doctor.facts import ProbeContext, ProbeResult, probe

PLAN_FACTS = {
    "plan.vram_mib": "GPU memory to plan for, per GPU (check --vram), MiB",
    "plan.gpu": "GPU card to plan for (check --gpu, rules/knowledge/gpu-cards.yaml)",
    "plan.gpu_slice": "fraction of the GPU to plan for (check --gpu-slice, e.g. 0.3 = a 30% slice)",
    "plan.backend": "engine to plan for (check --backend turbomind|pytorch)",
}

FIT_FACTS = {
    "fit.verdict": "fits | fits_with_changes | does_not_fit | unknown (for the planned command)",
    "fit.job": "serve | quantize (what the planned command does)",
    "fit.reason": "one line: why the verdict",
    "fit.unknown_reason": "why the fit could not be predicted",
    "fit.report": "the whole fit object of the JSON output",
    "fit.predicted_peak_mib": "predicted peak GPU memory per GPU (full prefill, one image for a VLM), MiB",
    "fit.predicted_ready_mib": "predicted GPU memory per GPU right after start-up, MiB",
    "fit.available_mib": "GPU memory available to the launch per GPU, MiB",
    "fit.total_mib": "total memory of the planned GPU, MiB",
    "fit.headroom_mib": "available minus predicted peak, MiB (negative: does not fit)",
    "fit.margin_mib": "safety margin the search keeps free, MiB",
    "fit.weights_mib": "language-model weights per GPU, MiB",
    "fit.vision_mib": "vision tower and projector weights per GPU, MiB",
    "fit.kv_cache_mib": "KV cache per GPU, MiB",
    "fit.runtime_mib": "engine runtime buffers per GPU (TurboMind buffers / PyTorch graphs + reserve), MiB",
    "fit.overhead_mib": "CUDA context and communication buffers per GPU, MiB",
    "fit.image_activation_mib": "vision activations of one image of the largest tiling, MiB",
    "fit.kv_capacity_tokens": "tokens the KV cache holds",
    "fit.session_len": "session_len the launch will use (given or default)",
    "fit.image_tokens": "tokens one image of the largest tiling takes (VLMs)",
    "fit.failed_stage": "first stage that runs out: weights | kv_cache | runtime | image | image_tokens | settings | none",
    "fit.failed_detail": "what the failing stage allocates",
    "fit.need_mib": "memory the failing stage needs, MiB",
    "fit.have_mib": "memory left for the failing stage, MiB",
    "fit.fits_text": "whether everything but images fits (a VLM can serve text)",
    "fit.fits_when_idle": "whether the launch would fit without the other processes on the GPU",
    "fit.other_mib": "memory other processes hold on the GPUs used, MiB",
    "fit.min_vram_mib": "least memory per GPU on which the command as given fits, MiB",
    "fit.model": "model name the shape belongs to",
    "fit.model_source": "where the model's shape came from (config.json, safetensors headers, catalogue)",
    "fit.backend": "engine the launch will use (after lmdeploy's automatic fallback)",
    "fit.lmdeploy_version": "lmdeploy version whose memory semantics were used",
    "fit.hardware": "where the GPU numbers come from (live NVML, --vram, --gpu...)",
    "fit.suggested_command": "cheapest command that fits (quantize-then-serve when the weights cannot fit)",
    "fit.suggested_changes": "the suggested command's changes, e.g. `--cache-max-entry-count 0.8 → 0.4`",
    "fit.suggestion_flags": "the suggested change as {flag: value}, for rule fixes (`edit: {set_flags_from: ...}`)",
    "fit.suggested_pipeline": "Python pipeline(...) equivalent of the suggested settings",
    "fit.suggestion_kind": "ratio | quant_policy | prefill | session_len | max_batch_size | tp | combined",
    "fit.suggestion_holds_session": "whether the suggested KV cache holds a full session",
    "fit.suggestion_holds_image": "whether the suggested launch can take one image (VLMs)",
    "fit.suggested_kv_tokens": "tokens the suggested KV cache holds",
    "fit.quantize_command": "the `lmdeploy lite auto_awq` command (quantize first)",
    "fit.quantize_work_dir": "where the quantized model goes",
    "fit.quantize_host_ram_mib": "host RAM `lite auto_awq` needs, MiB",
    "fit.quantize_gpu_mib": "GPU memory `lite auto_awq` needs, MiB",
    "fit.quantize_disk_mib": "disk space the quantized model takes, MiB",
    "fit.quantize_host_ram_ok": "whether this machine has that host RAM free",
    "fit.quantize_gpu_ok": "whether the GPU has that memory free",
    "fit.quantize_disk_ok": "whether the work dir's disk has that space free",
    "fit.quantize_host_ram_have_mib": "host RAM available, MiB",
    "fit.quantize_gpu_have_mib": "GPU memory available, MiB",
    "fit.quantize_disk_have_mib": "disk space free at the work dir, MiB",
    "fit.quantized_serve_command": "the serving command for the quantized folder",
    "fit.quantized_fits": "whether the quantized model fits (with one image for a VLM)",
    "fit.quantized_fits_text": "whether the quantized model fits for text",
    "fit.quantized_peak_mib": "predicted peak of the quantized launch, MiB",
}

# Facts the MEM rules test; they become *unknown* (with the reason) when the fit cannot be predicted.
RULE_INPUTS = ("fit.failed_stage", "fit.kv_capacity_tokens", "fit.session_len", "fit.headroom_mib",
               "fit.fits_when_idle", "fit.quantize_host_ram_ok", "fit.quantize_gpu_ok", "fit.quantize_disk_ok")


@probe("fit", {**FIT_FACTS, **PLAN_FACTS}, stage=2, timeout_s=3.0)
def fit_facts(ctx: ProbeContext) -> ProbeResult:
    if ctx.planned is None:          # nothing to predict: skip importing the memory model (start-up time)
        return ProbeResult({})
    from doctor.memory.assess import assess, job_of
    if job_of(ctx.planned) is None:
        return ProbeResult({})
    result = assess(ctx.facts, ctx.planned)
    if result is None:
        return ProbeResult({})
    if result.facts.get("fit.verdict") == "unknown":
        reason = f"fit: {result.facts.get('fit.unknown_reason')}"
        return ProbeResult(result.facts, {name: reason for name in RULE_INPUTS})
    return ProbeResult(result.facts)
