//! Where a webhook may go: an `http`/`https` URL whose host resolves only to
//! public addresses (unless WEBHOOK_ALLOW_PRIVATE), checked once when a
//! client names it and again, by the resolver the sender connects through,
//! on every attempt, so a name that resolves elsewhere later (DNS
//! rebinding) is refused at the address actually dialled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// A webhook target as given: an absolute http(s) URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not an absolute URL ({1})")]
    Malformed(String, String),
    #[error("the scheme must be http or https, not `{0}`")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    /// The address itself is not said: a client would learn how the
    /// server's resolver maps internal names.
    #[error(
        "{host} is a {kind} address; webhooks go to public addresses only \
         (WEBHOOK_ALLOW_PRIVATE=true allows others, for local testing)"
    )]
    NotPublic {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("{host} does not resolve ({reason})")]
    Unresolvable { host: String, reason: String },
}

/// A target as `scheme://host[:port]/…`: where it goes, without its path
/// and query, which may hold a token.
pub fn origin_only(url: &Url) -> String {
    format!("{}/…", url.origin().ascii_serialization())
}

impl WebhookUrl {
    /// Parse and check the form of a target (not yet its addresses).
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let url = Url::parse(raw.trim())
            .map_err(|e| TargetError::Malformed(raw.to_string(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(url.scheme().to_string()));
        }
        if url.host().is_none() {
            return Err(TargetError::NoHost(raw.to_string()));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Check every address the host has now. The sender checks again when
    /// it connects; this is for a clear answer at upload.
    pub async fn check_addresses(&self, allow_private: bool) -> Result<(), TargetError> {
        if allow_private {
            return Ok(());
        }
        let host = self.host_name();
        let port = self.0.port_or_known_default().unwrap_or(80);
        let addresses: Vec<SocketAddr> = match self.0.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| TargetError::Unresolvable {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        for address in addresses {
            check_public(&host, address.ip())?;
        }
        Ok(())
    }

    /// The address of an IP-literal host, which no resolver is asked about.
    pub fn literal_address(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }

    pub fn host_name(&self) -> String {
        self.0.host_str().unwrap_or_default().to_string()
    }
}

/// Refuse `address` unless it is public.
pub fn check_public(host: &str, address: IpAddr) -> Result<(), TargetError> {
    match non_public_kind(address) {
        Some(kind) => Err(TargetError::NotPublic {
            host: host.to_string(),
            address,
            kind,
        }),
        None => Ok(()),
    }
}

/// What kind of non-public address `ip` is, or `None` when it is public.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        // 169.254.169.254 is the cloud metadata service.
        _ if ip.is_link_local() => "link-local (cloud metadata)",
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_documentation() => "documentation",
        // Carrier-grade NAT; Alibaba's metadata service is 100.100.100.200.
        (100, 64..=127, _) => "shared (carrier NAT, cloud metadata)",
        (192, 0, 0) => "IETF protocol",
        (198, 18..=19, _) => "benchmarking",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_kind(v4);
    }
    let first = ip.segments()[0];
    let kind = match first {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "multicast",
        // fd00:ec2::254 is AWS's IPv6 metadata service.
        _ if first & 0xfe00 == 0xfc00 => "unique local (private, cloud metadata)",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xffc0 == 0xfec0 => "site-local",
        0x2001 if ip.segments()[1] == 0x0db8 => "documentation",
        // Teredo hides an IPv4 address (obfuscated) behind a relay.
        0x2001 if ip.segments()[1] == 0 => "Teredo tunnel",
        // Local-use NAT64 (RFC 8215): an IPv4 host of the operator's choice.
        0x64 if ip.segments()[1] == 0xff9b && ip.segments()[2] == 1 => "local NAT64",
        _ => return None,
    };
    Some(kind)
}

/// The IPv4 address inside IPv4-mapped, IPv4-compatible (deprecated),
/// NAT64 and 6to4 addresses, which reach that IPv4 host.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(from(hi, lo)),
        // `::a.b.c.d`; `::` and `::1` are themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        non_public_kind(ip.parse().expect("an IP address"))
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::10.0.0.1",
            "::127.0.0.1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(kind(ip).is_some(), "{ip} passed as public");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn only_absolute_http_urls_with_a_host_parse() {
        assert!(WebhookUrl::parse("https://hooks.example/receipts?x=1").is_ok());
        assert!(matches!(
            WebhookUrl::parse("ftp://hooks.example"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            WebhookUrl::parse("hooks.example/x"),
            Err(TargetError::Malformed(..))
        ));
        assert!(WebhookUrl::parse("http://").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let url = WebhookUrl::parse("http://localhost:9/hook").expect("a URL");
        let refused = url.check_addresses(false).await;
        assert!(
            matches!(refused, Err(TargetError::NotPublic { .. })),
            "{refused:?}"
        );
        assert!(url.check_addresses(true).await.is_ok());
    }
}
