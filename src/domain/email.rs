//! E-mail addresses: trimmed, lower-cased, and shaped like `local@domain.tld`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 {
            return Err("is longer than 254 characters");
        }
        let (local, domain) = s.split_once('@').ok_or("must contain @")?;
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid { Ok(Self(s)) } else { Err("is not a valid e-mail address") }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalizes_and_validates() {
        assert_eq!(Email::parse("  Peter.P@Hydro.DE ").unwrap().as_str(), "peter.p@hydro.de");
        for bad in ["", "peter", "@hydro.de", "peter@", "peter@hydro", "a b@c.de", "a@b@c.de", "a@.de"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
