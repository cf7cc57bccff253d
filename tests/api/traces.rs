//! The traces a receipt leaves, as an OTLP collector receives them from
//! real processes running with `RUST_LOG=warn`: one trace from the upload
//! request to the save, with OpenTelemetry's span kinds and attributes, in
//! `serve` and across `api` + `worker`; failed attempts marked errors;
//! status polls traces of their own; probes not traced; a Node BullMQ
//! producer's trace continued.

use std::path::Path;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::helpers::isolated_settings;
use crate::otlp::{ReceivedSpan, SpanSink, as_env, event_attr};
use crate::remote::RemoteApp;
use crate::support::receipt_image::{corner_market_png, corrupt_png};

/// Every span of the trace in which job `job_id` was saved, once the
/// trace holds its request, enqueue and save.
async fn receipt_trace(sink: &SpanSink, job_id: &str) -> Vec<ReceivedSpan> {
    sink.wait_for(|spans| {
        let consumer = spans.iter().find(|s| {
            s.kind() == SpanKind::Consumer
                && s.str_attr("messaging.message.id").as_deref() == Some(job_id)
        })?;
        let trace: Vec<ReceivedSpan> = spans
            .iter()
            .filter(|s| s.trace_id() == consumer.trace_id())
            .cloned()
            .collect();
        let has = |name: &str| trace.iter().any(|s| s.name() == name);
        (has("POST /api/upload") && has("save")).then_some(trace)
    })
    .await
}

fn only<'a>(trace: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = trace.iter().filter(|s| s.name() == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {:#?}", names(trace));
    found[0]
}

fn names(trace: &[ReceivedSpan]) -> Vec<(String, String, String)> {
    trace
        .iter()
        .map(|s| (s.name().to_string(), s.span_id(), s.parent_id()))
        .collect()
}

/// True when `span` descends from `ancestor` within `trace`.
fn descends(trace: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut parent = span.parent_id();
    while let Some(next) = trace.iter().find(|s| s.span_id() == parent) {
        if next.span_id() == ancestor.span_id() {
            return true;
        }
        parent = next.parent_id();
    }
    false
}

