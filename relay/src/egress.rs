//! Where the relay may connect on a user's behalf: push endpoints are URLs a
//! user chose, so without a rule they would point the relay at its own
//! network (server-side request forgery: loopback admin ports, the cloud
//! metadata service, RFC 1918 hosts).
//!
//! The rule, unless the operator opts in with `--push-allow-private` (tests, a
//! push service on a private network):
//! - only **public unicast addresses** ([`is_public`]): no loopback, RFC 1918,
//!   CGNAT, link-local, unique-local, multicast, unspecified, documentation,
//!   benchmarking or reserved range, and none of these embedded in IPv6
//!   (IPv4-mapped, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`;
//!   Teredo and the rest of `2001::/23` are refused whole);
//! - only **port 443**;
//! - no internal-looking names (`localhost`, single labels, `.local`,
//!   `.internal`, `.home.arpa`, ...).
//!
//! **Checked where the connection is made.** The check of a URL when it is
//! stored ([`check_url`]) only gives early feedback: a name can resolve to a
//! public address today and to 127.0.0.1 at the next query (DNS rebinding). So
//! the push client resolves names through [`GuardedResolver`], which hands
//! the HTTP client only the addresses that pass the rule: the client connects
//! to nothing else, whatever the name resolves to at that moment. A URL whose
//! host is an IP literal is not resolved by the client at all; [`check_url`]
//! runs again right before each request for that case. The client follows no
//! redirect and ignores proxy environment variables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Whether `ip` is a public unicast address, reachable on the internet and not
/// a way back into the relay's own networks (see the module docs).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    let in_net = |net: [u8; 4], bits: u32| -> bool {
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        (u32::from(ip) & mask) == (u32::from_be_bytes(net) & mask)
    };
    !(in_net([0, 0, 0, 0], 8)          // "this network", unspecified
        || in_net([10, 0, 0, 0], 8)    // RFC 1918
        || in_net([100, 64, 0, 0], 10) // CGNAT (RFC 6598)
        || in_net([127, 0, 0, 0], 8)   // loopback
        || in_net([169, 254, 0, 0], 16) // link-local (cloud metadata)
        || in_net([172, 16, 0, 0], 12) // RFC 1918
        || in_net([192, 0, 0, 0], 24)  // IETF protocol assignments
        || in_net([192, 0, 2, 0], 24)  // TEST-NET-1
        || in_net([192, 88, 99, 0], 24) // 6to4 relay anycast (deprecated)
        || in_net([192, 168, 0, 0], 16) // RFC 1918
        || in_net([198, 18, 0, 0], 15) // benchmarking
        || in_net([198, 51, 100, 0], 24) // TEST-NET-2
        || in_net([203, 0, 113, 0], 24) // TEST-NET-3
        || o[0] >= 224) // multicast, reserved, broadcast
}

fn v4_at(ip: Ipv6Addr, byte: usize) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[byte], o[byte + 1], o[byte + 2], o[byte + 3])
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4-mapped ::ffff:a.b.c.d: the IPv4 address is the destination.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 well-known prefix: the embedded IPv4 address is the destination.
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4_at(ip, 12));
    }
    // 6to4: 2002:AABB:CCDD::/48 reaches the IPv4 address AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return is_public_v4(v4_at(ip, 2));
    }
    // Only global unicast (2000::/3) is public; that leaves out ::/8 (unspecified,
    // loopback, IPv4-compatible), 64:ff9b:1::/48 (local NAT64), 100::/64
    // (discard), fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10
    // (site-local) and ff00::/8 (multicast).
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23, IETF special purpose: Teredo (2001::/32), ORCHID, benchmarking,
    // AS112 and others; 2001:db8::/32, documentation; 3fff::/20, documentation.
    let special = match s[0] {
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        0x3fff => s[1] < 0x1000,
        _ => false,
    };
    !special
}

/// Why a push endpoint URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the endpoint must be an https URL")]
    Scheme,
    #[error("the endpoint must be an http or https URL")]
    SchemeHttp,
    #[error("the endpoint has no host, or carries a user name or password")]
    Host,
    #[error("push endpoints are only accepted on port 443")]
    Port,
    #[error("the endpoint's address is not a public internet address")]
    Address,
    #[error("the endpoint's host is not a public internet name")]
    Name,
}

/// What a push endpoint may be (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `--push-allow-http`: `http://` endpoints too.
    pub allow_http: bool,
    /// `--push-allow-private`: any address and port.
    pub allow_private: bool,
}

/// Suffixes of names that are never public (RFC 6761, RFC 6762, RFC 8375, and
/// the common private conventions).
const PRIVATE_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "private",
    "home.arpa",
    "localdomain",
    "invalid",
    "test",
    "example",
    "onion",
];

