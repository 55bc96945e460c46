"""User-facing strings of ``lmdoctor envs`` (English and Simplified Chinese), keyed by stable codes.

The codes also appear in the JSON (``code`` of problems and reasons), so scripts branch on them
rather than on the wording.
"""
from __future__ import annotations

from doctor.i18n import Text

PROBLEMS = {
    "unreadable_dir": {"en": "cannot read {path}: {error}", "zh": "无法读取 {path}：{error}"},
    "symlink_loop": {"en": "{path}: symlink loop, not followed", "zh": "{path}：符号链接成环，未继续进入"},
    "stale_entry": {"en": "{path} is listed in {source} but does not exist",
                    "zh": "{path} 记录在 {source} 中，但已不存在"},
    "bad_condarc": {"en": "{path}: cannot read envs_dirs ({error})", "zh": "{path}：无法读取 envs_dirs（{error}）"},
    "no_python": {"en": "no Python interpreter in {path}", "zh": "{path} 中没有 Python 解释器"},
    "dangling_python": {"en": "{link} points to {target}, which does not exist",
                        "zh": "{link} 指向的 {target} 不存在"},
    "no_site_packages": {"en": "no site-packages folder under {path}", "zh": "{path} 下没有 site-packages 目录"},
    "unreadable_site": {"en": "cannot read {path}: {error}", "zh": "无法读取 {path}：{error}"},
    "missing_metadata": {"en": "{meta} has no {file} (an interrupted install?)",
                         "zh": "{meta} 缺少 {file}（安装被中断？）"},
    "no_metadata_module": {"en": "{module} is importable from {path} but has no package metadata",
                           "zh": "{module} 可从 {path} 导入，但没有包元数据"},
    "python_version_unknown": {"en": "Python version unknown (no pyvenv.cfg version, conda record or lib/pythonX.Y)",
                               "zh": "无法确定 Python 版本（没有 pyvenv.cfg 版本、conda 记录或 lib/pythonX.Y）"},
}

REASONS = {
    "broken": {"en": "broken: {problem}", "zh": "环境已损坏：{problem}"},
    "program_missing": {"en": "{program} is not installed", "zh": "未安装 {program}"},
    "subcommand_removed": {"en": "`lmdeploy {sub}` was removed in {until} (this env has {version})",
                           "zh": "`lmdeploy {sub}` 已在 {until} 中移除（此环境为 {version}）"},
    "subcommand_added": {"en": "`lmdeploy {sub}` needs lmdeploy >= {since} (this env has {version})",
                         "zh": "`lmdeploy {sub}` 需要 lmdeploy >= {since}（此环境为 {version}）"},
    "subcommand_needs": {"en": "`lmdeploy {sub}` needs {packages}, not installed",
                         "zh": "`lmdeploy {sub}` 需要 {packages}，但未安装"},
    "model_removed": {"en": "lmdeploy dropped {family} in {removed_in} (this env has {version})",
                      "zh": "lmdeploy 在 {removed_in} 中移除了 {family} 支持（此环境为 {version}）"},
    "turbomind_required": {"en": "{family} runs only on TurboMind, and this lmdeploy has no TurboMind extension",
                           "zh": "{family} 只能用 TurboMind 运行，而此环境的 lmdeploy 没有 TurboMind 扩展"},
    "turbomind_backend": {"en": "{family} runs only on TurboMind, but the command asks for --backend pytorch",
                          "zh": "{family} 只能用 TurboMind 运行，但命令指定了 --backend pytorch"},
    "missing_packages": {"en": "{family} needs {packages}, not installed", "zh": "{family} 需要 {packages}，但未安装"},
    "torch_missing": {"en": "torch is not installed (lmdeploy imports it)", "zh": "未安装 torch（lmdeploy 依赖它）"},
    "out_of_range": {"en": "{package} {installed} is outside lmdeploy {version}'s range {spec}",
                     "zh": "{package} {installed} 不在 lmdeploy {version} 支持的范围 {spec} 内"},
    "transformers_pt": {"en": "transformers {installed} is outside the PyTorch engine's tested window {spec}",
                        "zh": "transformers {installed} 不在 PyTorch 引擎测试过的范围 {spec} 内"},
    "unknown_release": {"en": "lmdeploy {version} is not in lmdoctor's compatibility table",
                        "zh": "lmdeploy {version} 不在 lmdoctor 的兼容性表中"},
    "driver_too_old": {"en": "driver {driver} is too old for {who}'s CUDA {build} build (needs {needs})",
                       "zh": "驱动 {driver} 太旧，无法运行 {who} 的 CUDA {build} 版本（需要 {needs}）"},
    "gpu_build": {"en": "{who}'s CUDA {build} build has no kernels for this GPU (needs a CUDA {needs} build)",
                  "zh": "{who} 的 CUDA {build} 版本没有适合此 GPU 的内核（需要 CUDA {needs} 版本）"},
    "duplicates": {"en": "{package} has several metadata folders side by side ({versions}): a half-finished upgrade",
                   "zh": "{package} 有多个并存的元数据目录（{versions}）：升级没有完成"},
    "no_turbomind": {"en": "lmdeploy has no TurboMind extension: only the PyTorch engine works",
                     "zh": "lmdeploy 没有 TurboMind 扩展：只能使用 PyTorch 引擎"},
    "ready": {"en": "all requirements met", "zh": "满足全部要求"},
}

UI = {
    "title": {"en": "lmdoctor envs", "zh": "lmdoctor envs"},
    "for_job": {"en": "for", "zh": "任务"},
    "env": {"en": "env", "zh": "环境"},
    "path": {"en": "path", "zh": "路径"},
    "verdict": {"en": "verdict", "zh": "结论"},
    "reason": {"en": "main reason", "zh": "主要原因"},
    "ready": {"en": "ready", "zh": "可用"},
    "warnings": {"en": "ready, warnings", "zh": "可用（有警告）"},
    "unsuitable": {"en": "not suitable", "zh": "不适用"},
    "broken": {"en": "broken", "zh": "已损坏"},
    "best": {"en": "Best environment", "zh": "最合适的环境"},
    "use_it": {"en": "Use it", "zh": "使用方法"},
    "or_run": {"en": "or run directly", "zh": "或直接运行"},
    "already_here": {"en": "the environment you are in is the best one; no switch needed",
                     "zh": "当前环境就是最合适的，无需切换"},
    "none_ready": {"en": "No environment on this machine is ready for this job.",
                   "zh": "本机没有适合此任务的环境。"},
    "none_found": {"en": "No Python environment found.", "zh": "没有找到 Python 环境。"},
    "not_scanned": {"en": "Could not look into", "zh": "无法检查"},
    "current": {"en": "current", "zh": "当前"},
    "scanned": {"en": "{n} environment(s) scanned in {ms} ms", "zh": "扫描了 {n} 个环境，用时 {ms} ms"},
}


def text(table: dict, code: str, **fmt: object) -> str:
    """Render one entry in the current language with its placeholders filled."""
    return Text(table[code]).get().format(**fmt)
