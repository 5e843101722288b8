"""The ``symode`` command line: a thin layer that parses arguments and calls the library.

Exit status: 0 success; 1 a check found a problem (e.g. a FALSE claim); 2 a user error (bad model, bad spec,
bad arguments), printed as one line ``symode: error: ...`` without a traceback.

One module per command (:data:`COMMANDS`), each with a ``register(sub)`` that adds its parser and a
``_cmd_<name>(args) -> int`` that runs it: models, demo, derive, grad, oracle, check, train, codegen, verify,
schema, compare, audit.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import SymodeError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block too)
        # "symode: error: grad: ..." -- the subcommand once, without repeating "symode"
        where = self.prog.removeprefix("symode").strip()
        raise _UsageError(f"{where}: {message}{_hint(self, message)}" if where else f"{message}{_hint(self, message)}")


def _hint(parser: argparse.ArgumentParser, message: str) -> str:
    """The closest valid choice or option to what argparse refused (``difflib``), or ``""``."""
    import re

    from ..suggest import did_you_mean
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:
        return did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
    m = re.search(r"unrecognized arguments: (.*)", message)
    if m:
        flags = _all_flags(parser)
        for word in m.group(1).split():
            if word.startswith("--"):
                hint = did_you_mean(word.split("=", 1)[0], flags)
                if hint:
                    return hint
    return ""


def _all_flags(parser: argparse.ArgumentParser) -> list[str]:
    flags = [f for f in parser._option_string_actions if f.startswith("--")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += _all_flags(sub)
    return flags


class _UsageError(Exception):
    pass


#: The subcommands in the order ``symode --help`` lists them: each module's ``register(sub)`` adds its parser.
COMMANDS = ("models", "demo", "derive", "grad", "oracle", "check", "train", "codegen", "verify", "schema",
            "compare", "audit")


def build_parser() -> argparse.ArgumentParser:
    import importlib
    from .._version import __version__
    p = _Parser(prog="symode", description="Symbolic-autodiff verification for neural ODEs.")
    p.add_argument("--version", action="version", version=f"symode {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"symode: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    import warnings
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # a warning is one line on stderr, like an error
        return _main(argv)


def _main(argv) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except _UsageError as exc:
        print(f"symode: error: {exc}", file=sys.stderr)
        return 2
    except SymodeError as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"symode: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
