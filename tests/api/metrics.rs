//! `/metrics` of real `api` and `worker` processes, parsed as Prometheus
//! text: the histograms and counters move as jobs run, and the queue-wide
//! counts come from one process only, so a sum over processes is right.

use std::collections::BTreeMap;

use crate::helpers::{isolated_settings, wait_for};
use crate::remote::RemoteApp;
use crate::support::receipt_image::{corner_market_png, corrupt_png};

/// The samples of one scrape.
struct Samples(Vec<(String, BTreeMap<String, String>, f64)>);

impl Samples {
    /// Parse Prometheus's text format (no timestamps, as we write it).
    fn parse(text: &str) -> Samples {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let value: f64 = value.parse().expect("a number");
                match series.split_once('{') {
                    Some((name, labels)) => {
                        let labels = labels.strip_suffix('}').expect("closed labels");
                        (name.to_string(), parse_labels(labels), value)
                    }
                    None => (series.to_string(), BTreeMap::new(), value),
                }
            })
            .collect();
        Samples(samples)
    }

    /// The sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map(|(_, _, v)| *v)
    }

    /// The same, 0 when absent (a series appears with its first event).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

/// `a="x", b="y"` (values without escaped quotes, as ours are).
fn parse_labels(labels: &str) -> BTreeMap<String, String> {
    labels
        .split("\",")
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("label=value");
            let value = value.trim().trim_matches('"');
            (key.trim().to_string(), value.to_string())
        })
        .collect()
}

