"""clean_ip_mapper: remove (or replace) IPv4 and IPv6 addresses."""

from __future__ import annotations

from pydantic import Field

from ops_library.base import OpParams
from ops_library.patterns import SubstitutionMapper
from ops_library.registry import register

# Data-Juicer's default, verbatim: a dotted quad of 0..255 (no word boundaries, so "1.2.3.456" loses "1.2.3.45"),
# or eight colon-separated groups of 1-4 hex digits (no "::" shorthand). No look-around: Rust's leftmost-first
# matching finds what the `regex` module finds, and both read `\d` as any Unicode decimal digit.
DJ_DEFAULT_PATTERN = (
    r"(?:(?:1[0-9][0-9]\.)|(?:2[0-4][0-9]\.)|"
    r"(?:25[0-5]\.)|(?:[1-9][0-9]\.)|(?:[0-9]\.))"
    r"{3}(?:(?:1[0-9][0-9])|(?:2[0-4][0-9])|"
    r"(?:25[0-5])|(?:[1-9][0-9])|(?:[0-9]))|"
    r"([\da-fA-F]{1,4}:){7}[\da-fA-F]{1,4}"
)


@register("clean_ip_mapper")
class CleanIpMapper(SubstitutionMapper):
    """Replaces IPv4 addresses and full (8-group) IPv6 addresses with `repl`, by default removing them. Matches
    Data-Juicer's op of the same name."""

    default_pattern = DJ_DEFAULT_PATTERN

    class Params(OpParams):
        pattern: str | None = Field(
            None, description="Regex to replace (Data-Juicer syntax, r'...' accepted); None: Data-Juicer's IP regex."
        )
        repl: str = Field("", description="Replacement, Python `re.sub` syntax (backslash escapes, \\1, \\g<name>).")
