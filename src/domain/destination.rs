//! Where a webhook may send: http(s) to public addresses, plus the networks an operator
//! allow-lists. The same checks run when a webhook is registered (the URL as written) and when
//! it is delivered (the URL again, and every address its host name resolves to), so that an
//! ADMIN cannot make the server probe its own network.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

/// The kind of address that makes a destination not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Unspecified,
    Loopback,
    /// RFC 1918.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Reserved, deprecated or special-purpose: not a unicast address on the internet.
    Reserved,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::Unspecified => "an unspecified address",
            Range::Loopback => "a loopback address",
            Range::Private => "a private address",
            Range::SharedAddressSpace => "a carrier-grade NAT address",
            Range::LinkLocal => "a link-local address",
            Range::UniqueLocal => "a unique local address",
            Range::Multicast => "a multicast address",
            Range::Broadcast => "the broadcast address",
            Range::Documentation => "a documentation address",
            Range::Benchmarking => "a benchmarking address",
            Range::Reserved => "a reserved address",
        })
    }
}

/// The range that makes `ip` not public, or `None` for a public address.
pub fn special_range(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

/// IANA's IPv4 special-purpose registry, less the few blocks that are globally reachable.
fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_broadcast() => Range::Broadcast,
        (0, _, _) => Range::Unspecified,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Range::Private,
        (100, 64..=127, _) => Range::SharedAddressSpace,
        (127, _, _) => Range::Loopback,
        (169, 254, _) => Range::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Range::Documentation,
        (198, 18..=19, _) => Range::Benchmarking,
        // 192.0.0.0/24: IETF protocol assignments; 192.88.99.0/24: the retired 6to4 relays.
        (192, 0, 0) | (192, 88, 99) => Range::Reserved,
        (224..=239, _, _) => Range::Multicast,
        (240..=255, _, _) => Range::Reserved,
        _ => return None,
    };
    Some(range)
}

/// IPv6: only global unicast (2000::/3) is public, and within it the special blocks are not;
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by it.
fn v6_range(ip: Ipv6Addr) -> Option<Range> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some(Range::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Range::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    // ::a.b.c.d, deprecated IPv4-compatible: never public, named after what it embeds.
    if s[..6] == [0; 6] {
        return Some(v4_range(embedded(s[6], s[7])).unwrap_or(Range::Reserved));
    }
    // 64:ff9b::/96, the well-known NAT64 prefix, reaches the IPv4 address it embeds.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_range(embedded(s[6], s[7]));
    }
    // 2002::/16, 6to4: the IPv4 address is in bits 16 to 48.
    if s[0] == 0x2002 {
        return v4_range(embedded(s[1], s[2]));
    }
    let range = match s[0] {
        0xff00..=0xffff => Range::Multicast,
        0xfe80..=0xfebf => Range::LinkLocal,
        0xfc00..=0xfdff => Range::UniqueLocal,
        0x2001 if s[1] == 0x0db8 => Range::Documentation,
        0x2001 if s[1] == 0x0002 && s[2] == 0 => Range::Benchmarking,
        // 2001::/23: IETF protocol assignments (Teredo, ORCHID, ...).
        0x2001 if s[1] < 0x0200 => Range::Reserved,
        0x3fff if s[1] < 0x1000 => Range::Documentation,
        0x2000..=0x3fff => return None,
        // Outside 2000::/3: 64:ff9b:1::/48, 100::/64, fec0::/10 and everything unassigned.
        _ => Range::Reserved,
    };
    Some(range)
}

