//! Value parsers for settings: each checks one value completely, so clap
//! refuses a bad one with the variable's name and the reason.

use std::time::Duration;

use super::ApiKeys;

type Parsed<T> = Result<T, String>;

fn number<T: std::str::FromStr>(raw: &str) -> Parsed<T> {
    raw.trim()
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number"))
}

pub fn millis(raw: &str) -> Parsed<Duration> {
    number(raw).map(Duration::from_millis)
}

pub fn seconds(raw: &str) -> Parsed<Duration> {
    number(raw).map(Duration::from_secs)
}

pub fn positive_millis(raw: &str) -> Parsed<Duration> {
    let value = millis(raw)?;
    if value.is_zero() {
        return Err("must be above 0".into());
    }
    Ok(value)
}

pub fn millis_at_least_a_second(raw: &str) -> Parsed<Duration> {
    let value = millis(raw)?;
    if value < Duration::from_secs(1) {
        return Err("must be at least 1000 (ms)".into());
    }
    Ok(value)
}

pub fn at_least_one(raw: &str) -> Parsed<std::num::NonZeroUsize> {
    std::num::NonZeroUsize::new(number(raw)?).ok_or_else(|| "must be at least 1".into())
}

pub fn positive_usize(raw: &str) -> Parsed<usize> {
    match number(raw)? {
        0 => Err("must be above 0".into()),
        n => Ok(n),
    }
}

/// MAX_UPLOAD_BYTES: above 0, and at most 4 GiB (a body is held in memory
/// while it is checked).
pub fn upload_bytes(raw: &str) -> Parsed<usize> {
    const MOST: usize = 1 << 32;
    match positive_usize(raw)? {
        n if n > MOST => Err(format!("must be at most {MOST} (4 GiB)")),
        n => Ok(n),
    }
}

pub fn number_usize(raw: &str) -> Parsed<usize> {
    number(raw)
}

pub fn boolean(raw: &str) -> Parsed<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{raw}` is not true or false")),
    }
}

pub fn non_empty(raw: &str) -> Parsed<String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(raw.to_string())
}

pub fn queue_name(raw: &str) -> Parsed<String> {
    if raw.contains(':') {
        return Err("must contain no `:`".into());
    }
    non_empty(raw)
}

fn url_with_scheme(raw: &str, schemes: &[&str]) -> Parsed<String> {
    match url::Url::parse(raw) {
        Ok(url) if schemes.contains(&url.scheme()) => Ok(raw.to_string()),
        Ok(url) => Err(format!(
            "scheme `{}` is not one of {schemes:?}",
            url.scheme()
        )),
        Err(e) => Err(format!("`{raw}` is not a URL ({e})")),
    }
}

pub fn redis_url(raw: &str) -> Parsed<String> {
    url_with_scheme(raw, &["redis", "rediss", "redis+unix", "unix"])
}

pub fn redis_nodes(raw: &str) -> Parsed<super::sections::RedisNodes> {
    raw.split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(redis_url)
        .collect::<Parsed<Vec<_>>>()
        .map(super::sections::RedisNodes)
}

pub fn postgres_url(raw: &str) -> Parsed<String> {
    let url = url_with_scheme(raw, &["postgres", "postgresql"])?;
    // sslmode and sslrootcert are checked here; the file is read at start.
    crate::store::tls::split_url(&url)?;
    Ok(url)
}

pub fn api_keys(raw: &str) -> Parsed<ApiKeys> {
    let entries: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    let mut keys: Vec<(String, String, bool)> = Vec::new();
    let mut named = false;
    for (position, entry) in entries.iter().enumerate() {
        let parts: Vec<&str> = entry.split(':').collect();
        let (name, key, admin) = match parts[..] {
            [key] => (format!("key{}", position + 1), key, false),
            [name, key] => (name.to_string(), key, false),
            [name, key, "admin"] => (name.to_string(), key, true),
            _ => {
                return Err(format!(
                    "entry {} is not `key`, `name:key` or `name:key:admin`",
                    position + 1
                ));
            }
        };
        named |= parts.len() > 1;
        if name.is_empty() || key.is_empty() {
            return Err(format!("entry {} has an empty name or key", position + 1));
        }
        if keys.iter().any(|(other, _, _)| *other == name) {
            return Err(format!("the name `{name}` is used twice"));
        }
        if keys.iter().any(|(_, other, _)| other == key) {
            return Err(format!("entry {} repeats an earlier key", position + 1));
        }
        keys.push((name, key.to_string(), admin));
    }
    Ok(ApiKeys::new(keys, named))
}

/// A `*_KEEP_DAYS` setting as a span; `None` for 0 (kept for ever).
pub fn kept_for(days: u32) -> Option<Duration> {
    (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400))
}
