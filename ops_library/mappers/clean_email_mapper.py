"""clean_email_mapper: remove (or replace) e-mail addresses."""

from __future__ import annotations

from pydantic import Field

from ops_library.base import OpParams
from ops_library.patterns import SubstitutionMapper
from ops_library.registry import register

# Data-Juicer's default, verbatim. The domain part is lower-case only: "x@EXAMPLE.COM" stays. ASCII classes and no
# look-around, so Rust's leftmost-first matching finds what the `regex` module finds.
DJ_DEFAULT_PATTERN = r"[A-Za-z0-9.\-+_]+@[a-z0-9.\-+_]+\.[a-z]+"


@register("clean_email_mapper")
class CleanEmailMapper(SubstitutionMapper):
    """Replaces e-mail addresses (`local@domain.tld`, domain in lower case) with `repl`, by default removing
    them. Matches Data-Juicer's op of the same name."""

    default_pattern = DJ_DEFAULT_PATTERN

    class Params(OpParams):
        pattern: str | None = Field(
            None,
            description="Regex to replace (Data-Juicer syntax, r'...' accepted); None: Data-Juicer's e-mail regex.",
        )
        repl: str = Field("", description="Replacement, Python `re.sub` syntax (backslash escapes, \\1, \\g<name>).")
