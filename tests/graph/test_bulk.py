"""`neo4j-admin database import` CSVs of a run's graph, checked with a reader written from the
operations manual (tests/graph/importcsv.py): header grammar, field counts and types, quoting of
commas, quotes, newlines and unicode, ID spaces, endpoints, counts, and that they hold exactly
the graph a Bolt publish makes (the same canonical dump as `tables_dump`)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from graphfraud.cli import app
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.graph.bulk import ImportExport, write_import_csvs
from graphfraud.graph.delta import graph_digest, graph_phases, row_hashes
from graphfraud.graph.tables import load_tables
from graphfraud.schema import LINKS_FILE, RINGS_FILE, SCORES_FILE, USERS_FILE
from tests.graph.factories import C, Q, U, write_ring_history, write_run
from tests.graph.graphdump import tables_dump
from tests.graph.importcsv import Field, canonical, check_header, parse_field, read_export

AWKWARD = ' a, "quoted" value;\nsecond line\r\nthird | ünï😀 '  # comma, quotes, CR/LF, spaces


def _patch(path: Path, **columns: pl.Expr) -> None:
    pl.read_parquet(path).with_columns(**columns).write_parquet(path)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """The hand-made run with ugly ids, plus values that need every quoting rule: a link's
    evidence and a user's email with commas, quotes, newlines and edge spaces, reasons holding
    the default array delimiter `;`, and an empty string that must stay a string."""
    out = write_ring_history(write_run(tmp_path / "run"))
    _patch(
        out / LINKS_FILE,
        evidence=pl.when(pl.col("kind") == "email").then(pl.lit(AWKWARD)).otherwise("evidence"),
    )
    _patch(
        out / USERS_FILE,
        email=pl.when(pl.col("user_id") == C).then(pl.lit(AWKWARD)).otherwise("email"),
    )
    _patch(
        out / SCORES_FILE,
        reasons=pl.when(pl.col("user_id") == Q)
        .then(pl.lit(["semi;colon", "plain"], pl.List(pl.String)))
        .otherwise("reasons"),
    )
    _patch(out / RINGS_FILE, top_link_kinds=pl.lit(""))
    return out


def _export(run: Path, tmp_path: Path) -> tuple[ImportExport, Path]:
    out = tmp_path / "import"
    return write_import_csvs(run, out), out


def test_the_files_hold_exactly_the_graph_a_publish_makes(run: Path, tmp_path: Path) -> None:
    export, out = _export(run, tmp_path)
    imported = read_export(out)
    tables = load_tables(run)
    assert canonical(imported) == tables_dump(tables)
    # every element tagged with the run, as a full publish tags them
    assert {e.props["run_id"] for e in (*imported.nodes, *imported.relationships)} == {"run-1"}
    # the awkward values came back whole: quotes, commas, CR/LF, edge spaces, unicode, ""
    users = {n.props["id"]: n.props for n in imported.nodes if n.labels == ("User",)}
    assert users[C]["email"] == AWKWARD
    assert users[Q]["reasons"] == ["semi;colon", "plain"]
    assert users[U]["id"] == "bøb-ü-😀-名前"
    assert "label" not in users[U]  # a null is an absent property, not ""
    rings = [n.props for n in imported.nodes if n.labels == ("Ring",)]
    assert {r["top_link_kinds"] for r in rings} == {""}
    assert all(isinstance(r["suspected_ring"], bool) for r in rings)
    links = [r.props for r in imported.relationships if r.labels == ("LINKED",)]
    assert AWKWARD in {x["evidence"] for x in links}
    # `;` occurs in a reason, so the next delimiter is used; newlines need multiline fields
    assert (export.array_delimiter, export.multiline) == ("|", True)


def test_counts_ids_and_the_meta_node(run: Path, tmp_path: Path) -> None:
    export, out = _export(run, tmp_path)
    imported = read_export(out)
    tables = load_tables(run)
    phases = graph_phases(tables)
    by_label = {p.label: p.rows.height for p in phases if p.rows.height}
    assert {f.label: f.rows for f in export.files} == {**by_label, "GraphFraudMeta": 1}
    assert {f.data: f.rows for f in export.files} == imported.rows
    assert len(imported.nodes) == tables.node_count + 1
    assert len(imported.relationships) == tables.relationship_count
    # one ID space per label; nodes are keyed by the property a publish MERGEs on
    assert imported.id_property["User"] == "id"
    assert imported.id_property["Email"] == "value"
    (meta,) = [n.props for n in imported.nodes if n.labels == ("GraphFraudMeta",)]
    digest = graph_digest(phases, {p.name: row_hashes(p.rows) for p in phases})
    assert meta["id"] == "publish"
    assert meta["status"] == "complete"
    assert (meta["run_id"], meta["target_run_id"], meta["digest"]) == ("run-1", "run-1", digest)
    assert meta["run_path"] == str(run.resolve())
    assert meta["mode"] == "import"
    assert (meta["nodes"], meta["relationships"]) == (tables.node_count, tables.relationship_count)
    assert "base_run_id" not in meta
    summary = json.loads((out / "import.json").read_text())
    assert (summary["run_id"], summary["digest"]) == ("run-1", digest)
    schema = (out / "schema.cypher").read_text()
    assert "FOR (n:User) REQUIRE n.id IS UNIQUE;" in schema


def test_the_command_names_every_file_and_the_settings_the_files_need(
    run: Path, tmp_path: Path
) -> None:
    export, out = _export(run, tmp_path)
    words = shlex.split(export.command("graph fraud"))
    assert words[:3] == ["cd", str(out.resolve()), "&&"]
    admin = words[3:]
    assert admin[:5] == ["neo4j-admin", "database", "import", "full", "graph fraud"]
    sources = [w.split("=", 1) for w in admin if w.startswith(("--nodes=", "--relationships="))]
    named = {part for _, files in sources for part in files.split(",")}
    assert named == {f.header for f in export.files} | {f.data for f in export.files}
    assert all((out / path).is_file() for path in named)
    for option in (
        "--array-delimiter=|",
        '--quote="',
        "--delimiter=,",
        "--id-type=string",
        "--multiline-fields=true",
        "--trim-strings=false",
        "--legacy-style-quoting=false",
        "--ignore-empty-strings=false",
    ):
        assert option in admin, option


def test_a_plain_run_needs_no_multiline_fields(tmp_path: Path) -> None:
    export = write_import_csvs(write_run(tmp_path / "run"), tmp_path / "import")
    assert (export.array_delimiter, export.multiline) == (";", False)
    assert "--multiline-fields=true" not in export.arguments("neo4j")
    assert canonical(read_export(tmp_path / "import")) == tables_dump(load_tables(tmp_path / "run"))


def test_bad_input_is_refused_and_nothing_is_left_behind(run: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty directory"):
        write_import_csvs(run, taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    with pytest.raises(ArtifactError):
        write_import_csvs(tmp_path / "no-such-run", tmp_path / "fresh")
    # every array delimiter inside some value: refused, not written ambiguously
    _patch(
        run / SCORES_FILE,
        reasons=pl.lit(["a;b", "c|d", "e\x1ff"], pl.List(pl.String)),
    )
    with pytest.raises(ArtifactError, match="array delimiter"):
        write_import_csvs(run, tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "taken"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("id:ID(User)", Field("ID", "id", "User")),
        (":ID", Field("ID")),
        (":START_ID(Ring)", Field("START_ID", "", "Ring")),
        (":LABEL", Field("LABEL")),
        ("score:double", Field("property", "score", "", "double")),
        ("reasons:string[]", Field("property", "reasons", "", "string", True)),
        ("name", Field("property", "name")),
    ],
)
def test_the_grammar_checker_reads_the_manual_s_examples(text: str, field: Field) -> None:
    assert parse_field(text) == field


@pytest.mark.parametrize("text", ["score:float64", "x:ID(User", "reasons:string[][]", ":BOGUS"])
def test_the_grammar_checker_refuses_what_the_importer_would(text: str) -> None:
    with pytest.raises(AssertionError):
        parse_field(text)


def test_the_grammar_checker_refuses_a_node_file_without_an_id() -> None:
    with pytest.raises(AssertionError):
        check_header([parse_field(":LABEL"), parse_field("name")], node=True)
    with pytest.raises(AssertionError):
        check_header([parse_field(":START_ID(User)"), parse_field(":TYPE")], node=False)


def test_publish_bulk_csv_prints_the_import_command(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "import"
    result = CliRunner().invoke(
        app,
        ["publish", "--run", str(run), "--bulk-csv", str(out), "--graph-database", "gf"],
        env={"GRAPHFRAUD_GRAPH__URI": "bolt://127.0.0.1:1"},  # not contacted
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "neo4j-admin database import full gf --nodes=nodes/User.header.csv" in text
    assert "run-1" in text
    assert (out / "import.json").is_file()
