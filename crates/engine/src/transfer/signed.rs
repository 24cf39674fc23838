//! Presigned direct downloads (`signed_url`, CONTRACT.md §7).
//!
//! A signed URL points at an object store, not at the Agnes server, and it
//! is server text: it could name any host, including the machine's own
//! services or a cloud metadata endpoint. So it is fetched by a client of
//! its own: no `Authorization` header (the token is for the Agnes server
//! only), no proxy, no redirects, and only after the host's addresses were
//! checked; the connection is pinned to the checked address, so a second
//! DNS answer cannot swap it. Any failure here is the caller's cue to fall
//! back to the API download.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::Client;
use reqwest::{StatusCode, Url};

use crate::protocol::manifest::TableEntry;
use crate::transfer::exchange::{self, describe, Reply, SendError};
use crate::transfer::http::{Failure, ServerClient};

/// Set to `1`, lets a signed URL point at a loopback address (127.0.0.0/8,
/// `::1`): the tests' object store listens there. It widens nothing else;
/// private, link-local and metadata addresses stay refused.
pub const ALLOW_LOOPBACK_ENV: &str = "AGNES_TEST_ALLOW_LOOPBACK_SIGNED_URLS";

/// A URL expiring within this margin is taken as expired: the download
/// would not finish before it does.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Whether `entry`'s signed URL may be tried: present and not expired. An
/// expiry that cannot be read counts as expired.
pub fn usable(entry: &TableEntry) -> Result<(), String> {
    if entry.signed_url.is_none() {
        return Err("no signed URL".into());
    }
    let Some(expires) = entry.signed_url_expires_at.as_deref() else {
        return Ok(());
    };
    match parse_timestamp(expires) {
        None => Err(format!(
            "its expiry {:?} is not a timestamp",
            crate::protocol::ids::truncate(expires, 40)
        )),
        Some(at) if at <= SystemTime::now() + EXPIRY_MARGIN => {
            Err(format!("it expired at {expires}"))
        }
        Some(_) => Ok(()),
    }
}

/// One GET of a signed URL: checked, pinned, without the token, without
/// redirects. Only a `200` is a response to read.
pub fn get(url: &str, server: &ServerClient) -> Result<Reply, Failure> {
    let timeouts = server.timeouts();
    let refuse = |message: String| Failure {
        status: None,
        transient: false,
        message,
    };
    let parsed = Url::parse(url).map_err(|e| refuse(format!("it is not a URL ({e})")))?;
    let shown = redact(&parsed);
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(refuse(format!("{shown}: only http and https are fetched")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse(format!("{shown}: it carries credentials")));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| refuse(format!("{shown}: no host")))?
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| refuse(format!("{shown}: no port")))?;
    let allow_loopback = std::env::var(ALLOW_LOOPBACK_ENV).is_ok_and(|v| v == "1");
    let addresses = checked_addresses(&parsed, &host, port, allow_loopback)
        .map_err(|why| refuse(format!("{shown}: {why}")))?;

    let mut builder = Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.read)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agnes/", env!("CARGO_PKG_VERSION")));
    if let url::Host::Domain(domain) = parsed.host().expect("checked above") {
        // The connection goes to the addresses checked, whatever DNS says next.
        let pinned: Vec<SocketAddr> = addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        builder = builder.resolve_to_addrs(domain, &pinned);
    }
    let client = builder
        .build()
        .map_err(|e| refuse(format!("cannot set up HTTP: {}", describe(&e))))?;
    // Read like any download: interruptible, within the stall and rate bounds.
    let response = exchange::send(client.get(parsed), server.cancel(), server.bounds(None))
        .map_err(|e| {
            let reason = match e {
                SendError::Transport(message) => message,
                SendError::Stopped(stop) => stop.to_string(),
            };
            refuse(format!("{shown}: {reason}"))
        })?;
    match response.status() {
        StatusCode::OK => Ok(response),
        status if status.is_redirection() => Err(refuse(format!(
            "{shown} answered {status}, a redirect, which is not followed"
        ))),
        status => {
            let mut f = Failure::from_status(status, response, server.redactor());
            f.transient = false;
            f.message = format!("{shown}: {}", f.message);
            Err(f)
        }
    }
}

/// The addresses to connect to: the host's literal IP, else its DNS
/// answers, every one of which must be allowed (a mixed answer is how
/// rebinding tricks start).
fn checked_addresses(
    url: &Url,
    host: &str,
    port: u16,
    allow_loopback: bool,
) -> Result<Vec<IpAddr>, String> {
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    let literal = !matches!(url.host(), Some(url::Host::Domain(_)));
    for ip in &addresses {
        if let Some(kind) = forbidden(*ip, allow_loopback) {
            return Err(match literal {
                true => format!("{ip} is a {kind} address; refused"),
                false => format!("{host} is {ip}, a {kind} address; refused"),
            });
        }
    }
    Ok(addresses)
}

