//! The queue on a real Redis Cluster: three primaries (Debian's
//! `redis-server` in cluster mode) on free ports, joined by `redis-cli
//! --cluster create`, started by each test and removed after it.

use std::process::{Child, Command, Stdio};

use receipt_ocr::config::{RedisNodes, Settings};
use receipt_ocr::job::JobState;
use receipt_ocr::startup::{Application, Role};

use crate::events::follow_sse;
use crate::helpers::{PATIENCE, TestApp, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

/// Three cluster primaries, killed (and their folder removed) when dropped.
struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    /// Each node's cluster bus port, kept across a restart.
    bus_ports: Vec<u16>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    async fn start() -> RedisCluster {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("receipt-ocr-cluster-{}", &id[..12]));
        std::fs::create_dir_all(&dir).expect("a folder for the cluster");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            bus_ports: Vec::new(),
            dir,
        };
        for _ in 0..10 {
            if cluster.nodes.len() == 3 {
                break;
            }
            // A free port can be taken by another test's connection before
            // the node binds it; such a node exits, and we try other ports.
            let (port, bus_port) = (free_port(), free_port());
            let mut node = start_node(&cluster.dir, port, bus_port);
            if answers_ping(&mut node, port, &cluster.dir).await {
                cluster.nodes.push(node);
                cluster.ports.push(port);
                cluster.bus_ports.push(bus_port);
            }
        }
        assert_eq!(cluster.nodes.len(), 3, "three nodes start within ten tries");
        cluster.create();
        cluster.wait_until_ok().await;
        cluster
    }

    async fn wait_until_ok(&self) {
        for &port in &self.ports {
            wait_for(|| async {
                let info = redis_cli(port, &["CLUSTER", "INFO"]).ok()?;
                info.contains("cluster_state:ok").then_some(())
            })
            .await;
        }
    }

    /// The node that holds the slot of `key` (the others answer MOVED).
    fn owner_of(&self, key: &str) -> usize {
        let answers: Vec<String> = (self.ports.iter())
            .map(|&port| redis_cli(port, &["EXISTS", key]).unwrap_or_default())
            .collect();
        let owners: Vec<usize> = (0..answers.len())
            .filter(|&i| !answers[i].contains("MOVED"))
            .collect();
        assert_eq!(owners.len(), 1, "one owner: {answers:?}");
        owners[0]
    }

    /// Kill node `i` (SIGKILL, its in-memory data lost) and start it again
    /// on the same ports with its cluster config, as a restarted primary.
    async fn restart(&mut self, i: usize) {
        let _ = self.nodes[i].kill();
        let _ = self.nodes[i].wait();
        self.nodes[i] = start_node(&self.dir, self.ports[i], self.bus_ports[i]);
        assert!(
            answers_ping(&mut self.nodes[i], self.ports[i], &self.dir).await,
            "the node starts again on its ports"
        );
        self.wait_until_ok().await;
    }

    /// `redis-cli --cluster create`: the three nodes as primaries, the
    /// 16384 slots split between them.
    fn create(&self) {
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &self.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = create.output().expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    fn nodes(&self) -> RedisNodes {
        RedisNodes(
            self.ports
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}"))
                .collect(),
        )
    }

    async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        let client = redis::cluster::ClusterClient::new(self.nodes().0).expect("cluster client");
        client
            .get_async_connection()
            .await
            .expect("a cluster connection")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One cluster node; its bus port is another free port (`cluster-port`).
/// It logs to `node-{port}.log` in `dir`.
fn start_node(dir: &std::path::Path, port: u16, bus_port: u16) -> Child {
    let config = dir.join(format!("nodes-{port}.conf"));
    let log = std::fs::File::create(dir.join(format!("node-{port}.log"))).expect("a log file");
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-port", &bus_port.to_string()])
        .arg("--cluster-config-file")
        .arg(&config)
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::from(log))
        .spawn()
        .expect("start redis-server (Debian's redis-server package)")
}

