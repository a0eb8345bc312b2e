"""One-off script that wrote this bad-input corpus (fake data only). Kept for the record.

Run from this folder: ``python _make_corpus.py``. Every file is tiny and fictional (country XT).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
H = ("interview_id,facility_id,date,round,sex,age,key_population,on_art,wait_minutes,got_all_medicines,"
     "treated_with_respect,confidentiality_breach,vl_result_received,satisfaction,denied_service,refill_months")


def row(i: int, fac: str = "XT-F001", date: str = "2024-03-05", rnd: str = "2024Q1", sex: str = "female",
        age: str = "34", kp: str = "none", on_art: str = "true", wait: str = "25") -> str:
    return f"XT-I{i:03d},{fac},{date},{rnd},{sex},{age},{kp},{on_art},{wait},true,5,false,true,4,false,3"


def w(name: str, text: str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(text.encode(encoding))


def main() -> None:
    w("facilities.csv", "facility_id,name,region,district,type,ownership,latitude,longitude,clm_start\n"
      "XT-F001,Alpha Clinic,North,North A,clinic,public,-27.1,-14.2,2023-07-01\n"
      "XT-F002,Beta Health Centre,North,North B,health_centre,ngo,-27.2,-14.1,\n"
      "XT-F003,Gamma Hospital,South,South A,hospital,faith_based,-27.5,-14.0,2024-01-01\n")
    good = [row(1), row(2, "XT-F002"), row(3, "XT-F003", sex="male")]
    w("wrong_delimiter.csv", "\n".join(x.replace(",", "|") for x in [H, *good]) + "\n")
    w("bom_semicolon.csv", "\ufeff" + "\n".join(x.replace(",", ";") for x in [H, *good]) + "\n")
    w("latin1_facilities.csv", "facility_id,name,region,district,type,ownership\n"
      "XT-F001,Clínica São José,North,North A,clinic,public\n", encoding="latin-1")
    w("truncated_row.csv", "\n".join([H, *good, "XT-I004,XT-F001,2024-03-05,2024Q1,fem"]))
    w("truncated_quote.csv", "\n".join([H, *good]) + '\nXT-I004,XT-F001,"2024-03-05,2024Q1,female\n')
    w("empty.csv", "")
    w("header_only.csv", H + "\n")
    w("duplicated_ids.csv", "\n".join([H, *good, row(2, "XT-F002")]) + "\n")
    w("future_date.csv", "\n".join([H, *good, row(4, date="2030-01-01", rnd="2030Q1")]) + "\n")
    w("date_formats.csv", "\n".join([H, row(1, date="2024-03-05"), row(2, date="05/03/2024"),
                                     row(3, date="5-Mar-2024")]) + "\n")
    w("negative_wait.csv", "\n".join([H, *good, row(4, wait="-10")]) + "\n")
    w("unknown_facility.csv", "\n".join([H, *good, row(4, fac="XT-F999")]) + "\n")
    w("mixed_types.csv", "\n".join([H, row(1), row(2, age="thirty"), row(3, wait="12 min"),
                                    row(4, on_art="maybe")]) + "\n")
    w("missing_required_column.csv", "\n".join(
        ",".join(p for j, p in enumerate(x.split(",")) if j != 2) for x in [H, *good]) + "\n")  # no date
    w("extra_columns.csv", "\n".join([H + ",enumerator_note,village", *(g + ",ok,Hilltop" for g in good)]) + "\n")
    w("blank_line.csv", "\n".join([H, good[0], "", good[1], good[2]]) + "\n")
    w("bad_round.csv", "\n".join([H, *good, row(4, rnd="2024-Q1")]) + "\n")
    w("not_allowed_values.csv", "\n".join([H, *good, row(4, sex="F"), row(5, kp="sex worker")]) + "\n")
    w("routine_inconsistent.csv",
      "facility_id,period,tx_curr,tx_new,interruptions,vl_tested,vl_suppressed,prep_new,tests,positives\n"
      "XT-F001,2024-01,500,10,5,40,36,3,120,6\n"
      "XT-F001,2024-02,505,12,4,38,41,2,110,5\n"
      "XT-F002,2024-01,300,8,2,30,27,1,90,95\n")
    elements = ["deTxCurr001", "deTxNew0001", "deIit000001", "deVlTest001", "deVlSupp001", "dePrepNew01",
                "deTests0001", "dePos000001"]
    values = [500, 10, 5, 40, 36, 3, 120, 6]
    dv = [
        {"dataElement": de, "period": pe, "orgUnit": ou, "categoryOptionCombo": "HllvX50cXC0",
         "attributeOptionCombo": "HllvX50cXC0", "value": str(v)}
        for ou, pe in (("ouAlpha0001", "202403"), ("ouAlpha0001", "2024W13"), ("ouBeta00001", "202403"))
        for de, v in zip(elements, values, strict=True)
    ]
    w("dhis2_unknown_period.json", json.dumps({"dataSet": "dsRoutine01", "dataValues": dv}, indent=1))
    lines = ["dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,followup"]
    for pe in ("2024Q1", "202404"):
        lines += [f"{de},{pe},ouAlpha0001,HllvX50cXC0,HllvX50cXC0,{v},admin,2024-05-02,,false"
                  for de, v in zip(elements, values, strict=True)]
    w("dhis2_quarterly.csv", "\n".join(lines) + "\n")
    # a Kobo export: ';', group paths, a select_multiple with split 0/1 columns, an HXL row
    w("kobo_export.csv", "\n".join([
        '"start";"clinic/facility";"client/sex";"client/age";"client/kp";"services";"services/art";'
        '"services/prep";"visit/wait";"_id";"_uuid";"_submission_time";"_submitted_by";"_index"',
        '"";"#loc";"#gender";"#age";"";"";"";"";"";"";"";"";"";""',
        '"2024-03-05T09:00:00";"XT-F001";"female";"34";"none";"art prep";"1";"1";"25";"11";'
        '"0b5e-aaaa";"2024-03-05T10:11:12";"enum_a";"1"',
        '"2024-03-05T09:30:00";"XT-F002";"male";"41";"msm";"prep";"0";"1";"40";"12";'
        '"0b5e-bbbb";"2024-03-05T10:30:00";"enum_a";"2"',
    ]) + "\n")
    w("odk_export.csv", "\n".join([
        "SubmissionDate,g1-facility,g1-sex,g2-age,g2-kp,g2-on_art,meta-instanceID,KEY,SubmitterID,SubmitterName,"
        "AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion",
        "2024-03-05T10:11:12.000Z,XT-F001,female,34,none,yes,uuid:aaaa-1,uuid:aaaa-1,5,enumerator one,0,0,,,"
        "collect:abc,0,2024010101",
        "2024-03-06T08:00:00.000Z,XT-F003,male,abc,none,no,uuid:aaaa-2,uuid:aaaa-2,5,enumerator one,0,0,,,"
        "collect:abc,0,2024010101",
    ]) + "\n")
    (HERE / "workbook_named_csv.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    try:
        from openpyxl import Workbook
    except ImportError:  # pragma: no cover
        return
    wb = Workbook()
    ws = wb.active
    ws.title = "interviews"
    ws.append(H.split(","))
    for g in good:
        ws.append(g.split(","))
    r = row(4).split(",")
    r[8] = "#DIV/0!"
    r[5] = "#NAME?"
    ws.append(r)
    wb.save(HERE / "excel_errors.xlsx")
    more()


def workbook(name: str, title: str) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(H.split(","))
    ws.append(row(1).split(","))
    wb.save(HERE / name)


def more() -> None:
    """The second part of the corpus: what field teams and servers were seen to produce."""
    good = [row(1), row(2, "XT-F002"), row(3, "XT-F003", sex="male")]
    lines = [H, *good]
    # line endings and encodings
    w("cr_only.csv", "\r".join(lines) + "\r")
    w("crlf.csv", "\r\n".join(lines) + "\r\n")
    w("utf16_bom.csv", "\ufeff" + "\n".join(lines) + "\n", encoding="utf-16-le")
    w("utf16_declared_on_utf8.csv", "\n".join(lines) + "\n")
    w("ansi_declared.csv", "\n".join(lines) + "\n")
    w("cp1252_facilities.csv", "facility_id,name,region,district,type,ownership\n"
      "XT-F001,Clínica São José,North,North A,clinic,public\n", encoding="cp1252")
    w("big_cell.csv", "\n".join([H, *good, row(4, wait="x" * 200_000)]) + "\n")
    w("nul_bytes.csv", H + "\n" + row(1) + "\x00\x00\x00\n")
    w("bom_only.csv", "\ufeff")
    w("only_blank_lines.csv", "\n\n\n")
    w("html_saved_as_csv.csv", "<html><body><table><tr><td>interview_id</td></tr></table></body></html>\n")
    w("tab_delimited.tsv", "\n".join(x.replace(",", "\t") for x in lines) + "\n")
    # cells
    w("impossible_date.csv", "\n".join([H, *good, row(4, date="2024-02-30")]) + "\n")
    w("age_out_of_range.csv", "\n".join([H, *good, row(4, age="150")]) + "\n")
    w("negative_age.csv", "\n".join([H, *good, row(4, age="-3")]) + "\n")
    w("age_decimal.csv", "\n".join([H, *good, row(4, age="34.5")]) + "\n")
    w("empty_id.csv", "\n".join([H, *good, row(4).replace("XT-I004", "")]) + "\n")
    w("uppercase_values.csv", "\n".join([H, *good, row(4, sex="FEMALE")]) + "\n")
    w("quoted_newline.csv", "\n".join([H, *good, row(4, kp='"none\nreally"')]) + "\n")
    w("extra_fields.csv", "\n".join([H, *good, row(4) + ",surplus,cells"]) + "\n")
    w("decimal_comma_wait.csv", "\n".join([H, *good, row(4, wait='"12,5"')]) + "\n")
    w("phone_in_key_population.csv", "\n".join([H, *good, row(4, kp="+27 82 555 0142")]) + "\n")
    w("text_in_boolean.csv", "\n".join([H, *good, row(4, on_art="sometimes")]) + "\n")
    w("facility_bad_latitude.csv", "facility_id,name,region,district,type,ownership,latitude,longitude\n"
      "XT-F001,Alpha Clinic,North,North A,clinic,public,-27.1,-14.2\n"
      "XT-F002,Beta Clinic,North,North B,clinic,public,200,-14.1\n")
    w("facility_duplicate_id.csv", "facility_id,name,region,district,type,ownership\n"
      "XT-F001,Alpha Clinic,North,North A,clinic,public\n"
      "XT-F001,Alpha Clinic again,North,North A,clinic,public\n")
    w("facility_bad_type.csv", "facility_id,name,region,district,type,ownership\n"
      "XT-F001,Alpha Clinic,North,North A,clinic,public\n"
      "XT-F002,Beta Clinic,North,North B,spaceship,public\n")
    rh = "facility_id,period,tx_curr,tx_new,interruptions,vl_tested,vl_suppressed,prep_new,tests,positives"
    w("routine_negative.csv", f"{rh}\nXT-F001,2024-01,500,10,5,40,36,3,120,6\nXT-F001,2024-02,-5,12,4,38,30,2,110,5\n")
    w("routine_bad_period.csv", f"{rh}\nXT-F001,2024-01,500,10,5,40,36,3,120,6\nXT-F001,2024-13,505,12,4,38,30,2,110,5\n")
    w("routine_thousands_separator.csv",
      f'{rh}\nXT-F001,2024-01,500,10,5,40,36,3,120,6\nXT-F001,2024-02,"1,200",12,4,38,30,2,110,5\n')
    w("routine_duplicate_period.csv", f"{rh}\nXT-F001,2024-01,500,10,5,40,36,3,120,6\nXT-F001,2024-01,505,12,4,38,30,2,110,5\n")
    # DHIS2 data value sets
    w("dhis2_object.json", json.dumps({"dataValues": {"dataElement": "deTxCurr001"}}))
    w("dhis2_truncated.json", '{"dataValues": [{"dataElement": "deTxCurr001", "per')
    w("dhis2_items_not_objects.json", json.dumps({"dataValues": [1, 2, 3]}))
    w("dhis2_empty.json", json.dumps({"dataValues": []}))
    w("dhis2_analytics.json", json.dumps({"headers": [], "rows": []}))
    # workbooks
    workbook("excel_missing_sheet.xlsx", "data")
    workbook("excel_sheet_index.xlsx", "data")


if __name__ == "__main__":
    main()
