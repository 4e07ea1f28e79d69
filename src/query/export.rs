//! Entries and workloads as CSV for spreadsheets: UTF-8 with a byte-order mark (which tells a
//! spreadsheet the encoding), entries as the columns of [`FIELDS`] in order, and every text
//! value a spreadsheet would take as a formula neutralised, as OWASP advises against CSV
//! injection.

use std::io::Write;

use super::{Entry, Workload, FIELDS};

/// Write `entries` as CSV: a header of [`FIELDS`], then a row per entry.
pub fn write_entries_csv(out: impl Write, entries: &[Entry]) -> csv::Result<()> {
    let mut csv = writer(out)?;
    csv.write_record(FIELDS)?;
    for entry in entries {
        let fields = serde_json::to_value(entry).expect("entries serialise");
        csv.write_record(FIELDS.iter().map(|name| match &fields[name] {
            serde_json::Value::String(s) => spreadsheet_text(s),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }))?;
    }
    csv.flush()?;
    Ok(())
}

/// Write the rows of a workload report as CSV, with a header of their fields.
pub fn write_workload_csv(out: impl Write, rows: &[Workload]) -> csv::Result<()> {
    let mut csv = writer(out)?;
    for row in rows {
        csv.serialize(Workload {
            operator_id: spreadsheet_text(&row.operator_id),
            operator_name: spreadsheet_text(&row.operator_name),
            ..row.clone()
        })?;
    }
    csv.flush()?;
    Ok(())
}

/// A CSV writer whose output starts with the byte-order mark.
fn writer<W: Write>(mut out: W) -> csv::Result<csv::Writer<W>> {
    out.write_all("\u{feff}".as_bytes())?;
    Ok(csv::Writer::from_writer(out))
}

/// A text value for a spreadsheet cell: one that a spreadsheet would take as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so it is
/// shown as text and never run.
fn spreadsheet_text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_shown_as_text_and_the_rest_as_it_is() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(spreadsheet_text(formula), format!("'{formula}"));
        }
        for text in ["李霞", "13321150748", "a=b", ""] {
            assert_eq!(spreadsheet_text(text), text);
        }
    }

    #[test]
    fn an_entry_is_a_row_of_its_fields_after_a_byte_order_mark() {
        let entry = Entry {
            record_id: "r".into(),
            customer_name: "=HYPERLINK(\"x\")".into(),
            result: Some(2),
            ..Entry::default()
        };
        let mut out = Vec::new();
        write_entries_csv(&mut out, &[entry]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.strip_prefix('\u{feff}').unwrap().lines();
        assert_eq!(lines.next().unwrap(), FIELDS.join(","));
        let row = lines.next().unwrap();
        assert!(row.contains(",r,"), "{row}");
        assert!(row.contains(r#","'=HYPERLINK(""x"")","#), "{row}");
        assert!(row.contains(",2,"), "{row}");
    }
}
