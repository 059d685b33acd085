"""A row-by-row, pure-Python statement of Data-Juicer 1.6.1's text mappers, to check the Sluice ops against.

Written from Data-Juicer's `ops/mapper/*.py` and `ops/common/helper_func.py`: one Python call per text, the
`regex` module where Data-Juicer uses it (stdlib `re` for text_chunk_mapper, as there), and the same third-party
libraries (ftfy, selectolax, OpenCC, NLTK Punkt), called on every row with no pre-checks. Only Data-Juicer's
constant sets come from `ops_library.text`, and the Punkt parameters from the package Sluice ships them in.
"""

from __future__ import annotations

import ast
import functools
import re as stdlib_re
import sys
from collections.abc import Callable
from typing import Any

import regex as re

from ops_library.text import SPECIAL_CHARACTERS

# --- ops/common/helper_func.py ---------------------------------------------------------------------------------


def strip(document: str, strip_characters: Any) -> str:
    if not document:
        return document
    beg_ind, end_ind = 0, len(document)
    for i in range(len(document)):
        if document[i] in strip_characters:
            beg_ind += 1
        else:
            break
    for i in range(1, len(document) + 1):
        if document[-i] in strip_characters:
            end_ind -= 1
        else:
            break
    return document[beg_ind:end_ind]


def split_on_whitespace(document: str) -> list[str]:
    return [word for word in re.split(" ", document) if word]


def split_on_newline_tab_whitespace(document: str) -> list[list[list[str]]]:
    sentences = [sentence.split("\t") for sentence in document.split("\n")]
    return [[split_on_whitespace(sub) for sub in sentence] for sentence in sentences]


def merge_on_whitespace_tab_newline(sentences: list[list[list[str]]]) -> str:
    joined = [[" ".join(sub) for sub in sentence if sub] for sentence in sentences]
    lines = ["\t".join(sentence) for sentence in joined if sentence]
    return "\n".join(lines) if lines else ""


def _raw(pattern: str) -> str:
    if len(pattern) > 2 and (
        (pattern.startswith("r'") and pattern.endswith("'")) or (pattern.startswith('r"') and pattern.endswith('"'))
    ):
        return pattern[2:-1]
    return pattern


# --- the mappers ---------------------------------------------------------------------------------------------------


def clean_email(text: str, pattern: str | None = None, repl: str = "") -> str:
    pattern = r"[A-Za-z0-9.\-+_]+@[a-z0-9.\-+_]+\.[a-z]+" if pattern is None else _raw(pattern)
    if not re.search(pattern, text, flags=re.DOTALL):
        return text
    return re.sub(pattern=pattern, repl=repl, string=text, flags=re.DOTALL)


IP_PATTERN = (
    r"(?:(?:1[0-9][0-9]\.)|(?:2[0-4][0-9]\.)|"
    r"(?:25[0-5]\.)|(?:[1-9][0-9]\.)|(?:[0-9]\.))"
    r"{3}(?:(?:1[0-9][0-9])|(?:2[0-4][0-9])|"
    r"(?:25[0-5])|(?:[1-9][0-9])|(?:[0-9]))|"
    r"([\da-fA-F]{1,4}:){7}[\da-fA-F]{1,4}"
)


def clean_ip(text: str, pattern: str | None = None, repl: str = "") -> str:
    pattern = IP_PATTERN if pattern is None else _raw(pattern)
    if not re.search(pattern, text, flags=re.DOTALL):
        return text
    return re.sub(pattern=pattern, repl=repl, string=text, flags=re.DOTALL)


def clean_html(raw_html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    raw_html = raw_html.replace("<li>", "\n*").replace("</li>", "").replace("<ol>", "\n*").replace("</ol>", "")
    return LexborHTMLParser(raw_html).text()


_C_COMMENT = re.compile("/\\*[^*]*\\*+(?:[^/*][^*]*\\*+)*/")
_COPYRIGHT = re.compile("copyright", re.IGNORECASE)


def clean_copyright(sample: str) -> str:
    r = _C_COMMENT.search(sample)
    if r:
        start, end = r.span()
        if _COPYRIGHT.search(sample[start:end]):
            sample = sample[:start] + sample[end:]
        return sample
    lines = sample.split("\n")
    skip = 0
    for line in lines:
        if line.startswith("//") or line.startswith("#") or line.startswith("--") or not line:
            skip += 1
        else:
            break
    if skip:
        sample = "\n".join(lines[skip:])
    return sample


def fix_unicode(text: str, normalization: str | None = None) -> str:
    import ftfy

    return ftfy.fix_text(text, normalization=(normalization or "NFC").upper())


PUNCTUATION_UNICODE = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"', "」": '"',
    "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")",
    "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">",
    "【": "[", "】": "]", "％": "%", "►": "-",
}  # fmt: skip


def punctuation_normalization(text: str) -> str:
    return "".join([PUNCTUATION_UNICODE.get(c, c) for c in text])


