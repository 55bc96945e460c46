"""`lmdoctor facts`: print the fact snapshot (the bug-report attachment and the test fixture format)."""
from __future__ import annotations

from typing import Optional, Tuple

import click

from doctor.commands.common import input_errors, json_option, lang_option, target_options

HELP_EPILOG = """\b
Examples:
  lmdoctor facts                                  # readable listing
  lmdoctor facts --json > facts.json              # attach to a bug report; `lmdoctor check --facts facts.json`
  lmdoctor facts gpu.*                            # who holds the GPU memory of your 8 GiB / 24 GiB slice
  lmdoctor facts --env demo pkg.*                 # the gradio VLM demo env that crashes ...
  lmdoctor facts --env icamp3_demo pkg.*          # ... against the preset env that works
  lmdoctor facts os.inotify.*                     # the Streamlit inotify watch limit
  lmdoctor facts --catalog                        # every fact name rules may use, with its meaning
"""


@click.command("facts", epilog=HELP_EPILOG, context_settings={"ignore_unknown_options": True})
@json_option
@target_options
@click.option("--catalog", is_flag=True, help="List every fact name with its description instead.")
@lang_option
@click.argument("patterns", nargs=-1)
@input_errors
def command(as_json: bool, python: Optional[str], env_name: Optional[str], facts_file: Optional[str],
            catalog: bool, patterns: Tuple[str, ...]) -> None:
    """Print what lmdoctor observes about this machine (or a snapshot)."""
    from doctor.facts import catalog as fact_catalog
    from doctor.facts import pattern_matches, patterns_overlap
    from doctor.render import print_json
    if catalog:
        cat = fact_catalog()
        if as_json:
            print_json(cat)
        else:
            for name in sorted(cat):
                click.echo(f"{name:40s} {cat[name]}")
        return
    from doctor.facts import snapshot
    from doctor.gather import Sources, gather
    facts, _ = gather(Sources(python=python, env=env_name, facts_file=facts_file))
    if patterns:
        facts.values = {k: v for k, v in facts.values.items() if any(pattern_matches(p, k) for p in patterns)}
    if as_json:
        print_json(snapshot.to_json(facts))
        return
    for name in sorted(facts.values):
        click.echo(f"{name} = {facts.values[name]!r}")
    for pattern, reason in sorted(facts.unknown.items()):
        if not patterns or any(patterns_overlap(p, pattern) for p in patterns):
            click.echo(f"{pattern} = ? ({reason})")
