//! First-party capture, the pure parts: signed link tokens, what a landing URL says about where
//! a visitor came from (UTM parameters, ad click IDs, referrer), and who sent a hit (a person,
//! a machine that opens or clicks on a person's behalf, or a bot).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Bytes of the HMAC-SHA256 tag kept in a token: 96 bits, so that guessing a valid token for a
/// chosen link and lead takes 2^96 tries.
const TAG: usize = 12;

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `/t/c/{token}`: a click, redirected to the link's destination.
    Click,
    /// `/t/o/{token}.gif`: an open, answered with a transparent pixel.
    Open,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Click => b'c',
            TokenKind::Open => b'o',
        }
    }
}

/// A tracking link's token: which link of which workspace, for which lead (a personal link of
/// a mailing) or for anyone, and when it was issued (minutes since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub workspace: i64,
    pub link: i64,
    pub lead: Option<i64>,
    pub issued_minute: i64,
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        n |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn tag(secret: &[u8], body: &[u8]) -> [u8; TAG] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG];
    out.copy_from_slice(&full[..TAG]);
    out
}

impl Token {
    /// The token's text: its fields and an HMAC-SHA256 tag under the workspace's secret, in
    /// URL-safe base64 (about 25 characters).
    pub fn sign(&self, secret: &[u8]) -> String {
        let mut body = Vec::with_capacity(32);
        body.push(self.kind.byte());
        push_varint(&mut body, self.workspace as u64);
        push_varint(&mut body, self.link as u64);
        push_varint(&mut body, self.lead.map_or(0, |l| l as u64 + 1));
        push_varint(&mut body, self.issued_minute.max(0) as u64);
        let t = tag(secret, &body);
        body.extend_from_slice(&t);
        URL_SAFE_NO_PAD.encode(body)
    }
}

/// A token read but not yet checked: its workspace says whose secret checks it.
pub struct Unverified {
    token: Token,
    body: Vec<u8>,
    tag: [u8; TAG],
}

impl Unverified {
    /// Reads a token of `kind`; `None` for anything that is not one (no secret is needed yet).
    pub fn parse(kind: TokenKind, text: &str) -> Option<Unverified> {
        if text.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        if raw.len() <= TAG {
            return None;
        }
        let (body, t) = raw.split_at(raw.len() - TAG);
        let mut rest = body;
        let (&k, r) = rest.split_first()?;
        rest = r;
        if k != kind.byte() {
            return None;
        }
        let workspace = i64::try_from(read_varint(&mut rest)?).ok()?;
        let link = i64::try_from(read_varint(&mut rest)?).ok()?;
        let lead = match read_varint(&mut rest)? {
            0 => None,
            n => Some(i64::try_from(n - 1).ok()?),
        };
        let issued_minute = i64::try_from(read_varint(&mut rest)?).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(t);
        Some(Unverified {
            token: Token {
                kind,
                workspace,
                link,
                lead,
                issued_minute,
            },
            body: body.to_vec(),
            tag,
        })
    }

    /// The workspace whose secret must check the token.
    pub fn workspace(&self) -> i64 {
        self.token.workspace
    }

    /// The token, if `secret` signed it (compared in constant time).
    pub fn verify(self, secret: &[u8]) -> Option<Token> {
        let expected = tag(secret, &self.body);
        let diff = expected.iter().zip(self.tag.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then_some(self.token)
    }
}

/// Where a visit came from, read off its landing URL and referrer: the five UTM parameters,
/// the click IDs of the large ad networks, and the referring host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    /// Google Ads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    /// Meta (Facebook, Instagram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
    /// LinkedIn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub li_fat_id: Option<String>,
    /// Microsoft Advertising.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msclkid: Option<String>,
    /// The referrer's host, when it is another site than the landing page's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
}

/// The longest value kept of one parameter; longer ones are cut (at a character boundary).
const MAX_PARAM: usize = 200;