@functools.lru_cache(maxsize=16)
def _opencc(mode: str) -> Any:
    import opencc

    return opencc.OpenCC(mode + ".json")  # Data-Juicer keeps one converter per process, too


def chinese_convert(text: str, mode: str = "s2t") -> str:
    return _opencc(mode).convert(text)


def remove_bibliography(text: str) -> str:
    pattern = r"(\\appendix|"
    pattern += r"\\begin\{references\}|"
    pattern += r"\\begin\{REFERENCES\}|"
    pattern += r"\\begin\{thebibliography\}|"
    pattern += r"\\bibliography\{.*\}"
    pattern += r").*$"
    return re.sub(pattern=pattern, repl=r"", string=text, flags=re.DOTALL)


def remove_comments(text: str, inline: bool = True, multiline: bool = True, doc_type: Any = "tex") -> str:
    if inline:
        text = re.sub(pattern=r"[^\\]%.+$", repl=r"", string=text, flags=re.MULTILINE)
    if multiline:
        text = re.sub(pattern=r"(?m)^%.*\n?", repl=r"", string=text, flags=re.MULTILINE)
    return text


def remove_header(text: str, drop_no_head: bool = True) -> str:
    pattern = r"^(.*?)("
    pattern += r"\\\bchapter\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bpart\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bsection\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bsubsection\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bsubsubsection\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bparagraph\b\*?(?:\[(.*?)\])?\{(.*?)\}|"
    pattern += r"\\\bsubparagraph\b\*?(?:\[(.*?)\])?\{(.*?)\}"
    pattern += r")"
    if not re.search(pattern, text, flags=re.DOTALL):
        return "" if drop_no_head else text
    return re.sub(pattern=pattern, repl=r"\2", string=text, flags=re.DOTALL)


def remove_long_words(text: str, min_len: int = 1, max_len: int = sys.maxsize) -> str:
    def keep(word: str) -> bool:
        if min_len <= len(word) <= max_len:
            return True
        if len(word) > max_len:
            return min_len <= len(strip(word, SPECIAL_CHARACTERS)) <= max_len
        return False

    sentences = split_on_newline_tab_whitespace(text)
    return merge_on_whitespace_tab_newline([[[w for w in sub if keep(w)] for sub in s] for s in sentences])


def remove_non_chinese_character(
    text: str, keep_alphabet: bool = True, keep_number: bool = True, keep_punc: bool = True
) -> str:
    pattern = "[^\u4e00-\u9fa5"
    if keep_alphabet:
        pattern += "A-Za-z"
    if keep_number:
        pattern += "0-9"
    if keep_punc:
        pattern += ".， ,\\-。%《*》/•、&＆(—)（+）：？!！“”·]+"
    else:
        pattern += "]"
    if not re.search(pattern, text, flags=re.DOTALL):
        return text
    return re.sub(pattern=pattern, repl=r"", string=text, flags=re.DOTALL)


def remove_specific_chars(text: str, chars_to_remove: str | list[str] = "◆●■►▼▲▴∆▻▷❖♡□") -> str:
    if not chars_to_remove:
        return text
    pattern = "[" + "".join(re.escape(c) for c in chars_to_remove) + "]"
    return re.sub(pattern=pattern, repl=r"", string=text, flags=re.DOTALL)


def split_sentence(text: str) -> list[str]:
    text = re.sub(r"([.。！!？\?])([^’”])", r"\1\n\2", text)
    text = re.sub(r"(\.{6})([^’”])", r"\1\n\2", text)
    text = re.sub("(\\…{2})([^’”])", r"\1\n\2", text)
    text = re.sub(r"([.。!！？\?\.{6}\…{2}][’”])([^’”])", r"\1\n\2", text)
    return text.split("\n")


def remove_repeat_sentences(
    text: str,
    lowercase: bool = False,
    ignore_special_character: bool = True,
    min_repeat_sentence_length: int = 2,
    tokenizer: str | None = None,
) -> str:
    remove_regex = re.compile(r"[^a-zA-Z0-9\u4e00-\u9fa5\n\t ]") if ignore_special_character else None
    tokenize: Callable[[str], list[str]] = split_sentence
    if tokenizer is not None:
        node = ast.parse(tokenizer, mode="eval")
        fn = eval(compile(node, "<string>", "eval"), {"__builtins__": __builtins__})

        def tokenize(line: str) -> list[str]:
            return [(" " + s if i > 0 and not s[:1].isspace() else s) for i, s in enumerate(fn(line))]

    new_lines, hash_set = [], set()
    for line in text.split("\n"):
        new_sent = ""
        if line:
            for sentence in tokenize(line):
                copy = sentence.strip()
                if lowercase:
                    copy = copy.lower()
                if remove_regex:
                    copy = remove_regex.sub("", copy)
                if len(copy) < min_repeat_sentence_length:
                    new_sent += sentence
                elif copy not in hash_set:
                    new_sent += sentence
                    hash_set.add(copy)
        new_lines.append(new_sent)
    return "\n".join(new_lines)