/// The networks an operator allows besides public addresses (`--webhook-allow`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Public addresses only.
    pub const EMPTY: AllowList = AllowList(Vec::new());

    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self(nets.into_iter().map(|n| n.trunc()).collect())
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    /// Whether an allowed network holds `ip`; an IPv4-mapped address counts as its IPv4 address,
    /// since connecting to it reaches that address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip) || n.contains(&canonical))
    }

    /// Whether a webhook may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        match special_range(ip) {
            Some(range) if !self.contains(ip) => Err(Refusal::Address { ip, range }),
            _ => Ok(()),
        }
    }

    /// A webhook URL, normalized, if a webhook may send to it as far as the URL tells: http(s),
    /// no credentials, and a host that is a permitted address or a name (whose addresses are
    /// checked when it is resolved, at each delivery).
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|e| Refusal::NotUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Ipv4(v4)) => self.check(IpAddr::V4(v4))?,
            Some(Host::Ipv6(v6)) => self.check(IpAddr::V6(v6))?,
            Some(Host::Domain(name)) if is_localhost(name) => {
                // RFC 6761: these names are loopback whatever a resolver says.
                let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
                if !loopback.iter().any(|ip| self.contains(*ip)) {
                    return Err(Refusal::LocalName(name.to_owned()));
                }
            }
            Some(Host::Domain(_)) => {}
        }
        Ok(url)
    }
}

/// `localhost` and names under it, with or without the root's trailing dot.
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// An allowed network: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not a network such as 10.0.0.0/8 or fd00::/8, nor an address"))
}

/// Why a webhook may not send somewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotUrl(String),
    Scheme(String),
    NoHost,
    Credentials,
    Address {
        ip: IpAddr,
        range: Range,
    },
    LocalName(String),
    /// At delivery: the host name resolved, but to no address a webhook may reach.
    Resolved {
        host: String,
        refused: Vec<(IpAddr, Range)>,
    },
}

impl Refusal {
    /// The `userErrors` code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotUrl(_) | Refusal::Scheme(_) | Refusal::NoHost => "INVALID",
            Refusal::Credentials => "CREDENTIALS_NOT_ALLOWED",
            Refusal::Address { .. } | Refusal::LocalName(_) | Refusal::Resolved { .. } => "DESTINATION_NOT_ALLOWED",
        }
    }
}

