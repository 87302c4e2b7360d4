"""One run's whole graph as `neo4j-admin database import full` CSVs: a first publish without Bolt.

The files are written from the phases a Bolt publish sends (`delta.graph_phases`), so the
imported graph is, property for property, the one a full publish makes: per node label and per
relationship type one header file and one data file, typed headers (`id:ID(User)`,
`score:double`, `reasons:string[]`, `:START_ID(User)`, `:END_ID(Email)`, `:LABEL`, `:TYPE`),
one ID space per label (an email and a device may hold the same text), every element tagged with
the run id, and the publish meta node as a `publish` of this run would leave it (`status:
'complete'`, `run_id`, `digest`, `run_path`, `mode: 'import'`). After the import the next
night's `graphfraud publish` finds that run and sends only the delta over Bolt.

Quoting is RFC 4180 as the importer reads it (`--quote='"'`, a quote inside a value doubled,
`--legacy-style-quoting=false`); every string is quoted, a null is an empty unquoted field
(property absent), an empty string is `""` (`--ignore-empty-strings=false`). The importer
cannot escape its array delimiter, so one no element contains is chosen. `ImportExport.command`
names every file and every option those rules rely on.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.graph import cypher
from graphfraud.graph.delta import Phase, graph_digest, graph_phases, row_hashes
from graphfraud.graph.tables import GraphTables, load_tables

NODES_DIR = "nodes"
RELATIONSHIPS_DIR = "relationships"
SUMMARY_FILE = "import.json"
SCHEMA_FILE = "schema.cypher"
META_LABEL = "GraphFraudMeta"
IMPORT_MODE = "import"  # the meta node's `mode` after an import (a publish writes full / delta)
DELIMITER = ","
QUOTE = '"'
# Tried in order: the importer's default first; U+001F (unit separator) is never typed.
ARRAY_DELIMITERS = (";", "|", "\x1f")
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALAR_TYPES: dict[type[pl.DataType], str] = {
    pl.Float64: "double",
    pl.Float32: "double",
    pl.Int64: "long",
    pl.Int32: "long",
    pl.Int16: "long",
    pl.Int8: "long",
    pl.UInt32: "long",
    pl.UInt16: "long",
    pl.UInt8: "long",
    pl.Boolean: "boolean",
    pl.String: "string",
    pl.Null: "string",  # every value absent
}


@dataclass(frozen=True)
class ImportFile:
    """One importer data source: a header file and its data file (paths relative to the
    export directory), the label or type it holds and its row count."""

    header: str
    data: str
    label: str
    node: bool
    rows: int


@dataclass(frozen=True)
class ImportExport:
    """What `write_import_csvs` wrote; `nodes` and `relationships` count the run's graph (the
    meta node aside), as the meta node records them."""

    directory: Path
    run_id: str
    digest: str
    files: tuple[ImportFile, ...]
    array_delimiter: str
    multiline: bool
    nodes: int
    relationships: int

    def arguments(self, database: str) -> list[str]:
        """`neo4j-admin` arguments, to run from the export directory (paths are relative)."""
        args = ["database", "import", "full", database or "neo4j"]
        # The database comes first: picocli lets a multi-value --nodes swallow a trailing one.
        args += [
            f"--{'nodes' if f.node else 'relationships'}={f.header},{f.data}" for f in self.files
        ]
        args += [
            "--id-type=string",
            f"--delimiter={DELIMITER}",
            f"--array-delimiter={_char_option(self.array_delimiter)}",
            f"--quote={QUOTE}",
            "--legacy-style-quoting=false",
            "--trim-strings=false",
            "--ignore-empty-strings=false",
            "--input-encoding=UTF-8",
        ]
        if self.multiline:
            args.append("--multiline-fields=true")
        return args

    def command(self, database: str = "neo4j", admin: str = "neo4j-admin") -> str:
        """The shell command line that imports this export into a new database `database`."""
        return f"cd {shlex.quote(str(self.directory))} && " + shlex.join(
            [admin, *self.arguments(database)]
        )


def _char_option(char: str) -> str:
    return char if char.isprintable() else f"U+{ord(char):04X}"


def _scalar_type(dtype: object) -> str | None:
    return next((name for cls, name in _SCALAR_TYPES.items() if dtype == cls), None)


def _property_type(frame: str, name: str, dtype: pl.DataType) -> str:
    """The header type of one property column (`double`, `long`, `string[]`, …)."""
    if not _PROPERTY_NAME.match(name):
        raise ArtifactError(
            f"graph property {name!r} of {frame} is not a plain name the importer's header "
            f"grammar allows ({_PROPERTY_NAME.pattern})"
        )
    inner = dtype.inner if isinstance(dtype, pl.List) else None
    kind = _scalar_type(inner if inner is not None else dtype)
    if kind is None:
        raise ArtifactError(f"graph property {name!r} of {frame} is a {dtype}: no import type")
    return f"{kind}[]" if inner is not None else kind


def _properties(phase: Phase, run_id: str) -> pl.DataFrame:
    """The properties each element of `phase` gets, `run_id` included, as a publish sets them."""
    if "props" in phase.rows.columns:
        props = phase.rows.select(pl.col("props").struct.unnest())
    elif phase.node:
        props = phase.rows.select(phase.keys)  # identifiers: their value is all they hold
    else:
        props = pl.DataFrame(height=phase.rows.height)
    return props.with_columns(run_id=pl.lit(run_id, pl.String))


def _id_column(phase: Phase, props: pl.DataFrame) -> str:
    """The property a node is MERGEd on (`id`, identifiers' `value`): its import ID."""
    column = "id" if "props" in phase.rows.columns else phase.keys[0]
    if "key" in phase.rows.columns and not (phase.rows["key"] == props[column]).all():
        raise ArtifactError(f"{phase.name}: a node's key differs from its {column!r} property")
    return column


def _array_delimiter(frames: list[tuple[str, pl.DataFrame]]) -> str:
    """The first of ARRAY_DELIMITERS no array element contains; refuses lists the importer
    cannot represent (an empty list or an empty or null element would not come back)."""
    elements: list[pl.Series] = []
    for where, frame in frames:
        for name, dtype in frame.schema.items():
            if not isinstance(dtype, pl.List):
                continue
            lists = frame[name].drop_nulls()
            if (lists.list.len() == 0).any():
                raise ArtifactError(f"{where}.{name} holds an empty list: the importer cannot")
            values = lists.explode().cast(pl.String)
            if values.is_null().any() or (values == "").any():
                raise ArtifactError(f"{where}.{name} holds a null or empty element")
            elements.append(values)
    if not elements:
        return ARRAY_DELIMITERS[0]
    values = pl.concat(elements)
    for delimiter in ARRAY_DELIMITERS:
        if not values.str.contains(delimiter, literal=True).any():
            return delimiter
    raise ArtifactError("every array delimiter the export tries occurs inside an array value")


def _csv_ready(frame: pl.DataFrame, array_delimiter: str) -> pl.DataFrame:
    """Lists joined with the array delimiter; infinities spelt as Java parses them (NaN is
    already null in the tables)."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.List):
            out.append(col.list.eval(pl.element().cast(pl.String)).list.join(array_delimiter))
        elif dtype in (pl.Float32, pl.Float64) and frame[name].is_infinite().any():
            text = pl.when(col > 0).then(pl.lit("Infinity")).otherwise(pl.lit("-Infinity"))
            out.append(pl.when(col.is_infinite()).then(text).otherwise(col.cast(pl.String)))
        else:
            out.append(col)
    return frame.select(out) if out else frame


def _meta(tables: GraphTables, run_dir: Path, digest: str) -> pl.DataFrame:
    """The publish meta node as META_START + META_FINISH leave it after a complete publish."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    return pl.DataFrame(
        {
            "id": [cypher.META_ID],
            "status": ["complete"],
            "run_id": [tables.run_id],
            "target_run_id": [tables.run_id],
            "model_version": [tables.model_version],
            "started_at": [at],
            "finished_at": [at],
            "nodes": [tables.node_count],
            "relationships": [tables.relationship_count],
            "digest": [digest],
            "run_path": [str(run_dir.resolve())],
            "mode": [IMPORT_MODE],
            "base_run_id": [None],
            "upserted_nodes": [tables.node_count],
            "upserted_relationships": [tables.relationship_count],
            "deleted_nodes": [0],
            "deleted_relationships": [0],
        },
        schema_overrides={"model_version": pl.String, "base_run_id": pl.String},
    )


