"""Synthetic test cards, and every personal string the tests use, for the privacy scan.

The numbers are made up but carry valid GB 11643 check characters, so they pass validation
like real ones; names are 测试甲 ... style. ``PERSONAL_STRINGS`` lists every full ID number and
name used anywhere in the ID-card tests: ``tests/test_privacy.py`` greps everything the suite
produced for them. Add a string here whenever a test uses a new one.
"""

from __future__ import annotations

from datetime import date

from drivers.sim.sam_cards import (
    Foreigner2017Card,
    Foreigner2023Card,
    HmtPermitCard,
    ResidentCard,
    SimCard,
)

ADULT = ResidentCard(name="测试甲", id_number="99010519800101001X", gender_code="1",
                     birth=date(1980, 1, 1), valid_from=date(2015, 3, 1),
                     valid_to=date(2035, 3, 1), nation_code="01")
ELDER_LONG_TERM = ResidentCard(name="测试乙", id_number="99030519500228006X", gender_code="2",
                               birth=date(1950, 2, 28), valid_from=date(2010, 6, 1),
                               valid_to=None, nation_code="05")
LEAP_DAY = ResidentCard(name="欧阳测试", id_number="990107200002290036", gender_code="1",
                        birth=date(2000, 2, 29), valid_from=date(2020, 3, 1),
                        valid_to=date(2030, 3, 1), nation_code="01")
EXPIRED = ResidentCard(name="测试己", id_number="990102194901010122", gender_code="2",
                       birth=date(1949, 1, 1), valid_from=date(2004, 1, 1),
                       valid_to=date(2024, 1, 1), nation_code="11")
HMT = HmtPermitCard(name="测试丙", id_number="810000199001010019", gender_code="1",
                    birth=date(1990, 1, 1), valid_from=date(2019, 5, 1),
                    valid_to=date(2029, 5, 1))
TAIWAN = HmtPermitCard(name="测试庚", id_number="830000198512310020", gender_code="2",
                       birth=date(1985, 12, 31), valid_from=date(2021, 1, 1),
                       valid_to=date(2031, 1, 1))
FOREIGNER_2017 = Foreigner2017Card(english_name="TESTPERSON ALPHA", chinese_name="测试丁",
                                   id_number="USA990078061501", gender_code="1",
                                   birth=date(1978, 6, 15), valid_from=date(2017, 7, 1),
                                   valid_to=date(2027, 7, 1))
FOREIGNER_2023 = Foreigner2023Card(name="测试戊", english_name="TESTPERSON BRAVO",
                                   id_number="991156197806150016", gender_code="1",
                                   birth=date(1978, 6, 15), valid_from=date(2023, 12, 1),
                                   valid_to=date(2033, 12, 1))
#: a foreigner without a Chinese name: the English name is the name
FOREIGNER_2017_LATIN = Foreigner2017Card(english_name="TESTPERSON CHARLIE",
                                         id_number="GBR220088010101", gender_code="2",
                                         birth=date(1988, 1, 1), valid_from=date(2018, 1, 1),
                                         valid_to=date(2028, 1, 1))

TEST_CARDS: dict[str, SimCard] = {
    "adult": ADULT, "elder_long_term": ELDER_LONG_TERM, "leap_day": LEAP_DAY,
    "expired": EXPIRED, "hmt": HMT, "taiwan": TAIWAN, "foreigner_2017": FOREIGNER_2017,
    "foreigner_2023": FOREIGNER_2023, "foreigner_2017_latin": FOREIGNER_2017_LATIN,
}

#: a number with a wrong check character (the valid one, ADULT's, ends in X)
BAD_CHECK_NUMBER = "990105198001010017"

#: names used only by the masking tables in tests/test_identity.py
MASKING_NAMES = ("张三", "欧阳娜娜", "测试甲", "TESTPERSON ALPHA")


#: full names and numbers other test files use (printer masking, log masking)
OTHER_TEST_STRINGS = ("张三丰", "990105194912310023")


def _strings() -> tuple[str, ...]:
    out: list[str] = [BAD_CHECK_NUMBER, *MASKING_NAMES, *OTHER_TEST_STRINGS]
    for card in TEST_CARDS.values():
        for attr in ("name", "english_name", "chinese_name", "id_number"):
            value = getattr(card, attr, "")
            if value:
                out.append(value)
    return tuple(dict.fromkeys(out))


PERSONAL_STRINGS: tuple[str, ...] = _strings()
