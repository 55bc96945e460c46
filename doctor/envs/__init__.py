"""Find the Python environment on this machine that will run a job (``lmdoctor envs``).

Three steps, each usable on its own:

* :mod:`doctor.envs.discover` lists candidate env folders (conda, venvs, shared pre-built envs, the
  current interpreter) and reports the folders it could not look into;
* :mod:`doctor.envs.scan` reads each env from disk (Python version, installed packages) into the same
  ``py.*`` / ``pkg.*`` facts the probes give for the examined env, never running its interpreter;
* :mod:`doctor.envs.score` judges each env for a job (a planned command or a model) with the
  compatibility knowledge, the model's needs, the GPU facts and the environment rules ``check`` uses,
  and ranks them ready / ready with warnings / not suitable / broken.

The ``envs`` probe (:mod:`doctor.facts.envs`) runs the same pipeline inside ``check`` when the examined
env itself cannot run the job, so a fix can name the env that can.
"""