@dataclass(frozen=True)
class _Source:
    folder: str
    label: str
    node: bool
    frame: pl.DataFrame  # the file's columns, in header order
    header: tuple[str, ...]  # the typed header fields


def _node_source(label: str, id_column: str, props: pl.DataFrame) -> _Source:
    others = [c for c in props.columns if c != id_column]
    header = (
        f"{id_column}:ID({label})",
        ":LABEL",
        *(f"{c}:{_property_type(label, c, props.schema[c])}" for c in others),
    )
    frame = props.select(pl.col(id_column), pl.lit(label).alias(":LABEL"), *others)
    return _Source(NODES_DIR, label, True, frame, header)


def _sources(tables: GraphTables, phases: tuple[Phase, ...], meta: pl.DataFrame) -> list[_Source]:
    """Node files (the meta node last), then relationship files; a kind without rows has
    none (the importer needs none)."""
    labels = {p.name: p.label for p in phases if p.node}
    nodes, relationships = [], []
    for phase in (p for p in phases if p.rows.height):
        props = _properties(phase, tables.run_id)
        if phase.node:
            nodes.append(_node_source(phase.label, _id_column(phase, props), props))
            continue
        (start, start_phase), (end, end_phase) = phase.ends
        ends = phase.rows.select(
            pl.col(start).alias(":START_ID"),
            pl.col(end).alias(":END_ID"),
            pl.lit(phase.label).alias(":TYPE"),
        )
        header = (
            f":START_ID({labels[start_phase]})",
            f":END_ID({labels[end_phase]})",
            ":TYPE",
            *(f"{c}:{_property_type(phase.label, c, props.schema[c])}" for c in props.columns),
        )
        frame = pl.concat([ends, props], how="horizontal")
        relationships.append(_Source(RELATIONSHIPS_DIR, phase.label, False, frame, header))
    return [*nodes, _node_source(META_LABEL, "id", meta), *relationships]