const ALLOW_HINT: &str = "webhooks reach public addresses only, unless the server allow-lists the network (--webhook-allow)";

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotUrl(e) => write!(f, "not a URL: {e}"),
            Refusal::Scheme(s) => write!(f, "only http and https URLs are allowed, not {s}"),
            Refusal::NoHost => f.write_str("the URL has no host"),
            Refusal::Credentials => f.write_str("the URL may not carry a user name or password; authenticate with the signature"),
            Refusal::Address { ip, range } => write!(f, "{ip} is {range}; {ALLOW_HINT}"),
            Refusal::LocalName(name) => write!(f, "{name} is a loopback name; {ALLOW_HINT}"),
            Refusal::Resolved { host, refused } if refused.is_empty() => write!(f, "{host} resolves to no address"),
            Refusal::Resolved { host, refused } => {
                let list: Vec<String> = refused.iter().map(|(ip, range)| format!("{ip} ({range})")).collect();
                write!(
                    f,
                    "{host} resolves only to addresses a webhook may not reach: {}; {ALLOW_HINT}",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> AllowList {
        AllowList::default()
    }

    fn code(allow: &AllowList, url: &str) -> &'static str {
        allow.check_url(url).map_or_else(|r| r.code(), |_| "OK")
    }

    #[test]
    fn the_reported_urls_are_refused() {
        let refused = [
            "http://127.0.0.1/hook",
            "http://127.1.2.3:8080/",
            "http://localhost:8080/hook",
            "http://LOCALHOST./hook",
            "http://api.localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://0.0.0.0:5432/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[::]/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://192.0.2.1/",
            "http://198.18.0.1/",
            "http://240.0.0.1/",
            "http://[2001:db8::1]/",
        ];
        for url in refused {
            assert_eq!(code(&strict(), url), "DESTINATION_NOT_ALLOWED", "{url}");
        }
        assert_eq!(code(&strict(), "https://user:pw@example.com/x"), "CREDENTIALS_NOT_ALLOWED");
        assert_eq!(code(&strict(), "https://user@example.com/x"), "CREDENTIALS_NOT_ALLOWED");
        assert_eq!(code(&strict(), "https://:pw@example.com/x"), "CREDENTIALS_NOT_ALLOWED");
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "gopher://example.com/",
            "not a url",
            "http://",
        ] {
            assert_eq!(code(&strict(), url), "INVALID", "{url}");
        }
    }

    #[test]
    fn the_url_crate_normalizes_numeric_hosts() {
        // The URL parser, like browsers, reads a bare number as an IPv4 address.
        for raw in ["http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/"] {
            let url = Url::parse(raw).unwrap();
            assert_eq!(url.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{raw}");
        }
        let allow = AllowList::new([parse_net("127.0.0.0/8").unwrap()]);
        assert_eq!(allow.check_url("http://2130706433:9/x").unwrap().as_str(), "http://127.0.0.1:9/x");
    }

    #[test]
    fn public_destinations_pass() {
        for url in [
            "https://example.com/hook",
            "http://hooks.example.com:8443/a?b=c",
            "https://93.184.215.14/",
            "http://[2606:4700::1111]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::]/",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
            "http://localhost.example.com/",
        ] {
            assert_eq!(code(&strict(), url), "OK", "{url}");
        }
    }

    #[test]
    fn the_allow_list_opens_networks_and_nothing_else() {
        let allow = AllowList::new(["127.0.0.0/8", "::1/128", "10.1.0.0/16"].map(|n| parse_net(n).unwrap()));
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://127.5.5.5/",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:9000/",
            "http://10.1.2.3/",
        ] {
            assert_eq!(code(&allow, url), "OK", "{url}");
        }
        for url in [
            "http://10.2.0.1/",
            "http://169.254.169.254/",
            "http://0.0.0.0/",
            "http://[2002:7f00:1::]/",
        ] {
            assert_eq!(code(&allow, url), "DESTINATION_NOT_ALLOWED", "{url}");
        }
        // Credentials stay refused whatever the network.
        assert_eq!(code(&allow, "http://u:p@127.0.0.1/"), "CREDENTIALS_NOT_ALLOWED");
        // An IPv6-only allow-list lets `localhost` through, as it may resolve to ::1.
        let v6 = AllowList::new([parse_net("::1").unwrap()]);
        assert_eq!(code(&v6, "http://localhost/"), "OK");
    }

    #[test]
    fn networks_parse() {
        assert_eq!(parse_net("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net(" 10.1.2.3/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("192.168.1.5").unwrap().to_string(), "192.168.1.5/32");
        assert_eq!(parse_net("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0/8", "fd00::/129"] {
            assert!(parse_net(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_are_named() {
        let range = |s: &str| special_range(s.parse().unwrap());
        assert_eq!(range("127.0.0.1"), Some(Range::Loopback));
        assert_eq!(range("::1"), Some(Range::Loopback));
        assert_eq!(range("::ffff:127.0.0.1"), Some(Range::Loopback));
        assert_eq!(range("169.254.169.254"), Some(Range::LinkLocal));
        assert_eq!(range("100.100.100.100"), Some(Range::SharedAddressSpace));
        assert_eq!(range("0.0.0.0"), Some(Range::Unspecified));
        assert_eq!(range("255.255.255.255"), Some(Range::Broadcast));
        assert_eq!(range("fc00::1"), Some(Range::UniqueLocal));
        assert_eq!(range("2001:2::1"), Some(Range::Benchmarking));
        assert_eq!(range("2001::1"), Some(Range::Reserved));
        assert_eq!(range("3fff::1"), Some(Range::Documentation));
        assert_eq!(range("64:ff9b:1::1"), Some(Range::Reserved));
        assert_eq!(range("fec0::1"), Some(Range::Reserved));
        assert_eq!(range("8.8.8.8"), None);
        assert_eq!(range("2a00:1450::1"), None);
        let refusal = strict().check("169.254.169.254".parse().unwrap()).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "169.254.169.254 is a link-local address; webhooks reach public addresses only, unless the server allow-lists the network (--webhook-allow)"
        );
    }
}
