"""Names of the facts a log contributes (``log.*``); the explain pipeline fills them in."""

LOG_FACTS = {
    "log.lmdeploy_version": "lmdeploy version printed in the log (check_env output, tracebacks' paths)",
    "log.backend": "engine the log shows (turbomind | pytorch)",
    "log.command": "launch command found in the log",
}