fn clip(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let mut end = v.len().min(MAX_PARAM);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    Some(v[..end].to_owned())
}

impl Source {
    /// Reads a landing URL and its referrer; parameters are matched without regard to case
    /// (`UTM_Campaign` is `utm_campaign`), and the first of a repeated one wins.
    pub fn of(landing: Option<&str>, referrer: Option<&str>) -> Source {
        let mut s = Source::default();
        let landing = landing.and_then(|u| url::Url::parse(u).ok());
        if let Some(u) = &landing {
            for (k, v) in u.query_pairs() {
                let slot = match k.to_ascii_lowercase().as_str() {
                    "utm_source" => &mut s.utm_source,
                    "utm_medium" => &mut s.utm_medium,
                    "utm_campaign" => &mut s.utm_campaign,
                    "utm_term" => &mut s.utm_term,
                    "utm_content" => &mut s.utm_content,
                    "gclid" => &mut s.gclid,
                    "fbclid" => &mut s.fbclid,
                    "li_fat_id" => &mut s.li_fat_id,
                    "msclkid" => &mut s.msclkid,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = clip(&v);
                }
            }
        }
        let own_host = landing.as_ref().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        s.referrer_host = referrer
            .and_then(|r| url::Url::parse(r).ok())
            .and_then(|r| r.host_str().map(str::to_ascii_lowercase))
            .filter(|h| Some(h) != own_host.as_ref());
        s
    }

    /// The paid network a click ID names, as a channel hint (`PAID_SEARCH`, `PAID_SOCIAL`).
    pub fn paid_channel(&self) -> Option<&'static str> {
        if self.gclid.is_some() || self.msclkid.is_some() {
            Some("PAID_SEARCH")
        } else if self.fbclid.is_some() || self.li_fat_id.is_some() {
            Some("PAID_SOCIAL")
        } else {
            None
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Source::default()
    }
}

/// Who sent a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Agent {
    /// A person's browser or mail client.
    Human,
    /// A machine acting for a person's mailbox: a privacy proxy that loads every image on
    /// delivery (Apple Mail Privacy Protection), or a security gateway that follows every link.
    /// Kept, but apart: never a touchpoint, counted on its own in e-mail statistics.
    Machine,
    /// A crawler, a monitoring probe, an HTTP library or a headless browser.
    Bot,
}

/// A click or open within this many seconds of its token's issue is a machine's: no person
/// reads a mailing that fast, but security gateways scan each link on delivery.
pub const MACHINE_WINDOW_SECONDS: i64 = 60;

/// User agents of link scanners and mail security gateways (lower case, by substring).
const SCANNERS: &[&str] = &[
    "barracuda",
    "proofpoint",
    "mimecast",
    "safelinks",
    "ms-office",
    "microsoft office",
    "symantec",
    "forcepoint",
    "trendmicro",
    "sophos",
    "fireeye",
    "zscaler",
    "cisco",
    "ironport",
    "appriver",
    "messagelabs",
];

/// User agents of bots (lower case, by substring).
const BOTS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "crawl",
    "curl/",
    "wget/",
    "python-",
    "httpclient",
    "java/",
    "go-http-client",
    "okhttp",
    "axios/",
    "node-fetch",
    "headlesschrome",
    "phantomjs",
    "lighthouse",
    "pingdom",
    "uptime",
    "monitor",
    "preview",
    "facebookexternalhit",
];

/// What a request to a tracking endpoint says about its sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub user_agent: Option<&'a str>,
    /// Whether the request asked only for the head (`HEAD`): scanners check links that way.
    pub head: bool,
    /// Whether it sent `Accept-Language`, as every browser and mail client does.
    pub accept_language: bool,
}

