"""Backup CSV reading and writing."""

from __future__ import annotations

import io

import pytest

from fiwareglancesync.glancesync.errors import BackupFormatError
from fiwareglancesync.glancesync.image import read_backup, write_backup
from tests.factories import image as make_image


def test_read_variants():
    text = ("R,img1,01,active,10,c1,00000000000000000000000000000042,True,\"{u'type': u'fiware:iot', u'nid': u'199'}\"\r\n"
            "\r\n"
            "R,img2,02,active,20,,,False,{}\n"
            "R,img3,03,active,30,c3,t,true,\"{'nid' : 7, 'x': 'a,b'}\"\n")
    images = list(read_backup(io.StringIO(text), "seed.csv"))
    assert [i.name for i in images] == ["img1", "img2", "img3"]
    assert images[0].user_properties == {"type": "fiware:iot", "nid": "199"}
    assert images[0].owner == "00000000000000000000000000000042" and images[0].is_public is True
    assert images[1].checksum == "" and images[1].owner == "" and images[1].is_public is False
    assert images[2].is_public is False, "only the literal True is public"
    assert images[2].user_properties == {"nid": 7, "x": "a,b"}


def test_write_round_trip_uses_crlf_and_plain_literals():
    image = make_image(name="a,b", id="1", region="other:Madrid", owner=None, checksum="c", size=3,
                       type="x", nid=1)
    out = io.StringIO()
    write_backup([image], out)
    assert out.getvalue() == "other:Madrid,\"a,b\",1,active,3,c,,True,\"{'type': 'x', 'nid': 1}\"\r\n"
    [back] = read_backup(io.StringIO(out.getvalue()), "x")
    assert back.user_properties == image.user_properties and back.name == "a,b"


@pytest.mark.parametrize("row,fragment", [
    ("R,img,1,active,10,c,t,True\n", "expected 9 columns"),
    ("R,img,1,active,ten,c,t,True,{}\n", "size 'ten' is not an integer"),
    ("R,img,1,active,10,c,t,True,\"{'a': __import__('os')}\"\n", "not a dict literal"),
    ("R,img,1,active,10,c,t,True,[1]\n", "not a dict literal"),
])
def test_malformed_rows_name_file_and_line(row, fragment):
    text = "R,ok,0,active,1,c,t,True,{}\r\n" + row
    with pytest.raises(BackupFormatError) as raised:
        list(read_backup(io.StringIO(text), "backup_R.csv"))
    assert str(raised.value).startswith("backup_R.csv, line 2: ")
    assert fragment in str(raised.value)
