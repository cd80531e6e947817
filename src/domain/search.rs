//! Case-insensitive text search that works the same on SQLite and PostgreSQL: both sides are
//! folded to lower case in Rust (SQLite's own `LOWER` and `LIKE` fold ASCII only).

/// What a lead is found by: e-mail, first and last name, lower-cased, separated by newlines.
pub fn lead_search_text(email: Option<&str>, first_name: Option<&str>, last_name: Option<&str>) -> Option<String> {
    let parts: Vec<String> = [email, first_name, last_name]
        .into_iter()
        .flatten()
        .map(str::to_lowercase)
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// A `LIKE` pattern (escape character `\`) matching text that contains `query`.
pub fn contains_pattern(query: &str) -> String {
    let q = query
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{q}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_beyond_ascii() {
        let t = lead_search_text(Some("a@b.de"), Some("Ärzte"), Some("Özdemir")).unwrap();
        assert_eq!(t, "a@b.de\närzte\nözdemir");
        assert_eq!(contains_pattern(" ÖZD "), "%özd%");
        assert_eq!(contains_pattern("50%_a"), "%50\\%\\_a%");
        assert_eq!(lead_search_text(None, None, None), None);
    }
}