/// Checks a push endpoint URL against the policy: scheme, host form, port, and
/// a literal address or an internal-looking name. A name that passes is
/// checked again for every connection, by [`GuardedResolver`].
pub fn check_url(url: &reqwest::Url, policy: Policy) -> Result<(), Refused> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ if policy.allow_http => return Err(Refused::SchemeHttp),
        _ => return Err(Refused::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Host);
    }
    let Some(host) = url.host() else {
        return Err(Refused::Host);
    };
    if policy.allow_private {
        return Ok(());
    }
    if url.port_or_known_default() != Some(443) {
        return Err(Refused::Port);
    }
    match host {
        url::Host::Ipv4(v4) if !is_public_v4(v4) => Err(Refused::Address),
        url::Host::Ipv6(v6) if !is_public_v6(v6) => Err(Refused::Address),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => Ok(()),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let single_label = !name.contains('.');
            let private = PRIVATE_SUFFIXES
                .iter()
                .any(|s| name == *s || name.ends_with(&format!(".{s}")));
            if single_label || private {
                Err(Refused::Name)
            } else {
                Ok(())
            }
        }
    }
}

/// The DNS resolver of the push client: an in-process stub resolver (hickory)
/// that gives the HTTP client only the addresses the policy allows. No answer
/// is cached, so every new connection is checked against a fresh answer.
pub struct GuardedResolver {
    resolver: TokioResolver,
    allow_private: bool,
}

impl GuardedResolver {
    /// The system's nameservers (`/etc/resolv.conf`), or `nameserver` when
    /// given (`--push-dns-server`, for tests and unusual set-ups).
    pub fn new(nameserver: Option<SocketAddr>, allow_private: bool) -> std::io::Result<Self> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::new(ProtocolConfig::Udp);
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::new(ProtocolConfig::Tcp);
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).or_else(|e| {
                tracing::warn!(error = %e, "no system DNS configuration: pushes to names will fail");
                Ok::<_, std::io::Error>(TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(Vec::new()),
                    TokioRuntimeProvider::default(),
                ))
            })?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        let resolver = builder.build().map_err(std::io::Error::other)?;
        Ok(Self {
            resolver,
            allow_private,
        })
    }

    /// The addresses of `host` the policy allows (an error when none).
    pub async fn resolve_allowed(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| ResolveError::Lookup(e.to_string()))?;
        let all: Vec<IpAddr> = lookup.iter().collect();
        let allowed: Vec<IpAddr> = all
            .iter()
            .copied()
            .filter(|ip| self.allow_private || is_public(*ip))
            .collect();
        if allowed.is_empty() {
            metrics::counter!("sotto_push_refused_total", "reason" => "address").increment(1);
            tracing::warn!(host, addresses = ?all, "push: refused a name that resolves to no public address");
            return Err(ResolveError::NotPublic);
        }
        Ok(allowed)
    }
}

/// Why a push endpoint's name gave no address to connect to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("DNS lookup failed: {0}")]
    Lookup(String),
    #[error("the name resolves to no public address")]
    NotPublic,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let guard = Self {
            resolver,
            allow_private: self.allow_private,
        };
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = guard.resolve_allowed(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The push client: its resolver is [`GuardedResolver`], it follows no
/// redirect and uses no proxy (whatever `HTTPS_PROXY` says).
pub fn push_client(
    resolver: Arc<GuardedResolver>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(resolver)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(4)
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2001:10::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must not be public");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(s)), "{s} must be public");
        }
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    const STRICT: Policy = Policy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn urls_are_checked_for_scheme_port_address_and_name() {
        assert_eq!(
            check_url(&url("https://push.example.org/x"), STRICT),
            Ok(())
        );
        assert_eq!(
            check_url(&url("https://push.example.org:443/x"), STRICT),
            Ok(())
        );
        assert_eq!(check_url(&url("https://8.8.8.8/x"), STRICT), Ok(()));
        assert_eq!(
            check_url(&url("http://push.example.org/x"), STRICT),
            Err(Refused::Scheme)
        );
        assert_eq!(
            check_url(&url("ftp://push.example.org/x"), STRICT),
            Err(Refused::Scheme)
        );
        assert_eq!(
            check_url(&url("https://push.example.org:8443/x"), STRICT),
            Err(Refused::Port)
        );
        assert_eq!(
            check_url(&url("https://127.0.0.1/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://[::1]/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://[::ffff:7f00:1]/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://10.1.2.3/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://169.254.169.254/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://0x7f.1/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://2130706433/x"), STRICT),
            Err(Refused::Address)
        );
        assert_eq!(
            check_url(&url("https://localhost/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://a.localhost/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://metadata/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://printer.local/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://svc.cluster.internal/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://nas.home.arpa/x"), STRICT),
            Err(Refused::Name)
        );
        assert_eq!(
            check_url(&url("https://user:pw@push.example.org/x"), STRICT),
            Err(Refused::Host)
        );
        let open = Policy {
            allow_http: true,
            allow_private: true,
        };
        assert_eq!(check_url(&url("http://127.0.0.1:9999/x"), open), Ok(()));
        assert_eq!(check_url(&url("https://localhost:8443/x"), open), Ok(()));
        assert_eq!(
            check_url(&url("file:///etc/passwd"), open),
            Err(Refused::SchemeHttp)
        );
    }
}