/// A mail open or click: machine when a privacy proxy or scanner sent it, or when it came
/// within [`MACHINE_WINDOW_SECONDS`] of the token's issue; bot for a bot's user agent.
pub fn classify_mail(r: Request<'_>, issued: DateTime<Utc>, at: DateTime<Utc>) -> Agent {
    let ua = r.user_agent.unwrap_or("").trim();
    let lower = ua.to_ascii_lowercase();
    if SCANNERS.iter().any(|s| lower.contains(s)) || r.head {
        return Agent::Machine;
    }
    // Apple Mail Privacy Protection loads images through Apple's proxy with the bare
    // "Mozilla/5.0" user agent and no Accept-Language.
    if ua == "Mozilla/5.0" || ua.is_empty() || !r.accept_language {
        return Agent::Machine;
    }
    if (at - issued).num_seconds() < MACHINE_WINDOW_SECONDS {
        return Agent::Machine;
    }
    classify_web(r)
}

/// A page view or event: bot for a bot's user agent (or none), else human.
pub fn classify_web(r: Request<'_>) -> Agent {
    let Some(ua) = r.user_agent.map(str::trim).filter(|u| !u.is_empty()) else {
        return Agent::Bot;
    };
    let lower = ua.to_ascii_lowercase();
    if BOTS.iter().any(|b| lower.contains(b)) {
        Agent::Bot
    } else {
        Agent::Human
    }
}

/// Whether a request asks not to be tracked: `Sec-GPC: 1` (Global Privacy Control) or `DNT: 1`.
pub fn opted_out(gpc: Option<&str>, dnt: Option<&str>) -> bool {
    gpc.is_some_and(|v| v.trim() == "1") || dnt.is_some_and(|v| v.trim() == "1")
}

