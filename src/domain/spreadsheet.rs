//! Cells for the CSV files people open in spreadsheets. A cell that begins with `=`, `+`, `-`,
//! `@`, a tab or a carriage return is read by Excel, LibreOffice and Google Sheets as a formula
//! (CSV injection: `=cmd|' /C calc'!A0` runs a program), so such a cell gets a leading `'`,
//! as the OWASP guidance on CSV injection says. Every CSV the server or the CLI writes passes
//! each cell through [`cell`].
use std::borrow::Cow;

use super::input::plain_number_digits;

/// The characters that make a spreadsheet read a cell as a formula when they come first.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` as a cell no spreadsheet evaluates: prefixed with `'` when it begins like a formula.
///
/// A cell that is a plain decimal number (`-12`, `-0.5000`) is left as it is: a spreadsheet reads
/// it as a number, never as a formula, and a quote would turn a negative score into text that a
/// CRM import refuses. Anything more (`-1+1`, `-1e3`, `-12 `) is prefixed.
pub fn cell(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some(c) if FORMULA_START.contains(&c) && plain_number_digits(text).is_none() => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// Writes one record of `cells`, each through [`cell`].
pub fn write_row<W: std::io::Write, S: AsRef<str>>(w: &mut csv::Writer<W>, cells: impl IntoIterator<Item = S>) -> csv::Result<()> {
    for c in cells {
        w.write_field(cell(c.as_ref()).as_bytes())?;
    }
    w.write_record(None::<&[u8]>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_begin_like_formulas_are_quoted() {
        for dangerous in [
            "=cmd|' /C calc'!A0",
            "+49 30 1234",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1+1",
            "\r=1+1",
            "=",
            "-",
            "-1e3",
            "-1.",
            "--1",
            "-1.2.3",
            "- 1",
        ] {
            assert_eq!(cell(dangerous), format!("'{dangerous}"), "{dangerous:?}");
        }
    }

    #[test]
    fn rows_are_written_quoted_where_needed_and_read_back_prefixed() {
        let mut w = csv::Writer::from_writer(Vec::new());
        write_row(&mut w, ["=HYPERLINK(\"http://x\",\"a, b\")", "-3", "ok"]).unwrap();
        write_row(&mut w, ["@x", "", "-0.25"]).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes.as_slice());
        let rows: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(str::to_owned).collect()).collect();
        assert_eq!(
            rows,
            [
                vec!["'=HYPERLINK(\"http://x\",\"a, b\")".to_owned(), "-3".into(), "ok".into()],
                vec!["'@x".to_owned(), "".into(), "-0.25".into()],
            ]
        );
    }

    #[test]
    fn other_cells_and_plain_numbers_are_kept() {
        for safe in [
            "",
            "Ada",
            "ada@example.com",
            " =1+1",
            "'=1",
            "a=b",
            "12",
            "-12",
            "-0.5000",
            "3.25",
            "Zoë",
        ] {
            assert_eq!(cell(safe), safe, "{safe:?}");
            assert!(matches!(cell(safe), Cow::Borrowed(_)));
        }
    }
}
