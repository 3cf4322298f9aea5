"""Attachments as customers send them: CSV in the encodings spreadsheets save, and their near misses.

The rule under test (``mime._decode_attachment``): a byte-order mark or a
declared charset on the allow-list decides; otherwise UTF-8 when the file is
UTF-8; otherwise the encoding is guessed, and the guess is used only when it
cannot change a viewer id. Whatever happens, an id is read exactly or the
request goes to review: never a different id.
"""

from __future__ import annotations

import codecs
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure.parse import parse_message
from erasure.parse.ids import RESERVED_EXAMPLE_IDS
from erasure.parse.mime import ALLOWED_CHARSETS, _keeps_ascii_bytes
from erasure.verify import REASONS
from tests.world import with_attachment


def attached(data: bytes, *, filename: str = "ids.csv", content_type: str = "text/csv") -> bytes:
    return with_attachment(data, filename=filename, content_type=content_type,
                           text="Please erase the viewers in the attached file.")


def codes(message) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.code for p in message.problems}


IDS = ("viewer-00001", "viewer-00002", "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77")

# Real exports: the bytes as the spreadsheet saved them, with letters outside ASCII in other columns.
CP1252_SEMICOLON = (  # German Excel, "CSV (Trennzeichen-getrennt)": semicolons, CRLF, cp1252
    "viewer_id;Name;Ort;Betrag\r\n"
    "viewer-00001;Zoé Müller;Zürich;12,50 €\r\n"
    "viewer-00002;Jürgen Weiß;Köln;7 €\r\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77;André Dupont;Besançon;0 €\r\n"
).encode("cp1252")
CP1252_QUOTED = (  # US Excel, "CSV (Comma delimited)": quotes around cells with commas, “smart quotes” and a dash
    'Name,viewer_id,Notes\r\n"Müller, Zoé",viewer-00001,“VIP” – cancelled\r\n'
    '"Ñúñez, José",viewer-00002,€ refund\r\nBjörk,3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,\r\n'
).encode("cp1252")
LATIN1 = (
    "viewer_id,ville,remarque\nviewer-00001,Besançon,déjà supprimé\nviewer-00002,Genève,à effacer\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,Ñandú,año\n"
).encode("latin-1")
SHORT_CP1252 = (  # short, with accents charset-normalizer finds messy (chaos 0.23): still read
    'viewer_id,name\r\nviewer-00001,"Ñúñez, José"\r\nviewer-00002,"Björk"\r\n'
    '3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,"déjà vu"\r\n'
).encode("cp1252")
MAC_ROMAN = (  # Excel for Mac, "Comma Separated Values (.csv)" before 2016: Mac Roman, lone CR line ends
    "viewer_id,name\rviewer-00001,Zoé Müller\rviewer-00002,André Weiß\r3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,Ça va\r"
).encode("mac_roman")
SHIFT_JIS = (  # Japanese Excel, "CSV (カンマ区切り)": Shift_JIS (cp932), CRLF
    "viewer_id,氏名,メモ\r\nviewer-00001,山田太郎,削除希望\r\nviewer-00002,佐藤花子,退会済み\r\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,鈴木一郎,顧客番号：１２３\r\n"
).encode("cp932")
CP1251 = (
    "viewer_id;Имя;Город\r\nviewer-00001;Иван Петров;Москва\r\nviewer-00002;Мария;Санкт-Петербург\r\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77;Ёлка;Казань\r\n"
).encode("cp1251")
GBK = (
    "viewer_id,姓名,城市\r\nviewer-00001,张伟,北京\r\nviewer-00002,王芳,上海\r\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77,李娜,广州\r\n"
).encode("gbk")
UNICODE_TEXT = (  # Excel "Unicode Text (*.txt)": UTF-16 LE with a BOM, tab-separated
    "viewer_id\tName\tStadt\r\nviewer-00001\tZoé Müller\tZürich\r\nviewer-00002\t山田太郎\t東京\r\n"
    "3f2a9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e77\tØyvind\tOslo\r\n"
)
TAB_TABLE = UNICODE_TEXT.replace("Zoé Müller\tZürich", "Zoe\tZurich").replace("山田太郎\t東京", "Yamada\tTokyo").replace("Øyvind", "O")


