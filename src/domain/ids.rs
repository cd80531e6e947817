//! The public spelling of identifiers: global IDs (base64 of `Type:123`) and event cursors.
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The global ID of row `id` of type `type_name`, as the API shows it.
pub fn global_id(type_name: &str, id: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_global_id(&mut out, type_name, id);
    String::from_utf8(out).expect("base64 is ASCII")
}

/// Appends the global ID of row `id` of type `type_name` to `out`, without allocating: the
/// planned read path writes hundreds per response.
pub fn write_global_id(out: &mut Vec<u8>, type_name: &str, id: i64) {
    // "CampaignCost:" and a negative i64 at most: 13 + 20 bytes.
    let mut raw = [0u8; 64];
    let name = type_name.as_bytes();
    if name.len() > 40 {
        out.extend_from_slice(STANDARD.encode(format!("{type_name}:{id}")).as_bytes());
        return;
    }
    raw[..name.len()].copy_from_slice(name);
    raw[name.len()] = b':';
    let mut len = name.len() + 1;
    let mut digits = [0u8; 20];
    let mut n = id.unsigned_abs();
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if id < 0 {
        raw[len] = b'-';
        len += 1;
    }
    raw[len..len + digits.len() - d].copy_from_slice(&digits[d..]);
    len += digits.len() - d;
    push_base64(out, &raw[..len]);
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends `raw` in standard base64 with padding, as `STANDARD` writes it: a global ID is a
/// few bytes, for which the general encoder's setup costs more than the encoding.
fn push_base64(out: &mut Vec<u8>, raw: &[u8]) {
    let sextet = |n: u32, shift: u32| BASE64[((n >> shift) & 63) as usize];
    out.reserve(raw.len().div_ceil(3) * 4);
    let mut chunks = raw.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
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

/// The opaque cursor of the change with sequence number `seq` (per workspace).
pub fn change_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("chg:{seq}"))
}

/// The sequence number in a change cursor.
pub fn parse_change_cursor(cursor: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let seq: i64 = std::str::from_utf8(&raw).ok()?.strip_prefix("chg:")?.parse().ok()?;
    (seq >= 0).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ids_are_the_formatted_ones() {
        for name in ["Lead", "CampaignCost", "X"] {
            for id in [0, 1, 9, 10, 42, 99_999, i64::MAX, -1, i64::MIN] {
                let mut out = Vec::new();
                write_global_id(&mut out, name, id);
                assert_eq!(String::from_utf8(out).unwrap(), STANDARD.encode(format!("{name}:{id}")));
            }
        }
    }

    #[test]
    fn base64_is_the_standard_encoding() {
        let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
        for len in 0..=40 {
            for start in [0, 3, 250, 470] {
                let raw = &bytes[start..start + len];
                let mut out = vec![b'x'];
                push_base64(&mut out, raw);
                assert_eq!(out[1..], STANDARD.encode(raw).into_bytes()[..], "{raw:?}");
            }
        }
    }

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
