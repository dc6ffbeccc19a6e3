"""Normalized fields: paths, kinds, vendor sentinels, numbers that should have been strings."""

from __future__ import annotations

from fcocr.fields import FIELD_SETS, MISSING, Field, clean, extract, items_from, lookup, normalize_date, taxi_fields


def test_paths_alternatives_selectors_and_object_for_array():
    data = {"A": {"B": 1}, "List": [{"Name": "发票代码", "Value": "033"}, {"Name": "x", "Value": "y"}],
            "Plates": {"PlateNumber": "粤B"}, "Alt": ""}
    assert lookup(data, "A.B") == 1
    assert lookup(data, "Missing|A.B") == 1
    assert lookup(data, "Alt|A.B") == 1  # empty strings fall through to the next alternative
    assert lookup(data, "List[Name=发票代码].Value") == "033"
    assert lookup(data, "Plates.PlateNumber") == "粤B"
    assert lookup({"Plates": [{"PlateNumber": "粤B"}]}, "Plates.PlateNumber") == "粤B"
    assert lookup(data, "List[Name=none].Value") is MISSING


def test_kinds_clean_values_the_way_users_need_them():
    warnings: list[str] = []
    assert clean("¥87.28", "amount", "a", warnings) == "87.28"
    assert clean("￥220.00", "amount", "a", warnings) == "220.00"
    assert clean("129.00元", "amount", "a", warnings) == "129.00"
    assert clean("No63591128", "number", "n", warnings) == "63591128"
    assert clean("2020年12月15日", "date", "d", warnings) == "2020-12-15"
    assert clean("20190415", "date", "d", warnings) == "2019-04-15"
    assert clean("2018-09-20", "date", "d", warnings) == "2018-09-20"
    assert clean("2017年08月05日22：09开", "date", "d", warnings) == "2017年08月05日22：09开"  # not a bare date: kept
    assert clean("FailInRecognition", "text", "t", warnings) is None
    assert clean("NoResult", "id", "t", warnings) is None
    assert warnings == []


def test_a_number_where_an_identifier_belongs_is_kept_as_digits_and_flagged():
    warnings: list[str] = []
    # The seed's JSON example: IDNumber 310228199601115411 printed as a number (precision already gone there).
    assert clean(310228199601115400, "id", "idNumber", warnings) == "310228199601115400"
    assert clean(3753869, "id", "invoiceNumber", warnings) == "3753869"
    assert len(warnings) == 2 and "idNumber" in warnings[0] and "leading zeros" in warnings[0]
    assert clean(82.08, "amount", "totalAmount", warnings) == "82.08" and len(warnings) == 2


def test_extract_fills_every_field_of_the_set_and_reads_items():
    fmap = {"invoiceCode": Field("Code", "id"),
            "items": items_from("Items", {"name": Field("Name"), "amount": Field("Amount", "amount")})}
    fields, warnings = extract("vat_invoice", {"Code": "033002000411", "Items": {"Name": "服务", "Amount": "¥1.00"}},
                               fmap)
    assert set(fields) == set(FIELD_SETS["vat_invoice"])
    assert fields["invoiceCode"] == "033002000411" and fields["sellerName"] is None
    assert fields["items"] == [{"name": "服务", "amount": "1.00"}]


def test_unlabelled_taxi_items_become_fields():
    texts = ["132011781210", "13742573", "A-B6167", "2018年02月28日", "22:24", "22:57", "3.60元/公里", "40.9公里",
             "00:04.03", "129.00元", "0.00元", "0.00元", "**", "013560325483", "86655664"]
    assert taxi_fields(texts) == {
        "invoiceCode": "132011781210", "invoiceNumber": "13742573", "plateNumber": "A-B6167", "date": "2018-02-28",
        "boardingTime": "22:24", "alightingTime": "22:57", "mileage": "40.9", "amount": "129.00"}


def test_normalize_date_rejects_impossible_dates():
    assert normalize_date("20191340") == "20191340"
    assert normalize_date("2999年12月31日") == "2999-12-31"
