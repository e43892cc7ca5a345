//! The client's address, through trusted reverse proxies (`--trusted-proxies`).
//!
//! Every per-address limit (the login and registration limits, the
//! connection caps, `check-username`, refreshes) and every audit record keys
//! on the client's address. Directly on the internet that is the TCP peer.
//! Behind a reverse proxy the peer is always the proxy, so the relay reads the
//! proxy's forwarding header, but **only when the peer is a trusted proxy**,
//! and then takes the **rightmost untrusted hop**: walking the header from the
//! right (the hop the nearest proxy saw) past every trusted proxy, the first
//! address that is not one is the client. Whatever a client writes into the
//! header itself sits to the left of that and is never used. If every hop is
//! trusted the leftmost one is the client; a hop that is not an address (a
//! client's garbage, `unknown`, an obfuscated `_name`) ends the walk at the
//! last trusted address.
//!
//! Only one header is read, the one the proxy writes (`--proxy-header`:
//! `X-Forwarded-For` by default, or RFC 7239 `Forwarded`): a proxy that writes
//! one passes the other through untouched, so reading both would let a client
//! forge its address.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// `--trusted-proxies` items.
pub fn parse_net(s: &str) -> Result<Net, String> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr =
        IpAddr::from_str(addr).map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
    let addr = canonical(addr);
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
    };
    Ok(Net { addr, prefix })
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of IPv4 peers) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl Net {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The trusted proxies and the header they write.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    nets: Vec<Net>,
    header: ProxyHeader,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address (IPv4-mapped addresses as IPv4).
    pub ip: IpAddr,
    /// Whether the TCP peer is a trusted proxy (then `ip` came from its header,
    /// and the per-address connection cap is applied per client, not per peer).
    pub via_proxy: bool,
}

impl TrustedProxies {
    pub fn new(nets: Vec<Net>, header: ProxyHeader) -> Self {
        Self { nets, header }
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from TCP peer `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return ClientAddr {
                ip: peer,
                via_proxy: false,
            };
        }
        let hops = match self.header {
            ProxyHeader::XForwardedFor => x_forwarded_for(headers),
            ProxyHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // Not an address: the walk ends at the last trusted hop.
                None => break,
            }
        }
        ClientAddr {
            ip: client,
            via_proxy: true,
        }
    }
}

/// The hops of every `X-Forwarded-For` header, in order (`None` for a hop
/// that is not an address).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            let text = v.to_str().unwrap_or("\u{0}");
            text.split(',')
                .map(|h| parse_hop(h.trim()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `for=` hops of every `Forwarded` header (RFC 7239), in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| {
            let text = v.to_str().unwrap_or("for=\u{0}");
            text.split(',')
                .map(|element| {
                    element
                        .split(';')
                        .find_map(|pair| {
                            let (k, v) = pair.split_once('=')?;
                            k.trim()
                                .eq_ignore_ascii_case("for")
                                .then(|| v.trim().trim_matches('"').to_string())
                        })
                        .and_then(|v| parse_hop(&v))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One hop: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1`, `[2001:db8::1]:567`.
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(h) {
        return Some(ip);
    }
    if let Some(rest) = h.strip_prefix('[') {
        let end = rest.find(']')?;
        return IpAddr::from_str(&rest[..end]).ok();
    }
    let (host, port) = h.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str], header: ProxyHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| parse_net(n).unwrap()).collect(), header)
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn nets_parse_and_match() {
        let n = parse_net("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.200.1.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(parse_net("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!parse_net("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(parse_net("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(parse_net("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(parse_net("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("nope").is_err());
        assert!(parse_net("10.0.0.0/x").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let p = proxies(&["127.0.0.1"], ProxyHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.2.3.4"]);
        assert_eq!(
            p.client(ip("127.0.0.2"), &h),
            ClientAddr {
                ip: ip("127.0.0.2"),
                via_proxy: false
            }
        );
        let none = proxies(&[], ProxyHeader::XForwardedFor);
        assert_eq!(none.client(ip("9.9.9.9"), &h).ip, ip("9.9.9.9"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"], ProxyHeader::XForwardedFor);
        // A forged leftmost value is never taken.
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.5, 10.1.1.1"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h).ip, ip("203.0.113.5"));
        assert!(p.client(ip("127.0.0.1"), &h).via_proxy);
        // Several header lines are one list.
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6", "203.0.113.5:4711", "10.1.1.1"],
        );
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &h).ip, ip("203.0.113.5"));
        // Every hop trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h).ip, ip("10.9.9.9"));
        // Garbage where the client should be: the last trusted hop.
        let h = headers("x-forwarded-for", &["1.1.1.1, garbage, 10.1.1.1"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h).ip, ip("10.1.1.1"));
        // No header from a trusted peer: the peer.
        assert_eq!(
            p.client(ip("127.0.0.1"), &HeaderMap::new()).ip,
            ip("127.0.0.1")
        );
        // IPv6 hops, bracketed with a port or bare.
        let h = headers("x-forwarded-for", &["[2001:db8::7]:1234"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h).ip, ip("2001:db8::7"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let xff = proxies(&["127.0.0.1"], ProxyHeader::XForwardedFor);
        let fwd = proxies(&["127.0.0.1"], ProxyHeader::Forwarded);
        let mut h = headers("forwarded", &["for=6.6.6.6"]);
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        assert_eq!(xff.client(ip("127.0.0.1"), &h).ip, ip("198.51.100.1"));
        assert_eq!(fwd.client(ip("127.0.0.1"), &h).ip, ip("6.6.6.6"));
        let h = headers(
            "forwarded",
            &[r#"for=6.6.6.6;proto=https, for="[2001:db8::9]:80";by=10.0.0.1, for=127.0.0.1"#],
        );
        assert_eq!(fwd.client(ip("127.0.0.1"), &h).ip, ip("2001:db8::9"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(fwd.client(ip("127.0.0.1"), &h).ip, ip("127.0.0.1"));
    }
}
