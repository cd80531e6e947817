//! Countries as ISO 3166-1 alpha-2 codes: the one spelling leads, accounts, routing rules and
//! filters store and compare, so that "Germany" or "DEU" is refused instead of matching nothing.

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (Debian iso-codes 4.15.0,
/// which follows the ISO 3166 Maintenance Agency). Reserved codes such as UK or EU are not
/// among them.
pub const ASSIGNED: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG",
    "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI",
    "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH",
    "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ",
    "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
    "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS",
    "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU",
    "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG",
    "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK",
    "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU",
    "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Kosovo: a user-assigned code, not in ISO 3166-1, but the one the European Commission, the
/// IMF and CRMs use, so leads in Kosovo have a country.
pub const KOSOVO: &str = "XK";

/// `raw` as an assigned code (or XK), upper-cased and trimmed ("de " is DE); `None` for
/// anything else.
pub fn parse(raw: &str) -> Option<&'static str> {
    let code = raw.trim().to_ascii_uppercase();
    if code == KOSOVO {
        return Some(KOSOVO);
    }
    ASSIGNED.binary_search(&code.as_str()).ok().map(|i| ASSIGNED[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
        assert!(ASSIGNED.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn codes_parse_case_insensitively_and_names_do_not() {
        assert_eq!(parse(" de "), Some("DE"));
        assert_eq!(parse("gb"), Some("GB"));
        assert_eq!(parse("xk"), Some("XK"));
        for bad in ["Germany", "DEU", "UK", "EU", "", "D"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