/// Why an address must not be fetched from, if it must not: loopback,
/// private, shared (CGNAT, where some clouds put metadata), link-local
/// (169.254.169.254 is the usual metadata service), multicast, reserved.
pub fn forbidden(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4, allow_loopback);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                (!allow_loopback).then_some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: the IPv4 address it reaches decides.
                let v4 = Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                );
                forbidden_v4(v4, false).map(|_| "NAT64 of a non-public")
            } else if seg[..2] == [0x2001, 0xdb8] {
                Some("documentation")
            } else if v6 == Ipv6Addr::from([0u8; 16]) {
                Some("unspecified")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        (!allow_loopback).then_some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if a == 0 || ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (a == 192 && b == 0 && ip.octets()[2] == 0) || (a == 198 && (18..20).contains(&b)) {
        Some("special-purpose")
    } else if ip.is_documentation() {
        Some("documentation")
    } else {
        None
    }
}

/// The URL for messages: scheme, host, port and path, never the query (it
/// holds the signature, a credential of its own).
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (a space for the `T`
/// is accepted); without an offset the time is UTC, as the server writes it.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = &rest[1..];
            let (h, m) = hm.split_once(':').unwrap_or((hm.get(..2)?, hm.get(2..)?));
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH.checked_add(Duration::from_secs(s)),
        Err(_) => Some(UNIX_EPOCH),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_and_without_offsets() {
        let at =
            |s: &str| parse_timestamp(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("1970-01-01T00:00:00"), Some(0));
        assert_eq!(at("2026-08-01T12:00:00Z"), Some(1_785_585_600));
        assert_eq!(at("2026-08-01T14:00:00+02:00"), Some(1_785_585_600));
        assert_eq!(at("2026-08-01T11:00:00.123456-01:00"), Some(1_785_585_600));
        assert_eq!(at("2026-08-01 12:00:00"), Some(1_785_585_600));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00",
            "2026-08-01T12:00:00+2",
            "2026-08-01",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn expired_and_unreadable_expiries_are_not_usable() {
        let entry = |expires: Option<&str>| TableEntry {
            signed_url: Some("https://store.example.com/o?sig=1".into()),
            signed_url_expires_at: expires.map(String::from),
            ..Default::default()
        };
        assert!(usable(&entry(None)).is_ok());
        assert!(usable(&entry(Some("2999-01-01T00:00:00+00:00"))).is_ok());
        assert!(usable(&entry(Some("2020-01-01T00:00:00+00:00")))
            .unwrap_err()
            .contains("expired"));
        assert!(usable(&entry(Some("soon")))
            .unwrap_err()
            .contains("not a timestamp"));
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(ip(bad), false).is_some(), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert_eq!(forbidden(ip(good), false), None, "{good}");
        }
        // The test switch admits loopback, and nothing else.
        assert_eq!(forbidden(ip("127.0.0.1"), true), None);
        assert_eq!(forbidden(ip("::1"), true), None);
        assert!(forbidden(ip("10.0.0.1"), true).is_some());
        assert!(forbidden(ip("169.254.169.254"), true).is_some());
    }

    /// A client for a server nothing listens on: a signed URL needs one for
    /// its bounds and cancel, never for its token.
    fn server() -> ServerClient {
        let settings = crate::config::Settings {
            server: "http://127.0.0.1:9".into(),
            token: crate::secrets::token::Token::new("t"),
            config_dir: "/nonexistent".into(),
            workspace: "/nonexistent".into(),
            configured_server: "http://127.0.0.1:9".into(),
            token_explicit: true,
        };
        ServerClient::new(&settings, crate::Timeouts::default(), &crate::Cancel::new()).unwrap()
    }

    #[test]
    fn refused_urls_never_connect_and_messages_hide_the_signature() {
        let t = &server();
        for (url, why) in [
            ("http://10.255.255.1:9/o?sig=SECRET", "private"),
            (
                "http://169.254.169.254/latest/meta-data?sig=SECRET",
                "link-local",
            ),
            ("file:///etc/passwd", "only http"),
            ("http://user:pw@93.184.216.34/o", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let Err(err) = get(url, t) else {
                panic!("{url} was fetched")
            };
            assert!(err.message.contains(why), "{url}: {}", err.message);
            assert!(!err.message.contains("SECRET"), "{}", err.message);
        }
    }

    #[test]
    fn a_name_that_resolves_to_loopback_is_refused() {
        let Err(err) = get("http://localhost:9/o", &server()) else {
            panic!("localhost was fetched")
        };
        assert!(err.message.contains("loopback"), "{}", err.message);
    }
}
