//! The W3C `traceparent` header, written and read by hand: every job
//! carries one, and OpenTelemetry's `TraceContextPropagator` costs a
//! `format!`, a `split` into a `Vec` and radix parses per job where these
//! are a few table look-ups. The format is the propagator's to the byte,
//! so Node producers and our older jobs link as before.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const LENGTH: usize = 55;
const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `context` as a version-00 `traceparent`, with only the sampled flag (as
/// the propagator writes it). The caller checks that `context` is valid.
pub fn write(context: &SpanContext) -> String {
    let mut header = String::with_capacity(LENGTH);
    header.push_str("00-");
    push_hex(&mut header, &context.trace_id().to_bytes());
    header.push('-');
    push_hex(&mut header, &context.span_id().to_bytes());
    header.push('-');
    push_hex(
        &mut header,
        &[(context.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
    header
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// The remote span context `header` names, or `None` unless it is a valid
/// W3C `traceparent`: lowercase hex, a 32-digit trace id and a 16-digit
/// span id neither all zeros, 2-digit flags of which only `sampled` is
/// kept. Version 00 is exactly these four fields; a later version (not
/// `ff`) may add fields after a `-`, read as the specification says.
/// Stricter than the propagator, which also takes short ids (`00-1-2-01`)
/// and signed flags (`+1`), which the specification does not.
pub fn parse(header: &str) -> Option<SpanContext> {
    let header = header.trim().as_bytes();
    if header.len() < LENGTH || !dashes_in_place(header) {
        return None;
    }
    let [version] = lower_hex::<1>(&header[0..2])?;
    let known_length = match version {
        0 => header.len() == LENGTH,
        0xff => false,
        _ => header.len() == LENGTH || header[LENGTH] == b'-',
    };
    let trace_id = TraceId::from_bytes(lower_hex(&header[3..35])?);
    let span_id = SpanId::from_bytes(lower_hex(&header[36..52])?);
    let [flags] = lower_hex::<1>(&header[53..55])?;
    let flags = TraceFlags::new(flags) & TraceFlags::SAMPLED;
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE);
    (known_length && context.is_valid()).then_some(context)
}

fn dashes_in_place(header: &[u8]) -> bool {
    header[2] == b'-' && header[35] == b'-' && header[52] == b'-'
}

/// `N` bytes from `2 × N` lowercase hex digits.
fn lower_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    (digits.len() == 2 * N).then_some(bytes)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::Context;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    /// What OpenTelemetry's propagator reads from `header`.
    fn propagators(header: &str) -> Option<SpanContext> {
        let carrier = HashMap::from([("traceparent".to_string(), header.to_string())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then_some(span_context)
    }

    #[test]
    fn the_parser_agrees_with_opentelemetrys_propagator() {
        let headers = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            "  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-XYZxsf09",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-A1",
            "00-ab00000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-cd0000000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-0100",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "qw-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-qw000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-qw",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
            "",
        ];
        for header in headers {
            assert_eq!(parse(header), propagators(header), "{header:?}");
        }
        assert!(parse(headers[0]).is_some(), "a valid header is read");
    }

    #[test]
    fn the_parser_refuses_what_only_the_propagator_takes() {
        let beyond_the_specification = [
            "00-1-2-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        ];
        for header in beyond_the_specification {
            assert!(propagators(header).is_some(), "{header:?}");
            assert_eq!(parse(header), None, "{header:?}");
        }
    }

    #[test]
    fn what_the_writer_writes_the_propagator_writes_and_both_read_back() {
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        for flags in [
            TraceFlags::SAMPLED,
            TraceFlags::default(),
            TraceFlags::new(0xff),
        ] {
            let context = SpanContext::new(trace_id, span_id, flags, false, TraceState::NONE);
            let mut carrier = HashMap::new();
            let parent = Context::new().with_remote_span_context(context.clone());
            TraceContextPropagator::new().inject_context(&parent, &mut carrier);
            let header = write(&context);
            assert_eq!(Some(&header), carrier.get("traceparent"));
            let read = parse(&header).expect("the written header is read back");
            assert_eq!(Some(read.clone()), propagators(&header));
            let kept = flags & TraceFlags::SAMPLED;
            assert_eq!((read.trace_id(), read.span_id()), (trace_id, span_id));
            assert_eq!((read.trace_flags(), read.is_remote()), (kept, true));
        }
    }
}