def write_import_csvs(run_dir: Path | str, out_dir: Path | str) -> ImportExport:
    """Write the whole graph of `run_dir` into `out_dir` (new or empty) as import CSVs.

    The files appear only when all are written (built in a sibling directory, then renamed),
    so a crash leaves no half export that looks whole. Raises ArtifactError for a run that is
    not finished or holds a value the importer cannot represent, ConfigError for a non-empty
    `out_dir`.
    """
    run_path, out = Path(run_dir), Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty directory", hint="give a new one")
    tables = load_tables(run_path)
    phases = graph_phases(tables)
    digest = graph_digest(phases, {p.name: row_hashes(p.rows) for p in phases})
    sources = _sources(tables, phases, _meta(tables, run_path, digest))
    array_delimiter = _array_delimiter([(s.label, s.frame) for s in sources])
    ready = [_csv_ready(s.frame, array_delimiter) for s in sources]
    multiline = any(
        bool(f[c].str.contains(r"[\r\n]").any())
        for f in ready
        for c in f.columns
        if f.schema[c] == pl.String
    )

    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    files = []
    try:
        for source, frame in zip(sources, ready, strict=True):
            folder = partial / source.folder
            folder.mkdir(parents=True, exist_ok=True)
            header = f"{source.folder}/{source.label}.header.csv"
            data = f"{source.folder}/{source.label}.csv"
            (partial / header).write_text(DELIMITER.join(source.header) + "\n", encoding="utf-8")
            frame.write_csv(
                partial / data,
                include_header=False,
                separator=DELIMITER,
                quote_char=QUOTE,
                quote_style="non_numeric",
                null_value="",
                line_terminator="\n",
            )
            files.append(ImportFile(header, data, source.label, source.node, frame.height))
        export = ImportExport(
            directory=out.resolve(),
            run_id=tables.run_id,
            digest=digest,
            files=tuple(files),
            array_delimiter=array_delimiter,
            multiline=multiline,
            nodes=tables.node_count,
            relationships=tables.relationship_count,
        )
        statements = ";\n".join(q.text for q in cypher.schema_queries(tables.registry))
        (partial / SCHEMA_FILE).write_text(statements + ";\n", encoding="utf-8")
        (partial / SUMMARY_FILE).write_text(json.dumps(_summary(export), indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return export


def _summary(export: ImportExport) -> dict[str, object]:
    return {
        "run_id": export.run_id,
        "digest": export.digest,
        "nodes": export.nodes,
        "relationships": export.relationships,
        "array_delimiter": export.array_delimiter,
        "multiline_fields": export.multiline,
        "files": [
            {"header": f.header, "data": f.data, "label": f.label, "node": f.node, "rows": f.rows}
            for f in export.files
        ],
        "arguments": export.arguments("neo4j"),
    }
