"""Log reading for `lmdoctor explain`: from raw bytes to findings.

    reader.py     open any input (file, stdin, .gz), blocks of whole lines, bounded line length, bad-input errors
    normalize.py  ANSI/NUL/\\r clean-up and logger-prefix stripping (level, logger, process kept)
    spec.py       the `log:` section of rules (patterns, scopes, also/unless, literal prefilter)
    matcher.py    every rule pattern indexed by literal; noise and consequence data (rules/knowledge/logs.yaml)
    structure.py  records (tracebacks, exceptions, HTTP errors, commands...) and single-line fact extractors
    analyze.py    the pass over the log (fast path, cache, traceback state machine, forked workers)
    facts.py      the log.* and suggest.* fact names (import-free: read by every command's catalog)
    fusion.py     log facts, the subject command, machine facts (live / snapshot / none)
    suggest.py    computed values for fixes (suggest.*)
    explain.py    rule matching, ranking, consequences, unexplained failures
    pipeline.py   the whole thing, for the command, the self-tests and the corpus
    selftest.py   log rules' own fires/quiet cases;  corpus.py: the fixtures/logs corpus
"""
