"""shared.textfiles on files written by the test: a UTF-8 BOM, Excel's UTF-16 "Unicode Text", a
GBK export, the delimiter sniff, and the first line that tells a file's layout."""
import pytest

from shared import textfiles
from shared.errors import UserError


def test_read_text_drops_a_bom_and_reads_utf16(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufefftext,label\n好,pos\n".encode())
    (tmp_path / "excel.txt").write_bytes("text\tlabel\r\n好\tpos\r\n".encode("utf-16"))
    assert textfiles.read_text(tmp_path / "bom.csv") == "text,label\n好,pos\n"
    assert textfiles.read_text(tmp_path / "excel.txt").splitlines() == ["text\tlabel", "好\tpos"]


def test_a_gbk_file_is_one_line_naming_the_byte(tmp_path):
    (tmp_path / "gbk.csv").write_bytes("text\n质量很好\n".encode("gbk"))
    with pytest.raises(UserError, match=r"gbk.csv is not UTF-8 text \(byte 0x\w\w at offset 5.*iconv -f GBK") as err:
        textfiles.read_text(tmp_path / "gbk.csv")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "delimiter"), [("a;b\n1,5;2\n", ";"), ("a,b\n\"x,y\",2\n", ","),
                                                 ("a\tb\nx, y\t2\n", "\t"), ("one text\n", ",")])
def test_sniff_delimiter(tmp_path, text, delimiter):
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    assert textfiles.sniff_delimiter(tmp_path / "f.csv") == delimiter


def test_first_line_skips_blank_lines_and_a_bom(tmp_path):
    (tmp_path / "f.txt").write_bytes("\ufeff\n  \r\n  __label__pos 好  \nnext\n".encode())
    (tmp_path / "blank.txt").write_text("\n\n", encoding="utf-8")
    assert textfiles.first_line(tmp_path / "f.txt") == "__label__pos 好"
    assert textfiles.first_line(tmp_path / "blank.txt") == ""
