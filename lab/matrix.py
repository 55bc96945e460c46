"""Run a matrix of real lmdeploy launches on a GPU and record each one (measurement records + full logs).

Usage: python3 lab/matrix.py lab/scenarios/NAME.yaml [--out DIR] [--budget 550] [--only ID,...] [--dry-run]

For each launch of the scenario: build its random-weight checkpoint (lab/mkmodel.py, once), set the
emulated slice (lab/ballast.py, one long-lived process resized between launches), start the command as its
own process group, sample NVML used memory at 50 Hz from start until after the requests, detect ready
(HTTP /v1/models, or the pipeline script's LAB_READY line) / failed (exit or a fatal log line) / timeout,
send the requests (or the scenario's client), kill the whole group, wait for the memory to come back and
write one JSON line in the shared measurement format (briefs/measurement-format.md) plus the log.

After every launch the whole result is packed again into OUT/lab-NAME.tar.gz (paths as in the repo:
fixtures/measurements/*.jsonl, fixtures/lab/NAME/*), so a run stopped at its time limit keeps what it
measured. The time budget counts from $LAB_T0 (epoch seconds, set it first thing in the device command)
or from the runner's start: a launch whose estimate does not fit is skipped, never cut off mid-way.
Without a usable NVML (LAB_NO_NVML=1, or no GPU) the memory fields are null: the self-test uses that.
"""
from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import client as lab_client  # noqa: E402
import mkmodel  # noqa: E402

MIB = 1 << 20
DEFAULT_PORT = 23333
# Lines after which a launch is as good as dead: give it fatal_grace_s to finish printing, then end it.
DEFAULT_FATAL = [r"address already in use", r"CUDA out of memory", r"OutOfMemoryError", r"No enough gpu memory",
                 r"RPCServerDeadError", r"An attempt has been made to start a new process", r"check failed!"]
ENGINE_FLAGS = {"cache_max_entry_count": "--cache-max-entry-count", "quant_policy": "--quant-policy",
                "session_len": "--session-len", "max_batch_size": "--max-batch-size",
                "max_prefill_token_num": "--max-prefill-token-num", "eager_mode": "--eager-mode", "tp": "--tp"}
ENGINE_DEFAULTS = {"cache_max_entry_count": 0.8, "quant_policy": 0, "session_len": None, "max_batch_size": None,
                   "max_prefill_token_num": None, "eager_mode": False, "tp": 1}
LAUNCH_KEYS = {"id", "model", "entry", "script", "engine", "extra_args", "env", "slice_gib", "free_mib",
               "timeout_s", "log_level", "requests", "client", "block_port", "hide_site_entries", "category",
               "expect", "fatal_patterns", "fatal_grace_s", "est_s", "notes", "port"}
MODEL_KEYS = {"shape", "fill", "config_patch"}
CLIENT_KEYS = {"model", "prompt_chars", "max_tokens", "openai"}
SCENARIO_KEYS = {"name", "kind", "description", "budget_s", "defaults", "models", "launches"}


class ScenarioError(ValueError):
    """A scenario file that cannot be run as written."""


