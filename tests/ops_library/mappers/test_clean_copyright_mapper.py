import pytest

from tests.ops_library.mappers.helpers import apply

OP = "clean_copyright_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("\n\n", ""),  # every line is empty: all skipped
        ("   ", "   "),  # a line of spaces is not empty
        ("/* Copyright 2024 ACME */\nint x;", "\nint x;"),
        ("int y;\n/* (c) COPYRIGHT */ int x;", "int y;\n int x;"),  # the first comment anywhere
        ("/* a note */\n// Copyright\nint x;", "/* a note */\n// Copyright\nint x;"),  # a comment: no line skipping
        ("/* note */ /* copyright */", "/* note */ /* copyright */"),  # only the first comment is looked at
        ("/* COPYRİGHT */x", "x"),  # Data-Juicer's regex engine folds İ to i
        ("# licence\n// more\n-- sql\n\ncode\n# kept", "code\n# kept"),
        ("#!/bin/sh\n#\necho hi", "echo hi"),
        ("# only comments\n# here", ""),
        ("# 版权所有\n代码", "代码"),
        ("// 😀\n😀", "😀"),
        ("# تعليق\nשלום", "שלום"),
        ("# a\r\n# b\r\ncode\r\n", "code\r\n"),
        ("\r\n# a", "\r\n# a"),  # "\r" is not an empty line
        ("# x\n" * 50_000 + "y", "y"),
    ],
)
def test_cleans_copyright_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]