/// The span tree of one completed upload: request → enqueue → processing
/// → stages; returns the SERVER and CONSUMER spans.
fn assert_receipt_trace<'a>(
    trace: &'a [ReceivedSpan],
    job_id: &str,
    queue: &str,
) -> (&'a ReceivedSpan, &'a ReceivedSpan) {
    let server = only(trace, "POST /api/upload");
    assert_eq!(server.kind(), SpanKind::Server);
    assert_eq!(server.parent_id(), "", "the request starts the trace");
    assert_eq!(
        server.str_attr("http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(server.str_attr("url.path").as_deref(), Some("/api/upload"));
    assert_eq!(
        server.str_attr("http.route").as_deref(),
        Some("/api/upload")
    );
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert!(!server.is_error());

    let producer = only(trace, &format!("send {queue}"));
    assert_eq!(producer.kind(), SpanKind::Producer);
    assert!(descends(trace, producer, server), "{:#?}", names(trace));
    assert_eq!(
        producer.str_attr("messaging.system").as_deref(),
        Some("bullmq")
    );
    assert_eq!(
        producer.str_attr("messaging.destination.name").as_deref(),
        Some(queue)
    );
    assert_eq!(
        producer.str_attr("messaging.message.id").as_deref(),
        Some(job_id)
    );
    assert_eq!(
        producer.str_attr("messaging.operation.type").as_deref(),
        Some("send")
    );

    // One CONSUMER span per attempt, each a child of the enqueue; the
    // last one completed the job.
    let process = format!("process {queue}");
    let mut consumers: Vec<&ReceivedSpan> = trace.iter().filter(|s| s.name() == process).collect();
    consumers.sort_by_key(|s| s.int_attr("messaging.bullmq.attempt"));
    for (n, consumer) in consumers.iter().enumerate() {
        assert_eq!(consumer.kind(), SpanKind::Consumer);
        assert_eq!(
            consumer.parent_id(),
            producer.span_id(),
            "child of the enqueue"
        );
        assert_eq!(
            consumer.int_attr("messaging.bullmq.attempt"),
            Some(n as i64 + 1)
        );
        assert_eq!(
            consumer.str_attr("messaging.destination.name").as_deref(),
            Some(queue)
        );
        assert_eq!(
            consumer.str_attr("messaging.operation.type").as_deref(),
            Some("process")
        );
    }
    let consumer = *consumers.last().expect("a processing span");
    assert!(!consumer.is_error());

    for stage in [
        "download",
        "ocr",
        "preprocess",
        "recognise",
        "parse",
        "save",
    ] {
        let spans: Vec<_> = trace
            .iter()
            .filter(|s| s.name() == stage && descends(trace, s, consumer))
            .collect();
        assert!(!spans.is_empty(), "a `{stage}` span: {:#?}", names(trace));
        assert!(spans.iter().all(|s| s.nanos() > 0), "{stage} took time");
    }
    // Parsing is timed where it happens: after the text it parses was read.
    let first_recognised = trace
        .iter()
        .filter(|s| s.name() == "recognise")
        .map(|s| s.span.end_time_unix_nano)
        .min()
        .unwrap();
    assert!(
        trace
            .iter()
            .filter(|s| s.name() == "parse")
            .all(|s| s.span.start_time_unix_nano >= first_recognised)
    );
    (server, consumer)
}

fn assert_no_probe_spans(spans: &[ReceivedSpan]) {
    for span in spans {
        let path = span.str_attr("url.path").unwrap_or_default();
        assert!(
            !path.starts_with("/health") && path != "/metrics" && !path.starts_with("/docs"),
            "a probe was traced: {span:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_upload_in_serve_is_one_trace_from_the_request_to_the_save() {
    let sink = SpanSink::start().await;
    let settings = isolated_settings();
    let queue = settings.queue.name.clone();
    let env = sink.env("receipt-ocr-serve");
    let app = RemoteApp::start("serve", &settings, &as_env(&env)).await;
    for probe in ["/health/live", "/health/ready", "/metrics", "/docs"] {
        assert_eq!(app.get(probe).await.0, 200, "{probe}");
    }

    let job_id = app.upload_ok(corner_market_png()).await;
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let query = format!(r#"query {{ jobStatus(jobId: "{job_id}") {{ state }} }}"#);
    assert_eq!(
        app.graphql(&query).await["data"]["jobStatus"]["state"],
        "completed"
    );

    let trace = receipt_trace(&sink, &job_id).await;
    let (server, consumer) = assert_receipt_trace(&trace, &job_id, &queue);
    assert!(trace.iter().all(|s| s.service == "receipt-ocr-serve"));
    assert!(
        !trace.iter().any(|s| s.name() == "add_internal"),
        "BullMQ's spans only when asked for"
    );
    assert_eq!(server.trace_id(), consumer.trace_id());

    // Status polls are short traces of their own.
    let polls = sink
        .wait_for(|spans| {
            let rest = spans.iter().find(|s| s.name() == "GET /api/job/{job_id}")?;
            let graphql = spans.iter().find(|s| s.name() == "POST /graphql")?;
            Some((rest.clone(), graphql.clone()))
        })
        .await;
    for poll in [&polls.0, &polls.1] {
        assert_eq!(poll.kind(), SpanKind::Server);
        assert_eq!(poll.parent_id(), "");
        assert_ne!(poll.trace_id(), server.trace_id());
        assert_eq!(poll.int_attr("http.response.status_code"), Some(200));
    }
    // A caller's `traceparent` is continued.
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = app.http.get(app.url(&format!("/api/job/{job_id}")));
    assert_eq!(
        traced
            .header("traceparent", caller)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let continued = sink
        .wait_for(|spans| {
            let caller_trace = "0af7651916cd43dd8448eb211c80319c";
            spans.iter().find(|s| s.trace_id() == caller_trace).cloned()
        })
        .await;
    assert_eq!(continued.name(), "GET /api/job/{job_id}");
    assert_eq!(continued.parent_id(), "b7ad6b7169203331");

    // The probes came first; spans are exported in the order they end, so
    // any probe span would be here by now.
    assert_no_probe_spans(&sink.spans());

    // A failed attempt: its processing span is an error with the exception.
    let failed_id = app.upload_ok(corrupt_png(&["CORRUPT"])).await;
    assert_eq!(app.wait_for_final(&failed_id).await["state"], "failed");
    let failed = sink
        .wait_for(|spans| {
            spans
                .iter()
                .find(|s| {
                    s.kind() == SpanKind::Consumer
                        && s.str_attr("messaging.message.id").as_deref() == Some(&failed_id)
                })
                .cloned()
        })
        .await;
    assert!(failed.is_error(), "{failed:?}");
    assert_eq!(failed.str_attr("error.type").as_deref(), Some("bad_image"));
    let exception = failed.event("exception").expect("an exception event");
    assert_eq!(
        event_attr(exception, "exception.type").as_deref(),
        Some("bad_image")
    );
    assert!(event_attr(exception, "exception.message").is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_upload_across_api_and_worker_processes_is_one_trace() {
    let sink = SpanSink::start().await;
    let settings = isolated_settings();
    let queue = settings.queue.name.clone();
    let mut api_env = sink.env("receipt-ocr-api");
    let mut worker_env = sink.env("receipt-ocr-worker");
    // OTEL_TRACES_FILTER chooses what is traced: here BullMQ's own spans too.
    api_env.push(("OTEL_TRACES_FILTER", "receipt_ocr=info,bullmq=info".into()));
    let api = RemoteApp::start("api", &settings, &as_env(&api_env)).await;
    // The first read panics: the first attempt fails and is retried.
    worker_env.push(("OCR_INJECT_PANICS", "1".into()));
    let worker = RemoteApp::start("worker", &settings, &as_env(&worker_env)).await;
    assert_eq!(worker.get("/health/ready").await.0, 200);

    let job_id = api.upload_ok(corner_market_png()).await;
    assert_eq!(api.wait_for_final(&job_id).await["state"], "completed");

    let trace = receipt_trace(&sink, &job_id).await;
    let (server, consumer) = assert_receipt_trace(&trace, &job_id, &queue);
    assert_eq!(server.service, "receipt-ocr-api");
    assert_eq!(
        only(&trace, &format!("send {queue}")).service,
        "receipt-ocr-api"
    );
    assert_eq!(consumer.service, "receipt-ocr-worker");
    assert_eq!(consumer.int_attr("messaging.bullmq.attempt"), Some(2));
    let crashed = trace
        .iter()
        .find(|s| s.int_attr("messaging.bullmq.attempt") == Some(1))
        .expect("the first attempt's span");
    assert!(crashed.is_error(), "{crashed:?}");
    assert_eq!(
        crashed.str_attr("error.type").as_deref(),
        Some("worker_crash")
    );
    assert_eq!(only(&trace, "save").service, "receipt-ocr-worker");
    let producer = only(&trace, &format!("send {queue}"));
    assert_eq!(
        only(&trace, "add_internal").parent_id(),
        producer.span_id(),
        "BullMQ's span, asked for"
    );
    assert_no_probe_spans(&sink.spans());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_bullmq_producers_trace_continues_into_the_processing() {
    let sink = SpanSink::start().await;
    let settings = isolated_settings();
    let env = sink.env("receipt-ocr-serve");
    let app = RemoteApp::start("serve", &settings, &as_env(&env)).await;
    let receipt_id = uuid::Uuid::new_v4().to_string();
    let blob_key = format!("receipts/{receipt_id}.png");
    let path = Path::new(&settings.blobs.location).join(&blob_key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, corner_market_png()).unwrap();

    let trace_id = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let args = [
        "add-traced",
        &settings.queue.name,
        &receipt_id,
        &blob_key,
        &trace_id,
    ];
    let added = crate::node_interop::node_for(&settings, &args);
    let job_id = added["jobId"].as_str().unwrap().to_string();
    assert_eq!(app.wait_for_final(&job_id).await["state"], "completed");

    let consumer = sink
        .wait_for(|spans| {
            spans
                .iter()
                .find(|s| {
                    s.kind() == SpanKind::Consumer
                        && s.str_attr("messaging.message.id").as_deref() == Some(&job_id)
                })
                .cloned()
        })
        .await;
    assert_eq!(consumer.trace_id(), trace_id, "the Node producer's trace");
    assert_eq!(
        consumer.parent_id(),
        added["producerSpanId"].as_str().unwrap()
    );
}