async fn scrape(app: &RemoteApp) -> Samples {
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200, "{text}");
    Samples::parse(&text)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_as_jobs_run_and_queue_counts_are_not_doubled() {
    let settings = isolated_settings();
    let api = RemoteApp::start("api", &settings, &[]).await;
    let worker = RemoteApp::start("worker", &settings, &[]).await;
    // One of the two takes the queue series' lease at start.
    wait_for(|| async {
        let (a, w) = (scrape(&api).await, scrape(&worker).await);
        (a.has("bullmq_job_count") != w.has("bullmq_job_count")).then_some(())
    })
    .await;
    let (api_before, worker_before) = (scrape(&api).await, scrape(&worker).await);

    let (good, bad) = (corner_market_png(), corrupt_png(&["CORRUPT"]));
    let uploaded = (good.len() + bad.len()) as f64;
    let completed = api.upload_ok(good).await;
    assert_eq!(api.wait_for_final(&completed).await["state"], "completed");
    let failed = api.upload_ok(bad).await;
    assert_eq!(api.wait_for_final(&failed).await["state"], "failed");
    let (api_after, worker_after) = (scrape(&api).await, scrape(&worker).await);

    let api_moved = |name: &str, labels: &[(&str, &str)]| {
        api_after.count(name, labels) - api_before.count(name, labels)
    };
    let upload_ok = [
        ("http_request_method", "POST"),
        ("http_route", "/api/upload"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(
        api_moved("http_server_request_duration_seconds_count", &upload_ok),
        2.0
    );
    let polls = [
        ("http_request_method", "GET"),
        ("http_route", "/api/job/{job_id}"),
        ("http_response_status_code", "200"),
    ];
    assert!(api_moved("http_server_request_duration_seconds_count", &polls) >= 2.0);
    assert_eq!(api_moved("receipt_ocr_upload_size_bytes_count", &[]), 2.0);
    assert_eq!(
        api_moved("receipt_ocr_upload_size_bytes_sum", &[]),
        uploaded
    );

    let worker_moved = |name: &str, labels: &[(&str, &str)]| {
        worker_after.count(name, labels) - worker_before.count(name, labels)
    };
    let stage = "receipt_ocr_stage_duration_seconds_count";
    assert_eq!(worker_moved(stage, &[("stage", "download")]), 2.0);
    for read in ["preprocess", "recognise", "parse"] {
        assert!(worker_moved(stage, &[("stage", read)]) >= 1.0, "{read}");
    }
    assert_eq!(worker_moved(stage, &[("stage", "save")]), 1.0);
    let attempts = "receipt_ocr_job_duration_seconds_count";
    assert_eq!(worker_moved(attempts, &[("outcome", "completed")]), 1.0);
    assert_eq!(worker_moved(attempts, &[("outcome", "failed")]), 1.0);
    assert_eq!(
        worker_moved("receipt_ocr_queue_wait_seconds_count", &[]),
        2.0
    );
    let processed = "receipt_ocr_jobs_processed_total";
    assert_eq!(worker_moved(processed, &[("outcome", "completed")]), 1.0);
    assert_eq!(worker_moved(processed, &[("outcome", "failed")]), 1.0);
    let failures = "receipt_ocr_job_failures_total";
    let bad_image = [("reason", "bad_image"), ("final", "true")];
    assert_eq!(worker_moved(failures, &bad_image), 1.0);

    let workers = settings.ocr.concurrency.get() as f64;
    assert_eq!(
        worker_after.value("receipt_ocr_ocr_workers", &[]),
        Some(workers)
    );
    assert_eq!(
        worker_after.value("receipt_ocr_ocr_workers_busy", &[]),
        Some(0.0)
    );
    for samples in [&api_after, &worker_after] {
        assert!(samples.count("process_resident_memory_bytes", &[]) > 1e6);
        assert!(samples.count("process_cpu_seconds_total", &[]) > 0.0);
    }

    // Queue-wide: the sum over both processes is the queue's own count.
    let queue = settings.queue.name.as_str();
    let sum = |name: &str, labels: &[(&str, &str)]| {
        api_after.count(name, labels) + worker_after.count(name, labels)
    };
    let completed_count = [("queue", queue), ("state", "completed")];
    let failed_count = [("queue", queue), ("state", "failed")];
    assert_eq!(sum("bullmq_job_count", &completed_count), 1.0);
    assert_eq!(sum("bullmq_job_count", &failed_count), 1.0);
    assert_eq!(sum("bullmq_job_completed_total", &[("queue", queue)]), 1.0);
    assert!(api_after.has("bullmq_job_count") != worker_after.has("bullmq_job_count"));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_process_exports_the_queue_counts_when_the_exporter_dies() {
    let settings = isolated_settings();
    let first = RemoteApp::start("api", &settings, &[]).await;
    let second = RemoteApp::start("api", &settings, &[]).await;
    let holder_is_first = wait_for(|| async {
        let (a, b) = (scrape(&first).await, scrape(&second).await);
        let (a, b) = (a.has("bullmq_job_count"), b.has("bullmq_job_count"));
        (a != b).then_some(a)
    })
    .await;
    let (holder, other) = match holder_is_first {
        true => (first, second),
        false => (second, first),
    };
    holder.process.crash();
    // The lease lapses 30 s after the last renewal; the other process
    // takes it at its next try (every 10 s).
    wait_for(|| async { scrape(&other).await.has("bullmq_job_count").then_some(()) }).await;
}

/// The dashboard's pages, `/` included (answered before the router), are
/// timed under their own route, never under an empty one; made-up methods
/// are all `_OTHER`.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_pages_are_timed_under_their_routes() {
    let api = RemoteApp::start("api", &isolated_settings(), &[]).await;
    for path in ["/", "/dashboard", "/dashboard/app.js"] {
        assert_eq!(api.get(path).await.0, 200, "{path}");
    }
    let refused = api.http.post(api.url("/")).send().await.expect("POST /");
    assert_eq!(refused.status(), 405);
    // Methods HTTP does not define are one series, not one each.
    for made_up in ["FROB1", "FROB2"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        let sent = api.http.request(method, api.url("/")).send().await;
        assert_eq!(sent.expect(made_up).status(), 405);
    }

    let samples = scrape(&api).await;
    let timed = |method: &str, route: &str, status: &str| {
        let labels = [
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status),
        ];
        samples.count("http_server_request_duration_seconds_count", &labels)
    };
    for route in ["/", "/dashboard", "/dashboard/app.js"] {
        assert_eq!(timed("GET", route, "200"), 1.0, "{route}");
    }
    assert_eq!(timed("POST", "/", "405"), 1.0);
    assert_eq!(timed("_OTHER", "/", "405"), 2.0);
    assert!(
        !samples
            .0
            .iter()
            .any(|(_, labels, _)| labels.values().any(|v| v.starts_with("FROB")))
    );
    assert_eq!(timed("GET", "", "200"), 0.0, "a page timed without a route");
}
