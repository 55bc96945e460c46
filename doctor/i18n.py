"""English and Simplified Chinese text.

Rule files carry both languages for every user-facing string (``{en: ..., zh: ...}``); command UI
strings live in :data:`UI`. The language comes from ``--lang``, else ``LMDOCTOR_LANG``, else the
locale (``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` starting with ``zh`` selects Chinese).
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Union

LANGS = ("en", "zh")
_lang: Optional[str] = None


def detect_lang(environ: Optional[Mapping[str, str]] = None) -> str:
    """Pick the language from the environment the way gettext would (first non-empty wins)."""
    env = os.environ if environ is None else environ
    explicit = env.get("LMDOCTOR_LANG", "")
    if explicit in LANGS:
        return explicit
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_lang(lang: Optional[str]) -> None:
    global _lang
    _lang = lang if lang in LANGS else None


def lang() -> str:
    return _lang or detect_lang()


class Text:
    """A user-facing string in several languages; renders in the current language, English as fallback."""

    __slots__ = ("by_lang",)

    def __init__(self, value: Union[str, Mapping[str, str], "Text"]):
        if isinstance(value, Text):
            self.by_lang = dict(value.by_lang)
        elif isinstance(value, str):
            self.by_lang = {"en": value}
        else:
            self.by_lang = {k: str(v) for k, v in value.items()}

    def get(self, language: Optional[str] = None) -> str:
        language = language or lang()
        return self.by_lang.get(language) or self.by_lang.get("en") or next(iter(self.by_lang.values()), "")

    def missing_langs(self) -> list:
        return [code for code in LANGS if not self.by_lang.get(code)]

    def __str__(self) -> str:
        return self.get()

    def __repr__(self) -> str:
        return f"Text({self.by_lang!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and other.by_lang == self.by_lang


# Command UI strings. Keys are stable; add both languages for every key (tests/test_i18n.py enforces
# it, and fails on natural-language literals in doctor/render/ and doctor/commands/ that bypass this
# table). Commands, flags, package names and units stay as they are in Chinese text.
UI = {
    # run output
    "run_verdict_verified": {"en": "verified", "zh": "已验证可用"},
    "run_verdict_not_verified": {"en": "not verified", "zh": "未能验证"},
    "run_verdict_not_fixable": {"en": "cause found, not automatically fixable", "zh": "已找到原因，但无法自动修复"},
    "run_verdict_dry_run": {"en": "dry run (nothing launched)", "zh": "演练（未启动任何进程）"},
    "run_would_run": {"en": "would run", "zh": "将运行"},
    "run_command_that_works": {"en": "command that works", "zh": "可用的命令"},
    "run_exit_code": {"en": "exit code {code}", "zh": "退出码 {code}"},
    "run_attempt": {"en": "attempt {n}: {outcome} after {seconds:.1f}s", "zh": "第 {n} 次尝试：{seconds:.1f} 秒后{outcome}"},
    "run_outcome_exited": {"en": "exited", "zh": "退出"},
    "run_outcome_ready": {"en": "ready", "zh": "就绪"},
    "run_outcome_unhealthy": {"en": "unhealthy", "zh": "不健康"},
    "run_outcome_timeout": {"en": "timed out", "zh": "超时"},
    "run_outcome_interrupted": {"en": "interrupted", "zh": "被中断"},
    "run_log": {"en": "log", "zh": "日志"},
    "run_preflight": {"en": "pre-flight", "zh": "预检"},
    "run_cause": {"en": "cause", "zh": "原因"},
    "run_nothing_to_run": {"en": "nothing to run: lmdoctor run -- COMMAND [ARGS…]", "zh": "没有要运行的命令：lmdoctor run -- 命令 [参数…]"},
    "run_serving": {"en": "verified; serving in the foreground (Ctrl-C stops it and every process it started)",
                    "zh": "已验证；服务在前台运行（Ctrl-C 会停止它及它启动的所有进程）"},
    # explain output
    "explain_lines": {"en": "lines", "zh": "行"},
    "explain_facts": {"en": "facts", "zh": "事实"},
    "explain_this_machine": {"en": "this machine", "zh": "本机"},
    "explain_no_facts": {"en": "none (log only)", "zh": "无（只读日志）"},
    "explain_launch": {"en": "launch", "zh": "启动命令"},
    "explain_evidence": {"en": "Evidence", "zh": "证据"},
    "explain_consequences": {"en": "Consequences (not the cause)", "zh": "后果（不是原因）"},
    "explain_also": {"en": "Also matched", "zh": "同样匹配"},
    "explain_fix": {"en": "Fix", "zh": "修复"},
    "explain_repeated": {"en": "seen {n} times", "zh": "共出现 {n} 次"},
    "explain_harmless": {"en": "harmless", "zh": "无害"},
    "explain_no_failure": {"en": "No failure in this log.", "zh": "日志中没有发现失败。"},
    "explain_hidden": {"en": "{n} harmless warning(s) not shown (--all shows them).", "zh": "有 {n} 条无害警告未显示（使用 --all 查看）。"},
    "explain_unexplained": {"en": "The log shows a failure, but no rule explains it.", "zh": "日志显示有失败，但没有规则能解释它。"},
    "explain_suspicious": {"en": "Most suspicious lines:", "zh": "最可疑的行："},
    "explain_attach": {"en": "Please report it with the log and the output of `lmdoctor facts --json` attached.", "zh": "请提交问题报告，并附上日志和 `lmdoctor facts --json` 的输出。"},
    "explain_read_from_log": {"en": "Read from the log", "zh": "从日志读到"},
    "explain_couldnt": {"en": "couldn't check", "zh": "无法检查"},
    "explain_also_found": {"en": "Also found", "zh": "另外发现"},
    "explain_ignored": {"en": "{n} rule(s) ignored (--ignore/--select or a config file).",
                        "zh": "已忽略 {n} 条规则（--ignore/--select 或配置文件）。"},
    "explain_backend": {"en": "backend", "zh": "后端"},
    "explain_served_at": {"en": "served at", "zh": "服务地址"},
    "explain_no_facts_conflict": {"en": "--no-facts cannot be combined with --facts, --python or --env", "zh": "--no-facts 不能与 --facts、--python 或 --env 同时使用"},
    # memory fit (check)
    "fit_verdict_fits": {"en": "fits", "zh": "放得下"},
    "fit_verdict_fits_with_changes": {"en": "fits with changes", "zh": "修改参数后放得下"},
    "fit_verdict_does_not_fit": {"en": "does not fit", "zh": "放不下"},
    "fit_verdict_unknown": {"en": "couldn't predict", "zh": "无法预测"},
    "fit_labels_weights_mib": {"en": "weights", "zh": "权重"},
    "fit_labels_vision_mib": {"en": "vision tower", "zh": "视觉模型"},
    "fit_labels_kv_cache_mib": {"en": "KV cache", "zh": "KV 缓存"},
    "fit_labels_runtime_mib": {"en": "runtime buffers", "zh": "运行时缓冲"},
    "fit_labels_overhead_mib": {"en": "CUDA context", "zh": "CUDA 上下文"},
    "fit_labels_image_activation_mib": {"en": "one image", "zh": "一张图片"},
    "fit_labels_peak": {"en": "peak", "zh": "峰值"},
    "fit_words_available": {"en": "available", "zh": "可用"},
    "fit_words_of": {"en": "of", "zh": "/"},
    "fit_words_tokens": {"en": "tokens", "zh": "个 token"},
    "fit_words_params": {"en": "params", "zh": "参数"},
    "fit_words_model": {"en": "model", "zh": "模型"},
    "fit_words_per_gpu": {"en": "per GPU", "zh": "每张 GPU"},
    "fit_not_reached": {"en": "not reached: the launch fails before this is allocated", "zh": "未到达：启动在分配这部分之前就已失败"},
    "fit_eager_attention": {"en": "eager attention", "zh": "普通（eager）注意力"},
    "check_plan_needs_command": {"en": "note: --vram/--gpu/--gpu-slice/--backend plan a launch: give it after `--` (lmdoctor check --vram 24GiB -- lmdeploy serve api_server MODEL)", "zh": "注意：--vram/--gpu/--gpu-slice/--backend 用于规划一次启动，请在 `--` 之后给出命令（lmdoctor check --vram 24GiB -- lmdeploy serve api_server MODEL）"},
    # envs usage errors
    "envs_for_needs_command": {"en": "--for needs the command after `--`, e.g. lmdoctor envs --for -- lmdeploy serve gradio MODEL",
                               "zh": "--for 之后需要在 `--` 后给出命令，例如 lmdoctor envs --for -- lmdeploy serve gradio MODEL"},
    "envs_no_such_path": {"en": "--path {path}: no such directory", "zh": "--path {path}：目录不存在"},
    "envs_no_discover_needs_path": {"en": "--no-discover needs at least one --path",
                                    "zh": "使用 --no-discover 时至少需要一个 --path"},
    # check output
    "no_problems": {"en": "No problems found.", "zh": "未发现问题。"},
    "couldnt_check": {"en": "couldn't check", "zh": "无法检查"},
    "evidence": {"en": "Evidence", "zh": "证据"},
    "fix": {"en": "Fix", "zh": "修复"},
    "summary": {"en": "Summary", "zh": "汇总"},
    "errors": {"en": "error(s)", "zh": "个错误"},
    "warnings": {"en": "warning(s)", "zh": "个警告"},
    "infos": {"en": "note(s)", "zh": "条提示"},
    "unchecked": {"en": "couldn't check", "zh": "项无法检查"},
    "passed": {"en": "checks passed", "zh": "项检查通过"},
    "ignored": {"en": "ignored", "zh": "项已忽略"},
    "needs": {"en": "needs", "zh": "需要"},
    "facts_from": {"en": "facts from", "zh": "事实来源"},
    "live_machine": {"en": "this machine", "zh": "本机"},
    "log_line": {"en": "line {n}", "zh": "第 {n} 行"},
    "superseded_by": {"en": "superseded by {rule}", "zh": "已被 {rule} 取代"},
    "also_matched": {"en": "also matched {rule}: {title} ({why})", "zh": "同时匹配 {rule}：{title}（{why}）"},
    # severities and statuses
    "sev_error": {"en": "error", "zh": "错误"},
    "sev_warning": {"en": "warning", "zh": "警告"},
    "sev_info": {"en": "note", "zh": "提示"},
    "sev_unknown": {"en": "couldn't check", "zh": "无法检查"},
    "sev_ok": {"en": "ok", "zh": "正常"},
    # area titles of check
    "area_python": {"en": "Python environment", "zh": "Python 环境"},
    "area_gpu": {"en": "GPU & driver", "zh": "GPU 与驱动"},
    "area_memory": {"en": "GPU memory fit", "zh": "显存是否够用"},
    "area_model": {"en": "Model", "zh": "模型"},
    "area_command": {"en": "Planned command", "zh": "计划执行的命令"},
    "area_host": {"en": "Host", "zh": "主机"},
    "area_network": {"en": "Network & ports", "zh": "网络与端口"},
    "area_runtime": {"en": "Runtime", "zh": "运行时"},
    # one-line summaries of what was seen
    "lmdeploy_missing": {"en": "lmdeploy not installed", "zh": "未安装 lmdeploy"},
    "no_turbomind": {"en": "no TurboMind", "zh": "无 TurboMind"},
    "no_gpu": {"en": "no NVIDIA GPU", "zh": "未检测到 NVIDIA GPU"},
    "gpu_free_of": {"en": "{free} free of {total}", "zh": "空闲 {free} / 共 {total}"},
    "gpu_hidden": {"en": "hidden by CUDA_VISIBLE_DEVICES", "zh": "被 CUDA_VISIBLE_DEVICES 隐藏"},
    "driver": {"en": "driver {version}", "zh": "驱动 {version}"},
    "ram_free_of": {"en": "RAM {free} free of {total}", "zh": "内存空闲 {free} / 共 {total}"},
    "disk_free_here": {"en": "disk {free} free here", "zh": "当前目录磁盘空闲 {free}"},
    "port_state": {"en": "port {port} {state}", "zh": "端口 {port} {state}"},
    "port_free": {"en": "free", "zh": "空闲"},
    "port_taken": {"en": "taken", "zh": "已被占用"},
    "flags_of": {"en": "flags of lmdeploy {version}", "zh": "按 lmdeploy {version} 的参数解析"},
    "fit_needs": {"en": "{verdict}: needs ~{peak}, {available} available",
                  "zh": "{verdict}：需要约 {peak}，可用 {available}"},
    "other_processes_hold": {"en": "other processes hold {used}", "zh": "其他进程占用 {used}"},
    # rules show
    "doc_what": {"en": "What happened", "zh": "发生了什么"},
    "doc_why": {"en": "Why", "zh": "原因"},
    "doc_confirm": {"en": "How to confirm", "zh": "如何确认"},
    "doc_fix": {"en": "How to fix", "zh": "如何修复"},
    "doc_confirm_default": {"en": "Run `lmdoctor check` (or `lmdoctor facts {facts}`) and look for {rule}.",
                            "zh": "运行 `lmdoctor check`（或 `lmdoctor facts {facts}`），查看是否出现 {rule}。"},
    "references": {"en": "References", "zh": "参考"},
    "fix_with_safety": {"en": "{summary} ({safety})", "zh": "{summary}（{safety}）"},
    "safety_auto": {"en": "applied by `lmdoctor run`", "zh": "`lmdoctor run` 可自动应用"},
    "safety_env": {"en": "changes your environment", "zh": "会修改你的环境"},
    "safety_root": {"en": "needs root", "zh": "需要 root 权限"},
    "safety_manual": {"en": "manual", "zh": "需手动处理"},
    # errors and warnings of the commands
    "warning_word": {"en": "warning", "zh": "警告"},
    "err_no_rule": {"en": "no rule {rule!r} (see `lmdoctor rules list`)", "zh": "没有规则 {rule!r}（见 `lmdoctor rules list`）"},
    "err_option_matches_nothing": {"en": "{option} {pattern} matches no rule (see `lmdoctor rules list`)",
                                   "zh": "{option} {pattern} 没有匹配任何规则（见 `lmdoctor rules list`）"},
    "warn_config_matches_nothing": {"en": "{source}: {pattern!r} matches no rule of this lmdoctor version",
                                    "zh": "{source}：{pattern!r} 没有匹配当前 lmdoctor 版本的任何规则"},
    "err_invalid_rule_data": {"en": "invalid rule data: {error}", "zh": "规则数据无效：{error}"},
    "err_cannot_write": {"en": "cannot write {path}: {error}", "zh": "无法写入 {path}：{error}"},
    "err_cannot_read_log": {"en": "cannot read log {path}: {error}", "zh": "无法读取日志 {path}：{error}"},
    "status_reading_log": {"en": "Reading the log…", "zh": "正在读取日志…"},
    "status_scanning_envs": {"en": "Looking for Python environments…", "zh": "正在查找 Python 环境…"},
    "status_waiting": {"en": "Attempt {n}: waiting for `{program}` to become ready…",
                       "zh": "第 {n} 次尝试：等待 `{program}` 就绪…"},
    "status_gathering": {"en": "Looking at this machine…", "zh": "正在检查本机…"},
    # report (Markdown)
    "report_title": {"en": "lmdoctor report", "zh": "lmdoctor 诊断报告"},
    "report_verdict": {"en": "Verdict", "zh": "结论"},
    "report_environment": {"en": "Environment", "zh": "环境"},
    "report_check": {"en": "Pre-flight (`lmdoctor check`)", "zh": "预检（`lmdoctor check`）"},
    "report_planned": {"en": "Planned command", "zh": "计划执行的命令"},
    "report_explain": {"en": "Diagnosis of the log (`lmdoctor explain`)", "zh": "日志诊断（`lmdoctor explain`）"},
    "report_log": {"en": "Log", "zh": "日志"},
    "report_log_tail": {"en": "Last {n} of {total} lines of `{name}`:", "zh": "`{name}` 共 {total} 行，最后 {n} 行："},
    "report_no_explain": {"en": "`lmdoctor explain` is not available in this lmdoctor, so the log is not diagnosed here.",
                          "zh": "此版本的 lmdoctor 没有 `lmdoctor explain`，因此这里未诊断日志。"},
    "report_section_failed": {"en": "The {name} section could not be produced: {error}",
                              "zh": "无法生成 {name} 部分：{error}"},
    "report_item": {"en": "Item", "zh": "项目"},
    "report_value": {"en": "Value", "zh": "值"},
    "report_gpu": {"en": "GPU {index}", "zh": "GPU {index}"},
    "report_host": {"en": "Host", "zh": "主机"},
    "report_env_vars": {"en": "Environment variables", "zh": "环境变量"},
    "report_no_findings": {"en": "No problems found.", "zh": "未发现问题。"},
    "report_unchecked": {"en": "Couldn't check", "zh": "无法检查"},
    "report_ignored": {"en": "Ignored (by --ignore/--select or a config file)", "zh": "已忽略（--ignore/--select 或配置文件）"},
    "report_redacted": {"en": "Secrets, home directories, user and host names were redacted (`--no-redact` keeps them).",
                        "zh": "已隐去密钥、主目录、用户名和主机名（使用 `--no-redact` 可保留）。"},
    "report_not_redacted": {"en": "Not redacted (`--no-redact`): check for secrets before sharing.",
                            "zh": "未脱敏（`--no-redact`）：分享前请检查是否包含密钥。"},
    "report_generated": {"en": "Generated by lmdoctor {version}. {redaction}", "zh": "由 lmdoctor {version} 生成。{redaction}"},
    "report_written": {"en": "report written to {path}", "zh": "报告已写入 {path}"},
    "report_packages": {"en": "Other packages", "zh": "其他包"},
    "report_facts_from": {"en": "Facts from", "zh": "事实来源"},
    "not_installed": {"en": "not installed", "zh": "未安装"},
}


def tr(key: str, **fmt: object) -> str:
    """Translate a UI key into the current language, formatting ``{name}`` placeholders."""
    text = Text(UI[key]).get()
    return text.format(**fmt) if fmt else text