@pytest.mark.parametrize(
    "data, filename, content_type",
    [
        (CP1252_SEMICOLON, "export.csv", "text/csv"),
        (CP1252_QUOTED, "viewers.csv", "application/vnd.ms-excel"),
        (CP1252_QUOTED, "viewers.csv", "application/octet-stream"),
        (LATIN1, "ids.csv", "text/csv"),
        (SHORT_CP1252, "ids.csv", "text/csv"),
        (MAC_ROMAN, "ids.csv", "text/csv"),
        (SHIFT_JIS, "削除依頼.csv", "text/csv"),
        (CP1251, "ids.csv", "text/csv"),
        (GBK, "ids.csv", "text/csv"),
        (codecs.BOM_UTF16_LE + UNICODE_TEXT.encode("utf-16-le"), "Unicode Text.txt", "text/plain"),
        (UNICODE_TEXT.encode("utf-16-le"), "no-bom.txt", "text/plain"),  # the same without its mark
        (UNICODE_TEXT.encode("utf-16-be"), "no-bom.csv", "text/csv"),
        (TAB_TABLE.encode("ascii"), "tabs.txt", "text/plain"),  # a tab-separated .txt with a heading
        (codecs.BOM_UTF8 + UNICODE_TEXT.encode("utf-8"), "utf8-bom.csv", "text/csv"),
        (UNICODE_TEXT.encode("utf-8"), "utf8.csv", "text/csv"),
    ],
    ids=["cp1252-semicolon", "cp1252-quoted", "cp1252-octet-stream", "latin1", "cp1252-short", "mac-roman", "shift-jis", "cp1251",
         "gbk", "utf16le-bom-txt", "utf16le-no-bom", "utf16be-no-bom", "tab-txt", "utf8-bom", "utf8"],
)
def test_real_exports_are_read_exactly(data: bytes, filename: str, content_type: str) -> None:
    message = parse_message(attached(data, filename=filename, content_type=content_type))
    assert message.viewer_ids == IDS
    assert message.problems == ()


@pytest.mark.parametrize(
    "value, mangled",
    [("1.23457E+15", True), ("1E+15", True), ("-1,2E+16", True), ("9.99E-05", True),
     ("1e10", False), ("3e45", False), ("1.2E5", False), ("1.2e+15", False), ("E+15", False), ("12E+15", False),
     ("1.23457E+15x", False), ("1.2E+1500", False)],
)
def test_excels_scientific_notation_in_a_file_goes_to_review_and_nothing_else(value: str, mangled: bool) -> None:
    message = parse_message(attached(f'viewer_id;name\r\n{value};Zoe\r\n'.encode()))  # European Excel: decimal comma
    if mangled:
        assert message.viewer_ids == () and "viewer_id_number_mangled" in codes(message)
    else:
        assert message.viewer_ids == (value,) and message.problems == ()


def test_the_guess_is_needed_at_all() -> None:
    """The cp1252 export is not UTF-8: before the guess it went to review."""
    with pytest.raises(UnicodeDecodeError):
        CP1252_SEMICOLON.decode("utf-8")


NON_ASCII_ID = "viewer_id;Name\r\nmüller-01;Zoé\r\n".encode("cp1252")


@pytest.mark.parametrize(
    "data, content_type, code",
    [
        # an id outside ASCII in a guessed encoding: ü here, ű or Ă in the other likely code pages
        (NON_ASCII_ID, "text/csv", "attachment_encoding_unclear"),
        ("viewer_id\nzoé-77\n".encode("latin-1"), "text/csv", "attachment_encoding_unclear"),
        ("viewer_id,氏名\r\n山田-01,山田太郎\r\n".encode("cp932"), "text/csv", "attachment_encoding_unclear"),
        # UTF-16 guessed from its NUL bytes, with an id that is not ASCII: stray byte pairs?
        ("viewer_id\r\n東京-1\r\n".encode("utf-16-le"), "text/csv", "attachment_encoding_unclear"),
        # not text at all
        (bytes(range(256)) * 8, "text/csv", "attachment_undecodable"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(128, 256)) * 4, "text/csv", "attachment_undecodable"),
        # a declared charset decides, and is not second-guessed: cp1252 bytes declared us-ascii
        (CP1252_SEMICOLON, "text/csv; charset=us-ascii", "attachment_undecodable"),
        (CP1252_SEMICOLON, "text/csv; charset=utf-8", "attachment_undecodable"),
        # refused charsets stay refused, declared or not
        (b"viewer_id\nviewer+AC0-1\n", "text/csv; charset=utf-7", "charset_refused"),
        # a stray NUL in UTF-8 is a bad character, not UTF-16
        (b"viewer_id\nab\x00cd\nviewer-00002\n", "text/csv", "viewer_id_control_chars"),
    ],
    ids=["cp1252-umlaut-id", "latin1-accent-id", "shift-jis-kanji-id", "utf16-no-bom-kanji-id", "binary", "zip-as-csv",
         "declared-us-ascii", "declared-utf8", "utf7", "stray-nul"],
)
def test_near_misses_go_to_review(data: bytes, content_type: str, code: str) -> None:
    message = parse_message(attached(data, content_type=content_type))
    assert code in codes(message)
    assert code in REASONS
    assert not any(not i.isascii() for i in message.viewer_ids)


def test_the_officer_is_told_why_the_guess_was_not_used() -> None:
    message = parse_message(attached(NON_ASCII_ID))
    (problem,) = [p for p in message.problems if p.code == "attachment_encoding_unclear"]
    assert "ids.csv" in problem.text and "not ASCII" in problem.text
    assert "müller" not in problem.text  # no problem text names an id


def test_a_confident_detector_is_not_trusted_with_an_id_outside_ascii() -> None:
    """Found by the property below: charset-normalizer is sure these cp1252 bytes are Shift_JIS ("｡爍")."""
    message = parse_message(attached("viewer_id,name\r\n¡à¡,Smith\r\n".encode("cp1252")))
    assert message.viewer_ids == ()
    assert "attachment_encoding_unclear" in codes(message)



