import pytest

# Candidate sentences per language, as published in the XQuAD-R README (and the mirror README).
XQUADR_README_CANDIDATES = {
    "ar": 1222,
    "de": 1276,
    "el": 1234,
    "en": 1180,
    "es": 1215,
    "hi": 1244,
    "ru": 1219,
    "th": 852,
    "tr": 1167,
    "vi": 1209,
    "zh": 1196,
}


@pytest.fixture(scope="session")
def readme_candidates() -> dict[str, int]:
    return dict(XQUADR_README_CANDIDATES)