/// A visitor ID as the script makes them: 16 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_visitor_id(v: &str) -> bool {
    (16..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The destination of a link with the UTM parameters set (replacing any it carries), so that
/// the landing page's own analytics see them as well.
pub fn with_utm(destination: &url::Url, utm: &[(&str, &str)]) -> url::Url {
    let mut u = destination.clone();
    let keep: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !utm.iter().any(|(name, _)| k.eq_ignore_ascii_case(name)))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let given: Vec<&(&str, &str)> = utm.iter().filter(|(_, v)| !v.trim().is_empty()).collect();
    if keep.is_empty() && given.is_empty() {
        u.set_query(None);
        return u;
    }
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &keep {
            q.append_pair(k, v);
        }
        for (k, v) in given {
            q.append_pair(k, v.trim());
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn token(lead: Option<i64>) -> Token {
        Token {
            kind: TokenKind::Click,
            workspace: 7,
            link: 123_456,
            lead,
            issued_minute: 29_000_000,
        }
    }

    #[test]
    fn a_signed_token_reads_back_under_its_secret_only() {
        for lead in [None, Some(0), Some(1), Some(9_876_543_210)] {
            let t = token(lead);
            let text = t.sign(b"secret-1");
            assert!(text.len() <= 40, "{text} is short enough for a mailing");
            let u = Unverified::parse(TokenKind::Click, &text).expect("parses");
            assert_eq!(u.workspace(), 7);
            assert_eq!(u.verify(b"secret-1"), Some(t));
            let u = Unverified::parse(TokenKind::Click, &text).unwrap();
            assert_eq!(u.verify(b"secret-2"), None, "another workspace's secret");
            assert!(Unverified::parse(TokenKind::Open, &text).is_none(), "a click token is no pixel");
        }
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let text = token(Some(42)).sign(b"k");
        let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..raw.len() {
            for bit in [1u8, 0x40, 0x80] {
                let mut forged = raw.clone();
                forged[i] ^= bit;
                let forged = URL_SAFE_NO_PAD.encode(&forged);
                let ok = Unverified::parse(TokenKind::Click, &forged).and_then(|u| u.verify(b"k"));
                assert_eq!(ok, None, "byte {i} flipped by {bit:#x}");
            }
        }
        for junk in ["", "a", "not a token", &"A".repeat(65), "====", &text[..text.len() - 1]] {
            let ok = Unverified::parse(TokenKind::Click, junk).and_then(|u| u.verify(b"k"));
            assert_eq!(ok, None, "{junk:?}");
        }
    }

    #[test]
    fn utm_parameters_and_click_ids_are_read_from_the_landing_url() {
        let s = Source::of(
            Some(
                "https://www.example.com/hydraulics?UTM_Source=newsletter&utm_medium=email&utm_campaign=spring-26&utm_campaign=other&gclid=abc&x=1",
            ),
            Some("https://mail.google.com/mail/u/0/"),
        );
        assert_eq!(s.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(s.utm_medium.as_deref(), Some("email"));
        assert_eq!(s.utm_campaign.as_deref(), Some("spring-26"), "the first of a repeated parameter");
        assert_eq!(s.gclid.as_deref(), Some("abc"));
        assert_eq!(s.referrer_host.as_deref(), Some("mail.google.com"));
        assert_eq!(s.paid_channel(), Some("PAID_SEARCH"));

        let own = Source::of(Some("https://example.com/a?fbclid=z"), Some("https://example.com/b"));
        assert_eq!(own.referrer_host, None, "a page of the same site is no referrer");
        assert_eq!(own.paid_channel(), Some("PAID_SOCIAL"));
        assert!(Source::of(Some("not a url"), None).is_empty());
        assert!(
            Source::of(Some("https://example.com/?utm_campaign=%20"), None).is_empty(),
            "blank values are absent"
        );
        let long = Source::of(Some(&format!("https://e.com/?utm_term={}", "ä".repeat(300))), None);
        assert!(long.utm_term.unwrap().len() <= MAX_PARAM);
    }

    #[test]
    fn machines_and_bots_are_told_from_people() {
        let issued = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let later = issued + chrono::Duration::minutes(30);
        let browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
        let person = Request {
            user_agent: Some(browser),
            head: false,
            accept_language: true,
        };
        assert_eq!(classify_mail(person, issued, later), Agent::Human);
        assert_eq!(
            classify_mail(person, issued, issued + chrono::Duration::seconds(5)),
            Agent::Machine,
            "within seconds of the send"
        );
        let apple_proxy = Request {
            user_agent: Some("Mozilla/5.0"),
            head: false,
            accept_language: false,
        };
        assert_eq!(classify_mail(apple_proxy, issued, later), Agent::Machine);
        let scanner = Request {
            user_agent: Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"),
            ..person
        };
        assert_eq!(classify_mail(scanner, issued, later), Agent::Machine);
        assert_eq!(classify_mail(Request { head: true, ..person }, issued, later), Agent::Machine);

        assert_eq!(classify_web(person), Agent::Human);
        for ua in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "curl/8.5.0",
            "python-requests/2.31",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
        ] {
            assert_eq!(
                classify_web(Request {
                    user_agent: Some(ua),
                    ..person
                }),
                Agent::Bot,
                "{ua}"
            );
        }
        assert_eq!(classify_web(Request::default()), Agent::Bot, "no user agent");
    }

    #[test]
    fn privacy_signals_and_visitor_ids() {
        assert!(opted_out(Some("1"), None));
        assert!(opted_out(None, Some("1")));
        assert!(!opted_out(Some("0"), Some("0")));
        assert!(!opted_out(None, None));
        assert!(valid_visitor_id("v1_abcdefghijklmnop"));
        assert!(!valid_visitor_id("short"));
        assert!(!valid_visitor_id("has spaces in it, sixteen+"));
    }

    #[test]
    fn utm_parameters_replace_those_of_the_destination() {
        let d = url::Url::parse("https://example.com/p?a=1&utm_source=old").unwrap();
        let u = with_utm(&d, &[("utm_source", "newsletter"), ("utm_medium", "email"), ("utm_term", " ")]);
        assert_eq!(u.as_str(), "https://example.com/p?a=1&utm_source=newsletter&utm_medium=email");
        let plain = url::Url::parse("https://example.com/p").unwrap();
        assert_eq!(with_utm(&plain, &[]).as_str(), "https://example.com/p");
    }
}