# ----------------------------------------------------------------------------------------------- scenario
def load_scenario(path: Path, shapes_file: Path = mkmodel.SHAPES_FILE) -> dict:
    """Read and validate a scenario; unknown keys are errors so a typo fails here, not on the GPU."""
    import yaml
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: {e}")
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: not a mapping")
    _no_unknown(doc, SCENARIO_KEYS, f"{path}")
    for key in ("name", "kind", "models", "launches"):
        if key not in doc:
            raise ScenarioError(f"{path}: missing {key!r}")
    if doc["kind"] not in ("calibration", "failures"):
        raise ScenarioError(f"{path}: kind must be calibration or failures")
    shapes = mkmodel.load_shapes(shapes_file)
    if not isinstance(doc["models"], dict) or not isinstance(doc["launches"], list):
        raise ScenarioError(f"{path}: models is a mapping and launches a list")
    for name, spec in doc["models"].items():
        _no_unknown(spec, MODEL_KEYS, f"{path}: model {name}")
        if spec.get("shape") not in shapes:
            raise ScenarioError(f"{path}: model {name}: unknown shape {spec.get('shape')!r}")
        if spec.get("fill", "random") not in ("random", "zeros"):
            raise ScenarioError(f"{path}: model {name}: fill must be random or zeros")
        patch = spec.get("config_patch")
        if patch is not None and patch != "truncate" and not isinstance(patch, dict):
            raise ScenarioError(f"{path}: model {name}: config_patch is 'truncate' or a mapping")
    defaults = doc.get("defaults") or {}
    _no_unknown(defaults, LAUNCH_KEYS, f"{path}: defaults")
    launches, seen = [], set()
    for raw in doc["launches"]:
        launch = dict(defaults, **raw)
        launch["engine"] = dict(defaults.get("engine") or {}, **(raw.get("engine") or {}))
        where = f"{path}: launch {launch.get('id')}"
        _no_unknown(launch, LAUNCH_KEYS, where)
        _no_unknown(launch["engine"], set(ENGINE_FLAGS), where + " engine")
        if not launch.get("id") or launch["id"] in seen or not re.fullmatch(r"[A-Za-z0-9._-]+", launch["id"]):
            raise ScenarioError(f"{where}: id missing, repeated or not [A-Za-z0-9._-]")
        seen.add(launch["id"])
        if launch.get("model") not in doc["models"]:
            raise ScenarioError(f"{where}: model {launch.get('model')!r} is not in models")
        launch.setdefault("entry", "api_server")
        if launch["entry"] not in ("api_server", "pipeline"):
            raise ScenarioError(f"{where}: entry must be api_server or pipeline")
        if launch.get("client") is not None:
            _no_unknown(launch["client"], CLIENT_KEYS, where + " client")
            if launch["entry"] != "api_server":
                raise ScenarioError(f"{where}: a client needs entry api_server")
        if "slice_gib" in launch and "free_mib" in launch:
            raise ScenarioError(f"{where}: give slice_gib or free_mib, not both")
        if launch.get("expect", "any") not in ("ready", "failed", "timeout", "any"):
            raise ScenarioError(f"{where}: expect must be ready, failed, timeout or any")
        launches.append(launch)
    doc["launches"] = launches
    return doc


def _no_unknown(mapping: dict, allowed: set, where: str) -> None:
    if not isinstance(mapping, dict):
        raise ScenarioError(f"{where}: expected a mapping")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")


# ---------------------------------------------------------------------------------------------------- GPU
class Gpu:
    """NVML reads of device 0; every method answers None when NVML cannot be used (no GPU, LAB_NO_NVML)."""

    def __init__(self) -> None:
        self.nvml = None
        if os.environ.get("LAB_NO_NVML") == "1":
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.nvml = pynvml
        except Exception:  # no library, no driver, no device: memory is then unknown, not an error
            self.nvml = None

    def info(self) -> Optional[dict]:
        if not self.nvml:
            return None
        n, h = self.nvml, self.handle
        name = n.nvmlDeviceGetName(h)
        driver = n.nvmlSystemGetDriverVersion()
        major, minor = n.nvmlDeviceGetCudaComputeCapability(h)
        return {"name": name.decode() if isinstance(name, bytes) else name,
                "total_mib": n.nvmlDeviceGetMemoryInfo(h).total // MIB,
                "driver": driver.decode() if isinstance(driver, bytes) else driver, "cc": f"{major}.{minor}"}

    def used_free(self) -> Tuple[Optional[int], Optional[int]]:
        if not self.nvml:
            return None, None
        mem = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
        return mem.used // MIB, mem.free // MIB

    def key(self) -> str:
        info = self.info()
        if not info:
            return "nogpu"
        m = re.search(r"\b([A-Z]\d{2,4}[A-Z]?)\b", info["name"])
        return (m.group(1) if m else re.sub(r"[^a-z0-9]+", "-", info["name"].lower())).lower()