/// Wait until `node` answers PING (true), or has exited (false: its log
/// is printed); fail the test after `PATIENCE`.
async fn answers_ping(node: &mut Child, port: u16, dir: &std::path::Path) -> bool {
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = node.try_wait() {
            let log = std::fs::read_to_string(dir.join(format!("node-{port}.log")));
            eprintln!(
                "redis node on {port} exited ({status}): {}",
                log.unwrap_or_default()
            );
            return false;
        }
        if redis_cli(port, &["PING"]).is_ok_and(|answer| answer == "PONG") {
            return true;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "node on {port} did not answer PING"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn redis_cli(port: u16, args: &[&str]) -> std::io::Result<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn cluster_settings(cluster: &RedisCluster) -> Settings {
    let mut settings = isolated_settings();
    settings.queue.cluster_nodes = cluster.nodes();
    settings.queue.prefix = "{bull}".into();
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_is_read_through_a_redis_cluster_with_bullmqs_key_layout() {
    let cluster = RedisCluster::start().await;
    let mut settings = cluster_settings(&cluster);
    // The limiter's meta hash is written (and read back) on the cluster.
    settings.queue.rate_limit.max = 100;
    let app = TestApp::spawn(Role::Serve, settings.clone()).await;
    let overview = app.get_json(&format!("{}/api/queue", app.address)).await;
    assert_eq!(overview["rateLimit"]["max"], 100, "{overview}");

    // Held until a live client follows it, so its steps come as events.
    app.http
        .post(format!("{}/api/queue/pause", app.address))
        .send()
        .await
        .expect("pause");
    let job_id = app.upload_ok(corner_market_png()).await;
    let (status, mut updates) = follow_sse(&app, &job_id, None).await;
    assert_eq!(status, 200);
    app.http
        .post(format!("{}/api/queue/resume", app.address))
        .send()
        .await
        .expect("resume");
    let mut seen = Vec::new();
    while let Some(update) = updates.recv().await {
        seen.push(update);
    }
    let last = seen.last().expect("live updates");
    assert_eq!(last.state, "completed", "{seen:?}");
    assert!(last.id.is_some(), "from the events stream: {seen:?}");

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let store = job.result.as_ref().and_then(|r| r.store_name.as_deref());
    assert_eq!(store, Some(CORNER_MARKET.store));

    // BullMQ's layout, as Bull Board reads it, under the hash tag.
    let queue = format!("{{bull}}:{}", settings.queue.name);
    let mut redis = cluster.connection().await;
    let completed: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{queue}:completed"))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .expect("ZRANGE completed");
    assert_eq!(completed, vec![job_id.clone()]);
    let returned: Option<String> = redis::cmd("HGET")
        .arg(format!("{queue}:{job_id}"))
        .arg("returnvalue")
        .query_async(&mut redis)
        .await
        .expect("HGET returnvalue");
    let returned: serde_json::Value =
        serde_json::from_str(&returned.expect("a return value")).expect("JSON");
    assert_eq!(returned["storeName"], CORNER_MARKET.store);
    let library: Option<String> = redis::cmd("HGET")
        .arg(format!("{queue}:meta"))
        .arg("library")
        .query_async(&mut redis)
        .await
        .expect("HGET meta");
    assert!(library.is_some_and(|v| v.starts_with("bullmq")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_without_a_hash_tag_is_refused_on_a_cluster() {
    let cluster = RedisCluster::start().await;
    let mut settings = cluster_settings(&cluster);
    settings.queue.prefix = "bull".into();

    let refused = Application::build(settings, Role::Serve).await;
    let message = refused.err().expect("start-up refused").to_string();
    assert!(
        message.contains("QUEUE_PREFIX `bull` has no hash tag") && message.contains("{bull}"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_given_as_redis_url_is_refused_with_what_to_set() {
    let cluster = RedisCluster::start().await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = format!("redis://127.0.0.1:{}", cluster.ports[0]);

    let refused = Application::build(settings, Role::Api).await;
    let message = refused.err().expect("start-up refused").to_string();
    assert!(message.contains("set REDIS_CLUSTER_NODES"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_goes_on_reading_after_the_queues_primary_restarts() {
    let mut cluster = RedisCluster::start().await;
    let settings = cluster_settings(&cluster);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let first = app.upload_ok(corner_market_png()).await;
    assert_eq!(app.wait_for_final(&first).await.state, JobState::Completed);

    // The queue's keys (and the job above) are lost with the primary's
    // memory; the same worker must reconnect and read new uploads.
    let owner = cluster.owner_of("{bull}");
    cluster.restart(owner).await;
    let job_id = wait_for(|| async {
        let response = app.upload_bytes(corner_market_png(), "receipt.png").await;
        let accepted: Option<receipt_ocr::jobs::UploadAccepted> = match response.status() {
            reqwest::StatusCode::OK => response.json().await.ok(),
            _ => None,
        };
        accepted.map(|a| a.job_id)
    })
    .await;
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_job_is_found_and_moved_back_on_a_cluster() {
    use receipt_ocr::job::{Schedule, new_job_id};
    use receipt_ocr::queue::stalls::{self, StallCheck, StallCounter};

    use crate::stalls::receipt_job;

    let cluster = RedisCluster::start().await;
    let settings = cluster_settings(&cluster);
    let queue = crate::helpers::queue_for(&settings).await;
    let job_id = new_job_id();
    queue
        .enqueue(job_id.clone(), receipt_job(), Schedule::default())
        .await
        .expect("enqueued");
    // Taken by a worker that then died: active, with no lock.
    let keys = format!("{{bull}}:{}", settings.queue.name);
    let mut redis = cluster.connection().await;
    let _: () = redis::pipe()
        .cmd("LREM")
        .arg(format!("{keys}:wait"))
        .arg(0)
        .arg(&job_id)
        .cmd("LPUSH")
        .arg(format!("{keys}:active"))
        .arg(&job_id)
        .query_async(&mut redis)
        .await
        .expect("taken");

    // BullMQ's check, every key under the hash tag: the first run marks
    // the job, a later one (after the interval) moves it back.
    let check = StallCheck {
        interval: std::time::Duration::from_millis(50),
        max_stalled_count: 1,
    };
    let counter = StallCounter::default();
    let moved = wait_for(|| async {
        let moved = stalls::check_once(&queue, check, &counter)
            .await
            .expect("the check runs on the cluster");
        (moved > 0).then_some(moved)
    })
    .await;
    assert_eq!(moved, 1);
    assert_eq!(counter.get(), 1);
    let waiting: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{keys}:wait"))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .expect("LRANGE wait");
    assert_eq!(waiting, vec![job_id]);
}
