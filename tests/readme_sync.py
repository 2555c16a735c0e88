"""The generated parts of the README and the documentation, and their code blocks.

``python -m tests.readme_sync`` rewrites the generated sections of the pages
(the state diagram, the command-line reference and the fault table, in
``docs/``) from the code; ``tests/test_readme.py`` fails when they drift, and
runs every example of README.md and of ``docs/**/*.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import cassette_schema
from gptalk_transports._cli import build_parser
from gptalk_transports._cli.exits import COMMAND_EXITS, EPILOG, EXIT_CODES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The page that holds each generated section.
GENERATED = {
    "state-diagram": DOCS / "explanation" / "state-machine.md",
    "cli": DOCS / "reference" / "cli.md",
    "faults": DOCS / "reference" / "faults.md",
    "bench": DOCS / "explanation" / "performance.md",
    "cassette-fields": DOCS / "reference" / "cassette-format.md",
}


def pages() -> list[Path]:
    """The README and every Markdown page of the documentation, in order."""
    found = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)
    return [README, *found]


def generated(name: str) -> str:
    """The text of the page that holds the generated section ``name``."""
    return GENERATED[name].read_text(encoding="utf-8")


class Block(NamedTuple):
    """A fenced code block: its language, its text and the line it starts on."""

    lang: str
    code: str
    line: int


def blocks(text: str) -> list[Block]:
    """Every fenced code block of a Markdown text, in order (a MyST directive's
    language is its name in braces, such as ``{toctree}``)."""
    found = []
    fence = re.compile(r"^```(\{[\w-]+\}|\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    for match in fence.finditer(text):
        found.append(Block(match[1], match[2], text.count("\n", 0, match.start()) + 1))
    return found


def section(text: str, name: str) -> str:
    """What lies between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.DOTALL)
    if match is None:
        raise LookupError(f"no {name} section")
    return match[1]


def replace_section(text: str, name: str, body: str) -> str:
    section(text, name)  # present
    return re.sub(
        rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)",
        lambda m: m[1] + body + m[2],
        text,
        flags=re.DOTALL,
    )


def state_diagram_section() -> str:
    return "```mermaid\n" + g.state_diagram() + "\n```\n"


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.items())
    return found


def _argument(action: argparse.Action) -> str:
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if not action.option_strings:
        name = metavar or action.dest
        if action.nargs == "+":
            return f"{name} ..."
        if action.nargs == "?":
            return f"[{name}]"
        return name
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    return ", ".join(
        f"{option} {metavar or action.dest.upper()}" for option in action.option_strings
    )


def help_text(action: argparse.Action) -> str:
    """An argument's help, ``%(default)s`` expanded."""
    return (action.help or "").replace("%(default)s", str(action.default))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """``("gptalk chat", parser)`` for the top level and every subcommand."""
    todo = [("gptalk", build_parser())]
    found = []
    while todo:
        name, parser = todo.pop(0)
        found.append((name, parser))
        todo[:0] = [(f"{name} {sub}", subparser) for sub, subparser in _subparsers(parser)]
    return found


def cli_section() -> str:
    out = ["Exit codes (each command's `--help` lists those it can give):", ""]
    out += ["```text", EPILOG.rstrip(), "```", ""]
    for name, parser in commands():
        out += [f"## `{name}`", ""]
        if parser.description:
            out += [parser.description, ""]
        exits = COMMAND_EXITS.get(name.split()[-1])
        if exits is not None and name != "gptalk":
            codes = sorted(EXIT_CODES[kind] for kind in exits)
            out += ["Exit codes: " + ", ".join(str(code) for code in codes) + ".", ""]
        rows = []
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    rows.append((f"{name} {choice.dest}", choice.help or ""))
                continue
            rows.append((_argument(action), help_text(action)))
        if rows:  # a command without arguments gets no empty table
            out += ["| argument | meaning |", "|---|---|"]
            out += [f"| `{arg}` | {_cell(meaning)} |" for arg, meaning in rows]
            out.append("")
    return "\n".join(out)


def fault_section() -> str:
    """The fault table, from the core's :data:`~gptalk_proto.server.FAULT_KINDS`."""
    rows = ["| kind | default endpoint | effect |", "|---|---|---|"]
    rows += [f"| `{k.spec}` | {k.endpoint} | {_cell(k.effect)} |" for k in g.server.FAULT_KINDS]
    return "\n".join(rows) + "\n"


def _schema_type(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kind = node.get("type", "")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and "items" in node:
        return "array of " + _schema_type(node["items"])
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    return str(kind)


def _schema_rows(
    node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...]
) -> list[str]:
    rows = []
    required = set(node.get("required", ()))
    for name, field in node.get("properties", {}).items():
        where = f"{path}.{name}" if path else name
        ref = field.get("$ref") or field.get("items", {}).get("$ref")
        target = defs.get(ref.rsplit("/", 1)[-1], {}) if ref else {}
        description = field.get("description") or target.get("description", "")
        mark = "yes" if name in required else ""
        rows.append(f"| `{where}` | {_cell(_schema_type(field))} | {mark} | {_cell(description)} |")
        inner = field.get("items", field) if field.get("type") == "array" else field
        if ref and ref not in seen and "properties" in target:
            suffix = "[]" if field.get("type") == "array" else ""
            rows += _schema_rows(target, defs, where + suffix, (*seen, ref))
        elif "properties" in inner:
            rows += _schema_rows(inner, defs, where, seen)
    return rows


def cassette_fields_section() -> str:
    """The cassette's fields, from the JSON Schema the package ships."""
    schema = json.loads(cassette_schema())
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    rows += _schema_rows(schema, schema.get("$defs", {}), "", ())
    return "\n".join(rows) + "\n"


def fault_kinds(text: str) -> dict[str, str]:
    """Fault kinds and default endpoints, from the README's fault table."""
    table = section(text, "faults")
    return dict(re.findall(r"^\| `([a-z]+)(?:=[A-Z]+)?` \| (\w+) \|", table, re.MULTILINE))


def sync() -> list[Path]:
    """Rewrite the generated sections; the pages that changed."""
    bodies = {
        "state-diagram": state_diagram_section,
        "cli": cli_section,
        "faults": fault_section,
        "cassette-fields": cassette_fields_section,
    }
    changed = []
    for name, body in bodies.items():
        path = GENERATED[name]
        text = path.read_text(encoding="utf-8")
        new = replace_section(text, name, body())
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    changed = sync()
    for path in changed:
        print(f"{path.relative_to(ROOT)} updated", file=sys.stderr)
    if not changed:
        print("the generated sections are in sync", file=sys.stderr)