class Sampler(threading.Thread):
    """Samples NVML used memory at `hz` into (seconds since start, MiB) pairs until stopped."""

    def __init__(self, gpu: Gpu, hz: float = 50.0) -> None:
        super().__init__(daemon=True)
        self.gpu, self.period = gpu, 1.0 / hz
        self.samples: List[Tuple[float, int]] = []
        self.t0 = time.time()
        self._stop_event = threading.Event()

    def run(self) -> None:
        if not self.gpu.nvml:
            return
        while not self._stop_event.is_set():
            used = self.gpu.used_free()[0]
            self.samples.append((time.time() - self.t0, used))
            self._stop_event.wait(self.period)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(2.0)

    def peak(self, until: Optional[float] = None) -> Optional[int]:
        vals = [u for t, u in list(self.samples) if until is None or t <= until]
        return max(vals) if vals else None

    def last(self) -> Optional[int]:
        return self.samples[-1][1] if self.samples else None

    def csv(self) -> str:
        """Only the samples where the value changes (and the last one): a compact timeline."""
        lines, prev = ["t_s,used_mib"], None
        samples = list(self.samples)
        for i, (t, u) in enumerate(samples):
            if u != prev or i == len(samples) - 1:
                lines.append(f"{t:.3f},{u}")
                prev = u
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ ballast
class BallastProc:
    """lab/ballast.py --serve: one torch process holding memory, resized by a line on its stdin."""

    def __init__(self, log_path: Path, argv: Optional[List[str]] = None) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = log_path
        self.argv = argv or [sys.executable, str(HERE / "ballast.py"), "--serve"]

    def _reply(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"ballast did not answer in {timeout:.0f} s (see {self.log_path.name})")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ballast exited (see {self.log_path.name})")
        return json.loads(line)

    def set(self, leave_mib: Optional[int]) -> dict:
        if self.proc is None:
            with open(self.log_path, "ab") as err:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                             text=True, start_new_session=True)
            self._reply(90)
        self.proc.stdin.write(("none" if leave_mib is None else str(leave_mib)) + "\n")
        self.proc.stdin.flush()
        reply = self._reply(60)
        if "error" in reply:
            raise RuntimeError(f"ballast: {reply['error']}")
        return reply

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None


# ---------------------------------------------------------------------------------------------- processes
def kill_tree(proc: subprocess.Popen, term_wait: float = 4.0) -> None:
    """End the launched command: its process group and every descendant, by pid (SIGTERM, then SIGKILL)."""
    pids = {proc.pid}
    try:
        import psutil
        pids |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    except Exception:  # psutil missing or the process already gone: the group kill still covers it
        pass
    _signal_all(proc.pid, pids, signal.SIGTERM)
    deadline = time.time() + term_wait
    while time.time() < deadline and (proc.poll() is None or any(_alive(p) for p in pids - {proc.pid})):
        time.sleep(0.1)
    _signal_all(proc.pid, pids, signal.SIGKILL)
    proc.wait()


