"""Leveraged tokens go, real pairs that merely end in UP/DOWN/BULL/BEAR stay; listing pages parse exactly."""

import pytest

from crypto_assets.binance.listing import parse_list_bucket
from crypto_assets.binance.universe import TOP100, is_leveraged


@pytest.mark.parametrize("base", ["BTCUP", "BTCDOWN", "ETHBULL", "XRPBEAR", "BNBUP", "EOSBEAR", "LINKDOWN"])
def test_leveraged_tokens_are_recognized(base):
    assert is_leveraged(base)


@pytest.mark.parametrize("base", ["SYRUP", "JUP", "SUPER", "BTC", "UP", "DOWN", "PEOPLE", "BULLISH", "XUP"])
def test_real_assets_are_kept(base):
    assert not is_leveraged(base, {"BTC", "ETH", "PEOPLE", "SUPER"})


def test_underlying_seen_in_the_listing_counts():
    assert is_leveraged("NEWUP", {"NEW"}) and not is_leveraged("NEWUP", {"OLD"})


def test_static_top100_is_one_hundred_distinct_usdt_pairs():
    assert len(TOP100) == len(set(TOP100)) == 100 and all(s.endswith("USDT") for s in TOP100)


def test_listing_page_with_namespace_prefixes_and_markers():
    page = parse_list_bucket(
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>data.binance.vision</Name><Prefix>data/spot/monthly/klines/</Prefix><Marker></Marker>"
        b"<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
        b"<NextMarker>data/spot/monthly/klines/ETHUSDT/</NextMarker>"
        b"<CommonPrefixes><Prefix>data/spot/monthly/klines/BTCUSDT/</Prefix></CommonPrefixes>"
        b"<CommonPrefixes><Prefix>data/spot/monthly/klines/ETHUSDT/</Prefix></CommonPrefixes></ListBucketResult>"
    )
    assert page.prefixes == ["data/spot/monthly/klines/BTCUSDT/", "data/spot/monthly/klines/ETHUSDT/"]
    assert page.truncated and page.continuation() == "data/spot/monthly/klines/ETHUSDT/"


def test_listing_without_next_marker_continues_from_the_last_key():
    page = parse_list_bucket(
        "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/b.zip</Key><Size>3</Size>"
        '<ETag>"x"</ETag></Contents><Contents><Key>a/c.zip</Key><Size>4</Size></Contents></ListBucketResult>'
    )
    assert [o.key for o in page.objects] == ["a/b.zip", "a/c.zip"] and page.continuation() == "a/c.zip"
    assert page.objects[0].etag == "x" and page.objects[1].size == 4


def test_a_listing_that_is_not_xml_is_a_clear_error():
    with pytest.raises(ValueError, match="not XML"):
        parse_list_bucket("<html>")
