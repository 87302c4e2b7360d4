"""A reader of `neo4j-admin database import` CSVs written from the operations manual, to check
what `graphfraud.graph.bulk` writes without a Neo4j: the header grammar, RFC 4180 fields with
the importer's settings, typed values, ID spaces and relationship endpoints.

Spec (Neo4j 5 operations manual, "CSV header format" and `import full` options): a header field
is `<name>:<field_type>`; `<name>` alone is a string property. Node files have an `ID` field,
optionally in an ID space (`id:ID(User)`: the name stores the id as a property) and a `:LABEL`
field; relationship files have `:START_ID(space)`, `:END_ID(space)` and `:TYPE` (no name, no
type). Property types are int, long, float, double, boolean, byte, short, char, string, point,
date, localtime, time, localdatetime, datetime, duration, each optionally an array (`[]`) whose
elements are split on `--array-delimiter`. A boolean is true only for the exact text `true`. A
quote inside a quoted field is doubled (`--legacy-style-quoting=false`: a backslash is a plain
character); an empty unquoted field is no value, `""` an empty string
(`--ignore-empty-strings=false`); a field holds a newline only quoted, with
`--multiline-fields=true`.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPES = (
    "int",
    "long",
    "float",
    "double",
    "boolean",
    "byte",
    "short",
    "char",
    "string",
    "point",
    "date",
    "localtime",
    "time",
    "localdatetime",
    "datetime",
    "duration",
)
_SPECIAL = re.compile(r"^(?P<name>[^:]*):(?P<kind>ID|START_ID|END_ID)(\((?P<space>[^()]+)\))?$")
_PROPERTY = re.compile(r"^(?P<name>[^:]+)(:(?P<type>" + "|".join(TYPES) + r")(?P<array>\[\])?)?$")


@dataclass(frozen=True)
class Field:
    kind: str  # ID, START_ID, END_ID, LABEL, TYPE, IGNORE or property
    name: str = ""
    space: str = ""
    type: str = "string"
    array: bool = False


def parse_field(text: str) -> Field:
    """One header field by the grammar above; AssertionError for anything else."""
    if text in (":LABEL", ":TYPE", ":IGNORE"):
        return Field(text[1:])
    special = _SPECIAL.match(text)
    if special:
        return Field(special["kind"], special["name"], special["space"] or "")
    prop = _PROPERTY.match(text)
    assert prop, f"header field {text!r} is not in the importer's grammar"
    return Field("property", prop["name"], "", prop["type"] or "string", bool(prop["array"]))


def check_header(fields: list[Field], node: bool) -> None:
    kinds = [f.kind for f in fields]
    names = [f.name for f in fields if f.kind == "property"]
    assert len(names) == len(set(names)), f"a property repeats: {names}"
    if node:
        assert kinds.count("ID") == 1, kinds
        assert kinds.count("LABEL") <= 1, kinds
        assert not {"START_ID", "END_ID", "TYPE"} & set(kinds), kinds
        id_field = fields[kinds.index("ID")]
        assert id_field.name not in names, "the ID's property name repeats a property"
    else:
        assert [kinds.count(k) for k in ("START_ID", "END_ID", "TYPE")] == [1, 1, 1], kinds
        assert not {"ID", "LABEL"} & set(kinds), kinds
        for f in fields:
            if f.kind in ("START_ID", "END_ID"):
                assert f.name == "", "START_ID / END_ID take no name"


def tokenize(text: str) -> list[list[tuple[str, bool]]]:
    """RFC 4180 records of (value, was quoted): the distinction the csv module drops (an
    unquoted empty field is no value, `""` an empty string)."""
    records: list[list[tuple[str, bool]]] = []
    i, n = 0, len(text)
    while i < n:
        record: list[tuple[str, bool]] = []
        while True:
            if i < n and text[i] == '"':
                i += 1
                value = []
                while True:
                    assert i < n, "an unterminated quoted field"
                    if text[i] == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            value.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    value.append(text[i])
                    i += 1
                record.append(("".join(value), True))
            else:
                j = i
                while i < n and text[i] not in ',\n"':
                    i += 1
                assert i >= n or text[i] != '"', "a quote inside an unquoted field"
                record.append((text[j:i], False))
            if i < n and text[i] == ",":
                i += 1
                continue
            assert i >= n or text[i] == "\n", f"junk after a field at {i}"
            i += 1
            break
        records.append(record)
    return records


def convert(value: str, quoted: bool, f: Field, array_delimiter: str) -> Any:
    """A field's value as the importer stores it (None: no property)."""
    if value == "" and not quoted:
        return None
    if f.kind != "property":
        return value
    parts = value.split(array_delimiter) if f.array else [value]
    out: list[Any] = []
    for part in parts:
        if f.type in ("long", "int", "short", "byte"):
            assert re.fullmatch(r"-?\d+", part), f"{f.name}: {part!r} is not an integer"
            out.append(int(part))
        elif f.type in ("double", "float"):
            assert re.fullmatch(r"-?(\d+(\.\d*)?([eE][-+]?\d+)?|Infinity)", part), part
            out.append(float(part))
        elif f.type == "boolean":
            assert part in ("true", "false"), f"{f.name}: {part!r} is not a boolean's text"
            out.append(part == "true")
        else:
            assert f.type == "string", f.type
            out.append(part)
    return out if f.array else out[0]


