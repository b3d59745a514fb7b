"""`picoclaw-vllm load-options`: the Locust load profile's own options (Locust's `--help`
answers before it loads the locustfile, so it cannot list them)."""

from __future__ import annotations

import argparse

from loadtests.options import describe_options

HELP = "list the options of the Locust load profile (locust -f loadtests/chat.py)"
DESCRIPTION = """\
Prints every option of the plain Locust load profile, with its default and environment
variable. `locust -f loadtests/chat.py --help` cannot show them: Locust answers --help before
it imports the locustfile. In Locust's web UI they are under "Custom parameters".
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options of its own


def run(args: argparse.Namespace) -> int:
    del args
    print(describe_options(), end="")
    return 0
