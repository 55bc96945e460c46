"""A user script that builds lmdeploy's pipeline at import time, WITHOUT `if __name__ == "__main__":`.

It fails on purpose (the lab's multiprocessing_main_guard capture): the engine starts processes with the
spawn method, each re-imports this file as __mp_main__ and builds the pipeline again while still
bootstrapping. Usage: python3 lab/pipeline_noguard.py MODEL
"""
import sys

from lmdeploy import PytorchEngineConfig, pipeline

pipe = pipeline(sys.argv[1], backend_config=PytorchEngineConfig(cache_max_entry_count=0.2))
print(pipe(["hello, who are you?"]))
