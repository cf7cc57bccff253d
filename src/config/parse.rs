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

pub fn postgres_url(raw: &str) -> Parsed<String> {
    url_with_scheme(raw, &["postgres", "postgresql"])
}

pub fn api_keys(raw: &str) -> Parsed<ApiKeys> {
    let keys = raw
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    Ok(ApiKeys::new(keys))
}
