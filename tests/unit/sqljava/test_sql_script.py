"""Splitting SQL scripts: statements, their positions, comments and the EXECUTE STATEMENT SET block."""

from __future__ import annotations

from flinkscale.core.sql_script import position, split_statements, strip_comments


def test_statements_with_positions_comments_quotes_and_a_statement_set() -> None:
    script = (
        "-- header; with a semicolon\n"
        "SET 'a' = 'x;y';\n"
        "  CREATE TABLE t (s STRING) /* ; */ WITH ('connector' = 'datagen');\n"
        "EXECUTE STATEMENT SET BEGIN\n"
        "  INSERT INTO a SELECT * FROM t;\n"
        "  INSERT INTO b SELECT 'it''s;' FROM t;\n"
        "END;\n"
        "SELECT 1"
    )
    statements = split_statements(script)
    assert [s.keyword for s in statements] == ["SET", "CREATE", "EXECUTE", "SELECT"]
    assert [(s.line, s.column) for s in statements] == [(2, 1), (3, 3), (4, 1), (8, 1)]
    assert statements[0].text == "SET 'a' = 'x;y'"
    assert statements[2].text.endswith("END")
    assert "INSERT INTO b" in statements[2].text


def test_empty_and_comment_only_scripts_have_no_statements() -> None:
    assert split_statements("") == []
    assert split_statements("-- nothing\n/* at all */ ;;\n") == []


def test_strip_comments_keeps_offsets_and_positions_are_one_based() -> None:
    text = "a -- b\n/* c\n d */ e"
    clean = strip_comments(text)
    assert len(clean) == len(text) and clean.count("\n") == text.count("\n")
    assert clean.split() == ["a", "e"]
    assert position(text, text.index("e")) == (3, 7)
