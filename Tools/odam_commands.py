"""Checks an odam command line against the built binary's --help (for the deployment checkers in Tools/)."""
import re
import subprocess


def command_problems(odam, arguments, where):
    """Lines naming what in `arguments` (["worker", "--threads", "2"]) the binary does not have: the subcommand, or an
    option (a whole option, not a prefix of a longer one: --max-mem is not --max-memory)."""
    help_text = subprocess.run([odam, "--help"], capture_output=True, text=True, check=True).stdout
    subcommands = set(re.findall(r"^\s{2}([a-z]+)\s", help_text, re.MULTILINE))
    if not arguments or arguments[0] not in subcommands:
        return [f"{where}: {arguments[:1]} is not an odam subcommand ({sorted(subcommands)})"]
    sub_help = subprocess.run([odam, arguments[0], "--help"], capture_output=True, text=True, check=True).stdout
    return [
        f"{where}: odam {arguments[0]} has no option {option}"
        for option in arguments[1:]
        if option.startswith("--") and not re.search(re.escape(option) + r"(?![\w-])", sub_help)
    ]
