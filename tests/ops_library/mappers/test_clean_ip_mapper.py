import pytest

from tests.ops_library.mappers.helpers import apply

OP = "clean_ip_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", "   "),
        ("server 192.168.0.1 down", "server  down"),
        ("0.0.0.0 and 255.255.255.255", " and "),
        ("256.1.1.1", "2"),  # "56.1.1.1" is a valid quad; no word boundaries in Data-Juicer's pattern
        ("1.2.3.456", "6"),  # the last octet takes "45"
        ("version 1.2.3", "version 1.2.3"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", ""),
        ("2001:db8::1", "2001:db8::1"),  # "::" shorthand is not matched
        ("IP：10.0.0.1。中文", "IP：。中文"),
        ("🖥️10.0.0.1🖥️", "🖥️🖥️"),
        ("عنوان 8.8.8.8 هنا", "عنوان  هنا"),
        ("1.1.1.1\r\n2.2.2.2\r\n", "\r\n\r\n"),
        ("\u0661.\u0662.\u0663.\u0664", "\u0661.\u0662.\u0663.\u0664"),  # IPv4 octets are ASCII classes
        ("x" * 200_000 + " 9.9.9.9", "x" * 200_000 + " "),
    ],
)
def test_removes_ip_addresses_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_repl_and_pattern() -> None:
    assert apply(OP, "at 10.0.0.1.", repl="<IP>") == ["at <IP>."]
    assert apply(OP, "port 8080 and 80", pattern=r"\d{4}", repl="N") == ["port N and 80"]
