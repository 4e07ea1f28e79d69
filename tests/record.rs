//! The record model: JSON, the figure 3C line, ids and sidecar names.

use std::path::{Path, PathBuf};

use callrec::record::{china_standard_time, LineError, Record, RecordFiles, RecordId};
use callrec::vocab::Vocabulary;

fn vocab() -> Vocabulary {
    Vocabulary::builtin()
}

/// The line of the source document's figure 3C, byte for byte.
const FIGURE_3C: &str = "01|1573890531|大额核实|0068|大旺路分理处|13321150748|李霞|财务人员|2018年12月25日|10时12分20秒|8803880203|911101140924495254|110108197712281810|32150100100065711|130002|核实成功。(因李静产假,现整改2016年8月2日122.1万大额补核实。)";

fn id() -> RecordId {
    RecordId::parse("20181225T021220Z-0123456789ab").unwrap()
}

#[test]
fn figure_3c_line_parses_and_renders_back_exactly() {
    let record = Record::from_line(id(), FIGURE_3C, china_standard_time(), &vocab()).unwrap();
    assert_eq!(record.collection_flag, "01");
    assert_eq!(record.times.annotated_at.unwrap().timestamp(), 1573890531);
    assert_eq!(record.call.business_type, "大额核实");
    assert_eq!(record.operator.institution_code, "0068");
    assert_eq!(record.operator.institution_name, "大旺路分理处");
    assert_eq!(record.phone.number, "13321150748");
    assert_eq!(record.call.customer_name, "李霞");
    assert_eq!(record.call.role, "财务人员");
    assert_eq!(
        record.times.call_start.unwrap().to_rfc3339(),
        "2018-12-25T10:12:20+08:00"
    );
    assert_eq!(record.phone.device.number, "8803880203");
    assert_eq!(record.call.credit_code, "911101140924495254");
    assert_eq!(record.call.id_number, "110108197712281810");
    assert_eq!(record.call.account, "32150100100065711");
    assert_eq!(record.operator.id, "130002");
    assert_eq!(record.call.result, Some(1));
    assert_eq!(
        record.call.remark,
        "(因李静产假,现整改2016年8月2日122.1万大额补核实。)"
    );
    assert_eq!(record.to_line(&vocab()).unwrap(), FIGURE_3C);
}

#[test]
fn json_round_trips_and_is_versioned() {
    let record = Record::from_line(id(), FIGURE_3C, china_standard_time(), &vocab()).unwrap();
    let json = record.to_json();
    let back = Record::from_json(&json, Path::new("r.json")).unwrap();
    assert_eq!(back, record);
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["schema"], 1);
    assert_eq!(value["times"]["call_start"], "2018-12-25T10:12:20+08:00");

    let newer = br#"{"schema": 2, "id": "x"}"#;
    let err = Record::from_json(newer, Path::new("new.json")).unwrap_err();
    assert!(err.to_string().contains("schema 2"), "{err}");
    let unknown = br#"{"schema": 1, "id": "x", "surprise": true}"#;
    let err = Record::from_json(unknown, Path::new("u.json")).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn line_refuses_values_that_would_break_it() {
    for bad in ["a|b", "a\nb", "a\u{1b}[31mb", "tab\there"] {
        let mut record = Record::new(id());
        record.call.customer_name = bad.to_string();
        assert_eq!(
            record.to_line(&vocab()),
            Err(LineError::Unrepresentable {
                field: "customer_name"
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn line_parse_errors_name_the_field() {
    let short = "01|2|3";
    assert_eq!(
        Record::from_line(id(), short, china_standard_time(), &vocab()).unwrap_err(),
        LineError::FieldCount(3)
    );
    let bad_date = FIGURE_3C.replace("2018年12月25日", "2018-12-25");
    let err = Record::from_line(id(), &bad_date, china_standard_time(), &vocab()).unwrap_err();
    assert!(err.to_string().contains("call_date"), "{err}");
    let bad_time = FIGURE_3C.replace("1573890531", "soon");
    let err = Record::from_line(id(), &bad_time, china_standard_time(), &vocab()).unwrap_err();
    assert!(err.to_string().contains("annotated_at"), "{err}");
}

#[test]
fn unknown_result_label_stays_remark() {
    let line = FIGURE_3C.replace("核实成功。", "待定。");
    let record = Record::from_line(id(), &line, china_standard_time(), &vocab()).unwrap();
    assert_eq!(record.call.result, None);
    assert!(record.call.remark.starts_with("待定。"));
    assert_eq!(record.to_line(&vocab()).unwrap(), line);
}

#[test]
fn record_ids_are_safe_names() {
    for good in [
        "20261127T101500Z-0123456789ab",
        "a",
        "rec_1-2",
        &"x".repeat(80),
    ] {
        assert!(RecordId::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "..",
        "../x",
        "a/b",
        "-x",
        "_x",
        ".hidden",
        "a b",
        "é",
        &"x".repeat(81),
        "a\0b",
    ] {
        assert!(RecordId::parse(bad).is_err(), "{bad:?}");
    }
    let generated = RecordId::generate(
        chrono::DateTime::from_timestamp(1573890531, 0).unwrap(),
        [1, 2, 3, 4, 5, 6],
    );
    assert_eq!(generated.as_str(), "20191116T074851Z-010203040506");
}

#[test]
fn sidecar_names() {
    let by_media = RecordFiles::resolve(Path::new("/nonexistent/call.mkv"));
    assert_eq!(by_media.media, PathBuf::from("/nonexistent/call.mkv"));
    assert_eq!(by_media.sidecar, None);
    let by_sidecar = RecordFiles::resolve(Path::new("/nonexistent/call.mkv.callrec.json"));
    assert_eq!(by_sidecar.media, PathBuf::from("/nonexistent/call.mkv"));
    assert_eq!(
        by_sidecar.sidecar,
        Some(PathBuf::from("/nonexistent/call.mkv.callrec.json"))
    );
}
