//! The public spelling of identifiers: global IDs (base64 of `Type:123`) and event cursors.
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The global ID of row `id` of type `type_name`, as the API shows it.
pub fn global_id(type_name: &str, id: i64) -> String {
    STANDARD.encode(format!("{type_name}:{id}"))
}

/// The type name and row ID of a global ID, if it is one.
pub fn parse_global_id(id: &str) -> Option<(String, i64)> {
    let raw = STANDARD.decode(id.trim()).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (name, num) = raw.split_once(':')?;
    let num: i64 = num.parse().ok()?;
    (num > 0).then(|| (name.to_owned(), num))
}

/// The opaque cursor of the event with sequence number `seq` (per workspace).
pub fn event_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("evt:{seq}"))
}

/// The sequence number in an event cursor.
pub fn parse_event_cursor(cursor: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let seq: i64 = std::str::from_utf8(&raw).ok()?.strip_prefix("evt:")?.parse().ok()?;
    (seq >= 0).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_cursors_round_trip() {
        assert_eq!(global_id("Lead", 42), "TGVhZDo0Mg==");
        assert_eq!(parse_global_id("TGVhZDo0Mg=="), Some(("Lead".into(), 42)));
        assert_eq!(parse_global_id("nonsense"), None);
        assert_eq!(parse_event_cursor(&event_cursor(7)), Some(7));
        assert_eq!(parse_event_cursor(&event_cursor(0)), Some(0));
        assert_eq!(parse_event_cursor("abc"), None);
    }
}
