"""lmdoctor: an environment doctor and crash diagnoser for LMDeploy.

The package never imports torch or lmdeploy: every fact about them comes from package metadata,
NVML and files, so the doctor keeps working when the patient's environment is broken.
"""
__version__ = "0.1.0"