def _signal_all(pgid: int, pids: set, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def hold_port(port: int) -> socket.socket:
    """Take the port the way another server would (bound and listening), for the port_in_use capture."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    return s


def site_without(entries: List[str], pythonpath: str, dest: Path) -> str:
    """PYTHONPATH where the site folder that holds `entries` (glob patterns) is replaced by a copy made of
    symlinks to everything else: the package is really absent, as after `pip uninstall`."""
    parts = [p for p in pythonpath.split(os.pathsep) if p]
    for i, part in enumerate(parts):
        folder = Path(part)
        if not folder.is_dir():
            continue
        names = os.listdir(folder)
        hidden = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in entries)]
        if not hidden:
            continue
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for n in names:
            if n not in hidden:
                os.symlink(folder / n, dest / n)
        parts[i] = str(dest)
        return os.pathsep.join(parts)
    raise ScenarioError(f"none of {entries} found in a PYTHONPATH folder ({pythonpath or 'PYTHONPATH empty'})")


def python3() -> str:
    """'python3' when that is this interpreter (commands then read as users type them), else its path."""
    found = shutil.which("python3")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python3"
    return sys.executable


# ------------------------------------------------------------------------------------------------- runner
class Runner:
    def __init__(self, scenario: dict, scenario_path: Path, out: Path, work: Path, models_dir: Path,
                 budget: float, t0: float, port: int, shapes_file: Path = mkmodel.SHAPES_FILE) -> None:
        self.sc, self.scenario_path, self.shapes_file = scenario, scenario_path, shapes_file
        self.out, self.work, self.models_dir = out, work, models_dir
        self.t0, self.deadline, self.port = t0, t0 + budget, port
        self.gpu = Gpu()
        self.name = scenario["name"]
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        self.logdir = work / "fixtures" / "lab" / self.name
        if scenario["kind"] == "calibration":
            self.records_path = work / "fixtures" / "measurements" / f"lab-{self.date}-{self.gpu.key()}-{self.name}.jsonl"
        else:
            self.records_path = self.logdir / "records.jsonl"
        self.ballast = BallastProc(self.logdir / "ballast.log")
        self.built: Dict[str, dict] = {}
        self.summary: List[str] = []
        self.pace: List[float] = []  # actual / estimated seconds of the launches done so far
        self.give_up = 2
        self.versions = self._versions()
        self.gpu_info = self.gpu.info()

    # -- environment facts
    @staticmethod
    def _versions() -> dict:
        from importlib import metadata
        out = {"python": ".".join(map(str, sys.version_info[:3]))}
        for dist in ("torch", "transformers", "triton", "lmdeploy"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = None
        return out

    def remaining(self) -> float:
        return self.deadline - time.time()

    def say(self, line: str) -> None:
        stamp = f"[{time.time() - self.t0:5.0f}s] "
        print(stamp + line, flush=True)
        self.summary.append(stamp + line)

    # -- models
    def model(self, key: str) -> Tuple[Path, dict]:
        if key in self.built:
            return self.models_dir / key, self.built[key]
        spec = self.sc["models"][key]
        shape = mkmodel.get_shape(spec["shape"], self.shapes_file)
        path = self.models_dir / key
        info = mkmodel.write_model(path, shape, spec.get("fill", "random"))
        patch = spec.get("config_patch")
        if patch is not None:
            cfg_path = path / "config.json"
            text = json.dumps(mkmodel.hf_config(shape), indent=2)
            if patch == "truncate":  # an interrupted download / a bad copy: invalid JSON
                cfg_path.write_text(text[: len(text) // 2])
            else:
                cfg = json.loads(text)
                cfg.update(patch)
                cfg_path.write_text(json.dumps(cfg, indent=2))
        info = dict(info, patch=patch)
        self.built[key] = info
        self.say(f"model {key}: {spec['shape']} fill={info['fill']} {info['weights_bytes'] / 1e9:.2f} GB "
                 f"in {info['seconds']:.1f} s{' (reused)' if info.get('reused') else ''}")
        return path, info

    def model_cost(self, key: str) -> float:
        if key in self.built:
            return 0.0
        spec = self.sc["models"][key]
        if spec.get("fill", "random") == "zeros":
            return 1.0
        return mkmodel.param_count(mkmodel.get_shape(spec["shape"], self.shapes_file)) * 2 / 1.0e9

    # -- commands
    def command(self, launch: dict, model_path: Path) -> Tuple[List[str], Dict[str, str], str]:
        engine = launch.get("engine") or {}
        if launch["entry"] == "api_server":
            argv = [python3(), "-m", "lmdeploy", "serve", "api_server", str(model_path), "--backend", "pytorch"]
            port = launch.get("port", self.port)
            if port != DEFAULT_PORT:
                argv += ["--server-port", str(port)]
            if launch.get("log_level"):
                argv += ["--log-level", launch["log_level"]]
        else:
            script = launch.get("script", "lab/pipeline_app.py")
            argv = [python3(), script, str(model_path)]
        for key, flag in ENGINE_FLAGS.items():
            if key not in engine or engine[key] is None:
                continue
            if key == "eager_mode":
                argv += [flag] if engine[key] else []
            else:
                argv += [flag, str(engine[key])]
        argv += [str(a) for a in launch.get("extra_args") or []]
        env_extra = {k: str(v) for k, v in (launch.get("env") or {}).items()}
        if launch.get("hide_site_entries"):
            env_extra["PYTHONPATH"] = site_without(launch["hide_site_entries"], os.environ.get("PYTHONPATH", ""),
                                                   self.work / "site-hides" / launch["id"])
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env_extra.items())
        return argv, env_extra, (shown + " " if shown else "") + shlex.join(argv)

    # -- one launch
    def settle(self, ceiling: Optional[int] = None, timeout: float = 20.0) -> float:
        """Wait until device memory is steady and back under `ceiling` (what was used before the launch)."""
        t0 = time.time()
        if not self.gpu.nvml:
            return 0.0
        prev = None
        while time.time() - t0 < timeout:
            used = self.gpu.used_free()[0]
            if used == prev and (ceiling is None or used <= ceiling + 64):
                break
            prev = used
            time.sleep(0.2)
        return time.time() - t0

    def estimate(self, launch: dict) -> float:
        """The launch's est_s scaled by how the launches so far compared with theirs (0.7x to 1.5x)."""
        factor = min(1.5, max(0.7, sum(self.pace) / len(self.pace))) if self.pace else 1.0
        return float(launch.get("est_s", 60)) * factor + self.model_cost(launch["model"])

    def run_launch(self, launch: dict) -> Optional[dict]:
        est = self.estimate(launch)
        t_begin = time.time()
        if est > self.remaining():
            self.say(f"SKIP {launch['id']}: needs ~{est:.0f} s, {self.remaining():.0f} s left")
            return None
        t_model = time.time()
        model_path, minfo = self.model(launch["model"])
        build_s = time.time() - t_model
        slice_mib = launch.get("free_mib")
        if slice_mib is None and launch.get("slice_gib") is not None:
            slice_mib = int(float(launch["slice_gib"]) * 1024)
        ballast_mib = 0
        if slice_mib is not None and self.gpu.nvml:
            ballast_mib = self.ballast.set(slice_mib)["held_mib"]
        elif self.ballast.pid is not None:
            self.ballast.stop()
            self.settle()
        waited = 0.0
        port = launch.get("port", self.port)
        while launch["entry"] == "api_server" and not port_free(port) and waited < 15:
            time.sleep(0.5)
            waited += 0.5
        argv, env_extra, shown = self.command(launch, model_path)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **env_extra)
        samples = [self.gpu.used_free() for _ in range(5)]
        base_used = min((u for u, _ in samples if u is not None), default=None)
        free_start = samples[-1][1]
        log_path = self.logdir / f"{launch['id']}.log"
        timeout = min(float(launch.get("timeout_s", 180)), self.remaining() - 20)
        clipped = timeout < float(launch.get("timeout_s", 180))
        blocker = hold_port(port) if launch.get("block_port") else None
        fatal_res = [re.compile(p) for p in DEFAULT_FATAL + list(launch.get("fatal_patterns") or [])]
        grace = float(launch.get("fatal_grace_s", 8))
        sampler = Sampler(self.gpu)
        sampler.start()
        t_start = time.time()
        client_section, requests, client_failed, fatal_line = "", [], False, None
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=str(REPO), start_new_session=True)
        try:
            state, t_ready, fatal_at = "timeout", None, None
            while time.time() - t_start < timeout:
                text = log_path.read_bytes().decode("utf-8", "replace")
                if launch["entry"] == "api_server":
                    if lab_client.list_models(port, timeout=1.0) is not None:
                        state, t_ready = "ready", time.time()
                        break
                elif "LAB_READY" in text:
                    state, t_ready = "ready", time.time()
                    break
                if proc.poll() is not None:
                    state = "failed"
                    break
                if fatal_at is None:
                    for rx in fatal_res:
                        m = rx.search(text)
                        if m:
                            fatal_at, fatal_line = time.time(), m.group(0)
                            break
                elif time.time() - fatal_at > grace:
                    state = "failed"
                    break
                time.sleep(0.25)
            ready_used = sampler.last()
            t_ready_rel = (t_ready - sampler.t0) if t_ready else None
            if state == "ready":
                if launch["entry"] == "pipeline":
                    while proc.poll() is None and "LAB_DONE" not in log_path.read_bytes().decode("utf-8", "replace") \
                            and time.time() - t_start < timeout:
                        time.sleep(0.25)
                    # started but did not finish its generations: not a healthy run
                    client_failed = "LAB_DONE" not in log_path.read_bytes().decode("utf-8", "replace")
                elif launch.get("client") is not None:
                    client_section, client_failed = self.run_client(launch["client"], port)
                elif launch.get("requests", "standard") == "standard":
                    requests = lab_client.standard_requests(port, (launch.get("engine") or {}).get("session_len"))
                time.sleep(0.5)
        finally:
            kill_tree(proc)
            sampler.stop()
            if blocker is not None:
                blocker.close()
        settle_s = self.settle(base_used)
        if fatal_line is None:  # a launch that exited at once: name its fatal line all the same
            text = log_path.read_bytes().decode("utf-8", "replace")
            fatal_line = next((m.group(0) for m in (rx.search(text) for rx in fatal_res) if m), None)
        if client_section:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(client_section)
        outcome = "failed" if (state == "ready" and client_failed) else state
        record = self.record(launch, minfo, shown, ballast_mib, slice_mib, base_used, free_start, sampler,
                             ready_used, t_ready_rel, t_ready - t_start if t_ready else None, outcome, proc.returncode,
                             requests, log_path, fatal_line)
        if clipped and outcome == "timeout":
            record["notes"] = "; ".join(filter(None, [record.get("notes"), f"timeout cut to {timeout:.0f} s by the run's budget"]))
        (self.logdir / f"{launch['id']}.mem.csv").write_text(sampler.csv())
        with open(self.records_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.pace.append((time.time() - t_begin - build_s) / float(launch.get("est_s", 60)))
        expect = launch.get("expect", "any")
        flag = "" if expect in ("any", outcome) else f"  UNEXPECTED (expected {expect})"
        ok = sum(1 for r in requests if r.get("status") == 200)
        self.say(f"{launch['id']}: {outcome}{flag} ttr={_fmt(record.get('seconds_to_ready'))}s "
                 f"base={_fmt(base_used)} peak={_fmt(record['peak_used_mib'])} engine={_fmt(record['engine_mib'])} MiB"
                 f"{f' req {ok}/{len(requests)}' if requests else ''}{f' [{fatal_line}]' if fatal_line else ''}"
                 f" settle={settle_s:.1f}s")
        return record

    def run_client(self, spec: dict, port: int) -> Tuple[str, bool]:
        argv = [python3(), "lab/client.py", "--port", str(port), "--model", str(spec.get("model", "auto")),
                "--max-tokens", str(spec.get("max_tokens", 16))]
        if spec.get("prompt_chars"):
            argv += ["--prompt-chars", str(spec["prompt_chars"])]
        if spec.get("openai", True):
            argv.append("--openai")
        try:
            res = subprocess.run(argv, cwd=str(REPO), capture_output=True, timeout=120,
                                 env=dict(os.environ, PYTHONUNBUFFERED="1"))
            output = (res.stdout + res.stderr).decode("utf-8", "replace")
            rc = res.returncode
        except subprocess.TimeoutExpired as e:
            output, rc = ((e.stdout or b"") + (e.stderr or b"")).decode("utf-8", "replace") + "\n(timed out)", None
        head = f"\n===== lab client: {shlex.join(argv)} (exit {rc}) =====\n"
        return head + output + ("" if output.endswith("\n") else "\n"), rc != 0

    def record(self, launch, minfo, shown, ballast_mib, slice_mib, base_used, free_start, sampler, ready_used,
               t_ready_rel, seconds_to_ready, outcome, exit_code, requests, log_path, fatal_line) -> dict:
        shape = minfo["shape"]
        engine = dict(ENGINE_DEFAULTS, **(launch.get("engine") or {}))
        peak = sampler.peak()
        rec = {
            "id": f"{self.name}/{launch['id']}",
            "source": f"lab/matrix.py {self.scenario_path.name} on {self.gpu_info['name'] if self.gpu_info else 'no GPU'} "
                      f"{self.date}",
            "lmdeploy_version": self.versions.get("lmdeploy"),
            "backend": "pytorch",
            "entry": launch["entry"],
            "model": {"name": f"{shape['name']}-shape", "architecture": shape["architecture"],
                      "layers": shape["layers"], "hidden": shape["hidden"], "heads": shape["heads"],
                      "kv_heads": shape["kv_heads"], "head_dim": shape["head_dim"],
                      "intermediate": shape["intermediate"], "vocab": shape["vocab"], "dtype": "bfloat16",
                      "params": minfo["params"], "weights_bytes": minfo["weights_bytes"],
                      "tie_embeddings": shape["tie_embeddings"], "fill": minfo["fill"]},
            "settings": {k: engine[k] for k in ENGINE_DEFAULTS},
            "command": shown,
            "gpu": self.gpu_info,
            "versions": {k: v for k, v in self.versions.items() if k != "lmdeploy"},
            "ballast_mib": ballast_mib,
            "slice_mib": slice_mib,
            "free_mib_at_start": free_start,
            "base_used_mib": base_used,
            "peak_used_mib": peak,
            "engine_mib": (peak - base_used) if peak is not None and base_used is not None else None,
            "peak_startup_mib": sampler.peak(until=t_ready_rel) if t_ready_rel is not None else peak,
            "ready_used_mib": ready_used if t_ready_rel is not None else None,
            "outcome": outcome,
            "seconds_to_ready": round(seconds_to_ready, 1) if seconds_to_ready is not None else None,
            "exit_code": exit_code,
            "log": str(log_path.relative_to(self.work)),
        }
        if minfo.get("patch") is not None:
            rec["model"]["config_patch"] = minfo["patch"]
        if requests:
            rec["requests_ok"] = sum(1 for r in requests if r.get("status") == 200)
            rec["requests_total"] = len(requests)
            rec["prompt_tokens_max"] = max((r.get("prompt_tokens") or 0) for r in requests)
        if launch.get("category"):
            rec["category"] = launch["category"]
        notes = [launch["notes"]] if launch.get("notes") else []
        if fatal_line:
            notes.append(f"fatal line seen: {fatal_line}")
        if slice_mib is not None:
            notes.append(f"slice emulated by lab/ballast.py leaving {slice_mib} MiB free")
        if notes:
            rec["notes"] = "; ".join(notes)
        return rec

    # -- output
    def pack(self) -> Path:
        (self.logdir / "summary.txt").write_text("\n".join(self.summary) + "\n")
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / f"lab-{self.name}.tar.gz"
        tmp = target.with_suffix(".tmp")
        with tarfile.open(tmp, "w:gz") as tf:
            tf.add(str(self.work / "fixtures"), arcname="fixtures")
        os.replace(tmp, target)
        shutil.copy(self.logdir / "summary.txt", self.out / f"summary-{self.name}.txt")
        return target

    def save_triton_cache(self, limit_mib: int = 15) -> None:
        """Pack ~/.triton/cache into OUT/triton_cache.tgz (if small enough) so later runs skip compiling:
        lab/setup.sh restores it from the carried folder. Same GPU arch and Triton version only."""
        cache = Path(os.environ.get("TRITON_CACHE_DIR", Path.home() / ".triton" / "cache"))
        if not cache.is_dir():
            return
        target = self.out / "triton_cache.tgz"
        with tarfile.open(target, "w:gz") as tf:
            tf.add(str(cache), arcname="cache")
        size = target.stat().st_size
        if size > limit_mib * MIB:
            target.unlink()
            self.say(f"triton cache {size / MIB:.1f} MiB: over {limit_mib} MiB, not saved")
        else:
            self.say(f"triton cache saved: {target} ({size / MIB:.1f} MiB)")

    def run(self, launches: List[dict]) -> int:
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.scenario_path, self.logdir / "scenario.yaml")
        env = {"gpu": self.gpu_info, "versions": self.versions, "argv": sys.argv, "pythonpath": os.environ.get("PYTHONPATH"),
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        (self.logdir / "env.json").write_text(json.dumps(env, indent=1))
        self.say(f"scenario {self.name}: {len(launches)} launches, {self.remaining():.0f} s budget, "
                 f"GPU {self.gpu_info['name'] if self.gpu_info else 'none (NVML off)'}, lmdeploy {self.versions['lmdeploy']}")
        done, misses = 0, 0
        try:
            for launch in launches:
                try:
                    record = self.run_launch(launch)
                except (ScenarioError, RuntimeError, OSError) as e:
                    self.say(f"ERROR {launch['id']}: {e}")
                    record = None
                if record is not None:
                    done += 1
                    expect = launch.get("expect", "any")
                    # Only a run that has not yet seen one expected outcome can give up: the set-up is broken.
                    misses = misses + 1 if misses >= 0 and expect not in ("any", record["outcome"]) else -1
                self.pack()
                if self.give_up and misses >= self.give_up:
                    self.say(f"GIVING UP: the first {misses} launches all went unexpectedly; the set-up looks "
                             "broken (read their logs) and the rest would waste GPU time")
                    break
        finally:
            self.ballast.stop()
            self.say(f"done: {done}/{len(launches)} launches recorded")
            target = self.pack()
        print(f"packed {target}", flush=True)
        return 0 if done == len(launches) else 1  # 1: some launch skipped (budget) or not run (error)


def _fmt(v) -> str:
    return "-" if v is None else str(v)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="run a lab scenario (real lmdeploy launches) and record them")
    ap.add_argument("scenario", help="lab/scenarios/NAME.yaml")
    ap.add_argument("--out", default=os.environ.get("OUT", "lab-out"), help="where the tarball goes (default $OUT)")
    ap.add_argument("--work", default="/tmp/lab/work", help="working folder for records and logs")
    ap.add_argument("--models-dir", default="/tmp/lab/models", help="where checkpoints are written")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds from $LAB_T0 (or now) for the whole run (default: the scenario's budget_s, else 550)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--shapes", default=str(mkmodel.SHAPES_FILE), help="model shapes table (default lab/shapes.yaml)")
    ap.add_argument("--only", default="", help="comma-separated launch ids to run (default: all)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (commands, estimates) and exit")
    ap.add_argument("--give-up", type=int, default=2,
                    help="stop when the first N launches all end unexpectedly (0: never; default 2)")
    ap.add_argument("--save-triton-cache", action="store_true",
                    help="also write OUT/triton_cache.tgz (carry it as .lab/triton_cache.tgz next time)")
    args = ap.parse_args(argv)
    try:
        sc = load_scenario(Path(args.scenario), Path(args.shapes))
    except ScenarioError as e:
        print(f"matrix: {e}", file=sys.stderr)
        return 2
    launches = sc["launches"]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {la["id"] for la in launches}
        if unknown:
            print(f"matrix: unknown launch id(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        launches = [la for la in launches if la["id"] in wanted]
    t0 = float(os.environ.get("LAB_T0") or time.time())
    work = Path(args.work) / sc["name"]
    if work.exists() and not args.dry_run:
        shutil.rmtree(work)
    budget = args.budget if args.budget is not None else float(sc.get("budget_s", 550))
    runner = Runner(sc, Path(args.scenario), Path(args.out), work, Path(args.models_dir), budget, t0, args.port,
                    Path(args.shapes))
    runner.give_up = args.give_up
    if args.dry_run:
        total, costed = 0.0, set()
        for la in launches:
            cost = float(la.get("est_s", 60)) + (0.0 if la["model"] in costed else runner.model_cost(la["model"]))
            costed.add(la["model"])
            total += cost
            argv, env_extra, shown = runner.command(la, runner.models_dir / la["model"]) \
                if not la.get("hide_site_entries") else ([], {}, f"(hides {la['hide_site_entries']}) ...")
            where = f" slice={la.get('slice_gib', '')}{la.get('free_mib', '')}" if ("slice_gib" in la or "free_mib" in la) else ""
            print(f"{la['id']:<28} ~{cost:4.0f}s{where}  {shown}")
        print(f"total ~{total:.0f} s of {runner.remaining():.0f} s budget")
        return 0
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = runner.run(launches)
        if args.save_triton_cache:
            runner.save_triton_cache()
        return status
    except KeyboardInterrupt:
        print("interrupted; partial results packed", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