@dataclass
class Element:
    labels: tuple[str, ...]
    props: dict[str, Any]
    id: str = ""
    space: str = ""
    start: tuple[str, str] = ("", "")  # (space, id)
    end: tuple[str, str] = ("", "")


@dataclass
class Imported:
    """Everything an import of the export directory would create."""

    nodes: list[Element] = field(default_factory=list)
    relationships: list[Element] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # per data file
    id_property: dict[str, str] = field(default_factory=dict)  # per ID space


def read_export(directory: Path) -> Imported:
    """Read every file the export's summary lists, checking grammar, field counts, quoting
    (the csv module with the importer's settings must read the same values), ID uniqueness
    per space and that every relationship's endpoints exist."""
    summary = json.loads((directory / "import.json").read_text())
    delimiter = summary["array_delimiter"]
    out = Imported()
    seen: dict[str, set[str]] = {}
    for entry in sorted(summary["files"], key=lambda e: not e["node"]):  # nodes first
        header_text = (directory / entry["header"]).read_text(encoding="utf-8")
        assert header_text.endswith("\n"), "a header line ends"
        assert header_text.count("\n") == 1, "one header line"
        fields = [parse_field(t) for t in next(csv.reader([header_text.rstrip("\n")]))]
        check_header(fields, entry["node"])
        raw = (directory / entry["data"]).read_bytes().decode("utf-8")  # UTF-8 or it fails
        records = tokenize(raw)
        with (directory / entry["data"]).open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=",", quotechar='"', doublequote=True, strict=True)
            assert [list(r) for r in reader] == [[v for v, _ in r] for r in records]
        if not summary["multiline_fields"]:
            assert all("\n" not in v and "\r" not in v for r in records for v, _ in r)
        out.rows[entry["data"]] = len(records)
        for record in records:
            assert len(record) == len(fields), f"{entry['data']}: a row's field count"
            _element(out, seen, fields, record, delimiter, entry)
    return out


def _element(
    out: Imported,
    seen: dict[str, set[str]],
    fields: list[Field],
    record: list[tuple[str, bool]],
    delimiter: str,
    entry: dict[str, Any],
) -> None:
    element = Element(labels=(), props={})
    for f, (value, quoted) in zip(fields, record, strict=True):
        converted = convert(value, quoted, f, delimiter)
        if f.kind == "ID":
            assert converted, "a node without an ID"
            element.id, element.space = converted, f.space
            if f.name:
                element.props[f.name] = converted
                out.id_property.setdefault(f.space, f.name)
        elif f.kind in ("LABEL", "TYPE"):
            element.labels = tuple(converted.split(delimiter))
        elif f.kind == "START_ID":
            element.start = (f.space, converted)
        elif f.kind == "END_ID":
            element.end = (f.space, converted)
        elif f.kind == "property" and converted is not None:
            element.props[f.name] = converted
    if entry["node"]:
        ids = seen.setdefault(element.space, set())
        assert element.id not in ids, f"ID {element.id!r} repeats in space {element.space}"
        ids.add(element.id)
        out.nodes.append(element)
    else:
        for space, key in (element.start, element.end):
            assert key in seen.get(space, set()), f"an endpoint {key!r} missing from {space}"
        out.relationships.append(element)


def canonical(imported: Imported) -> tuple[list[str], list[str]]:
    """The import as `graphdump.dump_graph` would read it back (meta node and run tag left
    out), to compare with `graphdump.tables_dump`."""

    def canon(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)

    def props(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k != "run_id"}

    nodes = sorted(
        canon([sorted(n.labels), props(n.props)])
        for n in imported.nodes
        if "GraphFraudMeta" not in n.labels
    )
    labels = {(n.space, n.id): sorted(n.labels) for n in imported.nodes}
    rels = sorted(
        canon([r.labels[0], labels[r.start], r.start[1], labels[r.end], r.end[1], props(r.props)])
        for r in imported.relationships
    )
    return nodes, rels


def load_into(driver: Any, database: str, imported: Imported, batch: int = 1000) -> None:
    """Create what the import would, over Bolt (`CREATE`, no MERGE: as the importer, which
    writes into an empty database): where no neo4j-admin is at hand, the next best check that
    a graph imported from the files is one the next publish can build on."""
    label_of = {n.space: n.labels[0] for n in imported.nodes}

    def write(query: str, rows: list[dict[str, Any]]) -> None:
        with driver.session(database=database) as session:
            for i in range(0, len(rows), batch):
                part = rows[i : i + batch]
                session.execute_write(lambda tx, p=part: tx.run(query, rows=p).consume())

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for node in imported.nodes:
        groups.setdefault(node.labels, []).append(node.props)
    for labels, props in groups.items():
        write(f"UNWIND $rows AS r CREATE (n:{':'.join(labels)}) SET n = r", props)
    edges: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rel in imported.relationships:
        key = (rel.labels[0], rel.start[0], rel.end[0])
        edges.setdefault(key, []).append({"s": rel.start[1], "e": rel.end[1], "p": rel.props})
    for (rel_type, start, end), rows in edges.items():
        write(
            f"UNWIND $rows AS r MATCH (a:{label_of[start]} {{{imported.id_property[start]}: r.s}}) "
            f"MATCH (b:{label_of[end]} {{{imported.id_property[end]}: r.e}}) "
            f"CREATE (a)-[x:{rel_type}]->(b) SET x = r.p",
            rows,
        )