def test_a_declared_allowed_charset_is_used_as_declared() -> None:
    message = parse_message(attached(CP1252_SEMICOLON, content_type='text/csv; charset="windows-1252"'))
    assert message.viewer_ids == IDS and message.problems == ()
    message = parse_message(attached(NON_ASCII_ID, content_type="text/csv; charset=windows-1252"))
    assert message.viewer_ids == ("müller-01",) and message.problems == ()


# ---------------------------------------------------------------- the claims the guess rests on

MULTIBYTE = sorted(c for c in ALLOWED_CHARSETS if c in {"shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030",
                                                         "big5", "big5hkscs", "euc_kr", "cp949"})
STRUCTURE = b'\t\n\r ",;'


@pytest.mark.parametrize("codec", MULTIBYTE)
def test_no_allowed_multibyte_charset_hides_structure_or_ascii_inside_a_character(codec: str) -> None:
    for lead in range(0x80, 0x100):
        for trail in range(0x100):
            try:
                text = bytes([lead, trail]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(text) == 1:  # one two-byte character
                assert not text.isascii(), (codec, hex(lead), hex(trail))
                assert trail not in STRUCTURE, (codec, hex(lead), hex(trail))


def test_gb18030_four_byte_characters_use_only_digits_below_0x80() -> None:
    for second in STRUCTURE:
        for first in range(0x81, 0xFF, 7):
            for third in range(0x81, 0xFF, 5):
                with pytest.raises(UnicodeDecodeError):
                    bytes([first, second, third, 0x30]).decode("gb18030")


@pytest.mark.parametrize(
    "names, keeps",
    [
        (["cp1252"], True), (["cp775"], True), (["mac_roman"], True), (["cp932"], True), (["latin_1"], True),
        (["utf_16_le"], False), (["utf_7"], False), (["hz"], False), (["iso2022_jp"], False), (["nonsense"], False),
        (["utf_16_le", "cp1252"], True),
    ],
)
def test_which_readings_keep_ascii_bytes(names: list[str], keeps: bool) -> None:
    assert _keeps_ascii_bytes(names) is keeps


# ---------------------------------------------------------------- never a different id

ASCII_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@", min_size=1,
                   max_size=20).filter(lambda s: s.lower() not in RESERVED_EXAMPLE_IDS and not SCIENTIFIC.fullmatch(s))
SCIENTIFIC = re.compile(r"-?\d(?:[.,]\d+)?E[+-]\d{2,3}")  # Excel's 1.23E+15: review, by design
ANY_ID = st.text(min_size=1, max_size=12).map(lambda s: s.strip().replace("\n", "").replace("\r", "")).filter(
    lambda s: bool(s) and not any(c in s for c in ' ,;\t"\x00'))
NAMES = ["Zoé Müller", "Jürgen Weiß", "André Dupont", "Ñúñez, José", "Björk", "Øyvind Ås", "Œuvre 5 €", "Łukasz Żółw",
         "Иван Петров", "Мария Ёлкина", "山田太郎", "佐藤花子", "张伟", "王芳", "김민준", "Smith", "déjà vu", "naïve café"]
ENCODINGS = ["cp1252", "latin-1", "cp1250", "cp1251", "mac_roman", "cp932", "gbk", "euc_kr", "koi8-r", "utf-16-le"]


def _names(encoding: str) -> st.SearchStrategy[list[str]]:
    """Names in the other column, made of letters the encoding has (as a spreadsheet in that code page would)."""
    def fits(name: str) -> bool:
        try:
            name.encode(encoding)
        except UnicodeEncodeError:
            return False
        return True

    return st.lists(st.sampled_from([n for n in NAMES if fits(n)]), min_size=4, max_size=4)


def _csv(ids: list[str], names: list[str]) -> str:
    return "viewer_id,name\r\n" + "".join(f'{i},"{n}"\r\n' for i, n in zip(ids, names))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_ID, min_size=1, max_size=4, unique=True),
       st.sampled_from(ENCODINGS).flatmap(lambda e: st.tuples(st.just(e), _names(e))))
def test_any_id_is_read_exactly_or_the_request_goes_to_review(ids: list[str], encoded_names: tuple[str, list[str]]) -> None:
    encoding, names = encoded_names
    try:
        data = _csv(ids, names).encode(encoding)
    except UnicodeEncodeError:
        return  # an id the code page cannot hold
    message = parse_message(attached(data))
    if message.problems == ():
        assert list(message.viewer_ids) == ids


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ASCII_ID, min_size=1, max_size=4, unique=True),
       st.sampled_from(["cp1252", "latin-1", "cp1250", "cp1251", "cp932", "gbk", "mac_roman"]).flatmap(
           lambda e: st.tuples(st.just(e), _names(e))))
def test_ascii_ids_in_a_local_export_are_read(ids: list[str], encoded_names: tuple[str, list[str]]) -> None:
    """Ids are ASCII in practice, so the usual exports are read whatever the other columns hold."""
    encoding, names = encoded_names
    message = parse_message(attached(_csv(ids, names).encode(encoding)))
    assert list(message.viewer_ids) == ids
    assert message.problems == ()
