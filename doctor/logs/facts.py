"""Names of the facts `explain` contributes: ``log.*`` read from the log, ``suggest.*`` computed for fixes.

Kept import-free: ``doctor.facts.catalog()`` reads this table for every command (rules are validated
against it), so it must not pull in the log machinery. The values are filled by
``doctor.logs.fusion`` (log facts) and ``doctor.logs.suggest`` (computed values).
"""

LOG_FACTS = {
    # the log itself
    "log.source": "file the log was read from (`-` for stdin)",
    "log.lines": "number of lines in the log",
    "log.failure": "whether the log shows a failure (traceback, crash, ERROR/FATAL line, consequence of one)",
    "log.first_failure_line": "line number of the first failure in the log",
    "log.exception_types": "Python exception types in the log, in order (short names: OutOfMemoryError...)",
    "log.crash": "native crash the log shows: abort | segfault | illegal | bus | fpe | killed | terminate | fatal | assertion",
    "log.user_script": "the user's own script in the tracebacks (first frame outside site-packages/stdlib)",
    "log.nccl_errors": "NCCL error/warning lines (text)",
    # server
    "log.serving": "whether the server reported it was serving (`Uvicorn running on ...`)",
    "log.server_url": "URL the server reported it serves on",
    "log.server_stopped": "whether the server reported a normal shutdown (`Finished server process`)",
    "log.port": "port the server reported it serves on",
    "log.port_in_use": "port the server could not bind (`[Errno 98] ... address already in use`)",
    "log.bind_host": "address of that failed bind (`('0.0.0.0', 23333)`)",
    "log.http_errors": "failed HTTP requests: `POST /v1/chat/completions 404 Not Found (x2)`",
    # launch
    "log.command": "launch command found in the log (shell prompt line, `$ lmdeploy ...`, a command line)",
    "log.command_line": "line number of that command",
    "log.model": "model path or id the log shows (command, or `model_name` of a printed engine config)",
    "log.backend": "engine the log shows (turbomind | pytorch)",
    "log.fallback_to_pytorch": "whether lmdeploy fell back from TurboMind to the PyTorch engine",
    "log.engine_config.*": "a value of a printed TurbomindEngineConfig/PytorchEngineConfig (cache_max_entry_count...)",
    # environment seen in the log (check_env output, traceback paths)
    "log.lmdeploy_version": "lmdeploy version printed in the log (`LMDeploy: 0.18.0+HEAD` of check_env)",
    "log.lmdeploy_build": "full lmdeploy version string of check_env (with the git suffix)",
    "log.lmdeploy_location": "folder of the lmdeploy package the tracebacks run from",
    "log.python_version": "Python version (check_env, or python3.X in traceback paths)",
    "log.env_prefix": "environment prefix in traceback paths (conda env or venv folder)",
    "log.conda_env": "conda env name in traceback paths",
    "log.pkg.*.version": "package version printed by check_env (torch, torchvision, transformers, triton...)",
    "log.cuda_available": "`CUDA available` of check_env",
    "log.nvcc_version": "CUDA toolkit release of check_env's NVCC line",
    "log.gpu.*.name": "GPU name printed by check_env (`GPU 0: NVIDIA H200`)",
    # CUDA out of memory messages
    "log.oom.source": "who reported the out-of-memory: torch | turbomind",
    "log.oom.site": "TurboMind source location of the failed allocation (memory_utils.cu:32, allocator.h:231)",
    "log.oom.gpu": "GPU index in the torch OOM message",
    "log.oom.tried_mib": "allocation that failed (MiB)",
    "log.oom.total_mib": "GPU total capacity in the OOM message (MiB)",
    "log.oom.free_mib": "free GPU memory at the OOM (MiB)",
    "log.oom.self_mib": "memory the failing process held (MiB)",
    "log.oom.other_mib": "memory other processes held, as the OOM message lists them (MiB)",
    "log.oom.other_pids": "PIDs of the other processes the OOM message lists",
    # computed for fixes (doctor/logs/suggest.py)
    "suggest.model": "model of the failed launch (subject command, else the log)",
    "suggest.awq_work_dir": "where `lmdeploy lite auto_awq` should write the 4-bit model (`<model>-4bit`)",
    "suggest.weights_gib": "approximate fp16 weight size of the model (GiB): from its files, else from the size in its name",
    "suggest.gpu_total_mib": "size of the GPU that failed (OOM message, else this machine's largest GPU)",
    "suggest.other_mib": "memory other processes hold on the GPU (OOM message, else live NVML)",
    "suggest.other_share": "that memory as a fraction of the GPU (0..1)",
    "suggest.other_source": "where suggest.other_mib comes from: log | live",
    "suggest.other_processes": "who holds it: `pid 4294 (136.9 GiB)` from the log, or NVML's process list",
    "suggest.current_cache_max_entry_count": "--cache-max-entry-count of the failed launch (given, printed config, or default)",
    "suggest.cache_max_entry_count": "a lower --cache-max-entry-count that leaves the failed allocation room",
    "suggest.current_max_prefill_token_num": "max_prefill_token_num of the failed launch (given, printed, or default)",
    "suggest.max_prefill_token_num": "a smaller max_prefill_token_num (PyTorch engine runtime reserve shrinks with it)",
    "suggest.port": "port that was in use",
    "suggest.free_port": "a port to use instead (tested free on this machine when live facts are used)",
    "suggest.port_holder": "process holding the port, on this machine (live facts)",
    "suggest.served_model": "model name the server answers to (`--model-name`, else the model path)",
    "suggest.idle_gpu": "index of another visible GPU with (almost) all its memory free (live facts)",
}