# `regex`'s \S is "not White_Space": Python's isspace() less U+001C..U+001F, which stdlib `re` counts as space.
_WHITE_SPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f")
_NON_SPACE = f"[^{stdlib_re.escape(_WHITE_SPACE)}]"


def remove_table_text(text: str, min_col: int = 2, max_col: int = 20) -> str:
    # Data-Juicer's pattern with \S spelled out, run with stdlib `re`: the `regex` module takes minutes here.
    for i in range(min_col - 1, max_col):
        cell = _NON_SPACE
        text = stdlib_re.compile(rf"(?<=\n)(({cell}+?)([ |\t]({cell}+?)){{{i}}}\n+){{2,}}").sub("", text)
    return text


def remove_words_with_incorrect_substrings(
    text: str, lang: str = "en", tokenization: bool = False, substrings: list[str] | None = None
) -> str:
    if tokenization:
        raise NotImplementedError("tokenization needs a SentencePiece model")
    substrings = ["http", "www", ".com", "href", "//"] if substrings is None else substrings

    def keep(word: str) -> bool:
        word = strip(word, SPECIAL_CHARACTERS)
        return all([(s not in word) for s in substrings])

    sentences = split_on_newline_tab_whitespace(text)
    return merge_on_whitespace_tab_newline([[[w for w in sub if keep(w)] for sub in s] for s in sentences])


def expand_macro(text: str) -> str:
    nc = re.compile(r"\\\bnewcommand\b\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$", flags=re.MULTILINE)
    df = re.compile(r"\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$", flags=re.MULTILINE)
    macros = {}
    for reg in [nc, df]:
        for match in reg.finditer(text):
            macros[match.group(1).encode("unicode-escape").decode("utf-8")] = (
                match.group(2).encode("unicode-escape").decode("utf-8")
            )
    for name, value in macros.items():
        text = re.sub(pattern=r"(" + name + r")" + r"([^a-zA-Z0-9])", repl=value + r"\2", string=text)
    return text


def sentence_split(text: str, lang: str = "en") -> str:
    from ops_library.mappers.sentence_split_mapper import punkt

    return "\n".join(punkt(lang).tokenize(text))


def text_chunks(
    text: str, max_len: int | None = None, split_pattern: str | None = r"\n\n", overlap_len: int = 0
) -> list[str]:
    """text_chunk_mapper's `get_text_chunks` (character lengths, stdlib `re`). Its `recursively_chunk` is written
    as the equivalent loop: Data-Juicer's recursion fails past ~1000 chunks (RecursionError on long texts)."""

    def recursively_chunk(text: str) -> list[str]:
        assert max_len is not None and split_pattern is not None
        chunks = []
        while len(text) > max_len:
            sub_text = text[:max_len]
            matches = list(stdlib_re.finditer(split_pattern, sub_text))
            if not matches:
                cur_text, text = sub_text, text[max_len - overlap_len :]
            else:
                cur_text, text = sub_text[: matches[-1].start()], text[matches[-1].end() :]
            chunks += [cur_text] if cur_text.strip() else []
        return [*chunks, text]

    if split_pattern is not None and max_len is None:
        return [t for t in stdlib_re.split(split_pattern, text) if t is not None and t.strip()]
    if split_pattern is None and max_len is not None:
        if len(text) <= max_len:
            return [text]
        return [text[s : s + max_len] for s in range(0, len(text), max_len - overlap_len)]
    return recursively_chunk(text)


MAPPERS: dict[str, Callable[..., str]] = {
    "clean_email_mapper": clean_email,
    "clean_ip_mapper": clean_ip,
    "clean_html_mapper": clean_html,
    "clean_copyright_mapper": clean_copyright,
    "fix_unicode_mapper": fix_unicode,
    "punctuation_normalization_mapper": punctuation_normalization,
    "chinese_convert_mapper": chinese_convert,
    "remove_bibliography_mapper": remove_bibliography,
    "remove_comments_mapper": remove_comments,
    "remove_header_mapper": remove_header,
    "remove_long_words_mapper": remove_long_words,
    "remove_non_chinese_character_mapper": remove_non_chinese_character,
    "remove_specific_chars_mapper": remove_specific_chars,
    "remove_repeat_sentences_mapper": remove_repeat_sentences,
    "remove_table_text_mapper": remove_table_text,
    "remove_words_with_incorrect_substrings_mapper": remove_words_with_incorrect_substrings,
    "expand_macro_mapper": expand_macro,
    "sentence_split_mapper": sentence_split,
}


def reference_map(op: str, params: dict[str, Any], rows: list[dict], text_key: str = "text") -> list[dict]:
    """Apply one Data-Juicer mapper to rows; text_chunk_mapper gives one row per chunk (other fields copied)."""
    if op == "text_chunk_mapper":
        return [{**r, text_key: c} for r in rows for c in text_chunks(r[text_key], **params)]
    fn = MAPPERS[op]
    return [{**r, text_key: fn(r[text_key], **params)} for r in rows]
