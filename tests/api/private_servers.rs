//! Redis and PostgreSQL servers of a test's own, which it may stop, freeze
//! and restart without disturbing other tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::helpers::{free_port, wait_for};

/// A private `redis-server`, killed when dropped.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
    /// The append-only file's directory, when persistence is on.
    dir: Option<PathBuf>,
}

impl PrivateRedis {
    /// Redis that keeps nothing: a restart starts empty.
    pub async fn start(port: u16) -> PrivateRedis {
        let mut redis = PrivateRedis {
            child: None,
            port,
            dir: None,
        };
        redis.run().await;
        redis
    }

    /// Redis with its append-only file on (fsync on every write), as a
    /// production Redis for queues runs: a restart keeps every job.
    pub async fn persistent() -> PrivateRedis {
        let dir = scratch_dir("redis");
        let mut redis = PrivateRedis {
            child: None,
            port: free_port(),
            dir: Some(dir),
        };
        redis.run().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        let dir;
        match &self.dir {
            Some(path) => {
                dir = path.display().to_string();
                args.extend(["--dir", &dir, "--appendonly", "yes"]);
                args.extend(["--appendfsync", "always"]);
            }
            None => args.extend(["--appendonly", "no"]),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/deps.sh)");
        self.child = Some(child);
        let url = self.url();
        wait_for(|| async {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            // Answers PING only once the append-only file is loaded.
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }

    /// Kill it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (and files).
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A private PostgreSQL cluster (Debian's binaries), stopped and removed
/// when dropped. Created with `initdb` in a few seconds.
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// Server settings beyond the port and address (TLS).
    options: String,
}

impl PrivatePostgres {
    pub async fn start() -> PrivatePostgres {
        let postgres = Self::init();
        postgres.start_again();
        postgres
    }

    /// One that speaks TLS only: a certificate for 127.0.0.1 signed by an
    /// authority of the test's own (`ca.pem`, whose path is returned), and
    /// connections without TLS refused.
    pub async fn start_tls() -> (PrivatePostgres, PathBuf) {
        let mut postgres = Self::init();
        let dir = postgres.dir.clone();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl is installed");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=receipt-ocr test authority",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        std::fs::set_permissions(
            dir.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("the key is private");
        std::fs::write(
            postgres.data().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("write pg_hba.conf");
        postgres.options = format!(
            "-c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key",
            dir.display()
        );
        postgres.start_again();
        (postgres, dir.join("ca.pem"))
    }

    fn init() -> PrivatePostgres {
        let postgres = PrivatePostgres {
            port: free_port(),
            bin: postgres_bin(),
            dir: scratch_dir("postgres"),
            options: String::new(),
        };
        postgres.as_owner(
            &postgres.bin.join("initdb"),
            &[
                "-D",
                &postgres.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        postgres
    }

    /// A database URL on this server (the service creates the database).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stop it now (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    /// Start it (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.display(),
            self.options
        );
        let log = self.dir.join("log").display().to_string();
        self.pg_ctl(&["start", "-w", "-o", &options, "-l", &log]);
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data().display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend(args);
        self.as_owner(&self.bin.join("pg_ctl"), &all);
    }

    /// PostgreSQL refuses to run as root: as root, run it as `postgres`.
    fn as_owner(&self, program: &Path, args: &[&str]) {
        let mut command = if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", &self.dir.display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success());
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let output = command
            .args(args)
            .stdout(Stdio::null())
            .output()
            .expect("PostgreSQL's server binaries are installed (scripts/deps.sh)");
        assert!(
            output.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &data, "stop", "-m", "immediate"])
            .output();
        if unsafe { libc::geteuid() } == 0 {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &data, "stop", "-m", "immediate"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest PostgreSQL server's binaries Debian installed.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/deps.sh)")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| {
        let version = bin.parent().and_then(|v| v.file_name());
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    versions
        .pop()
        .expect("initdb under /usr/lib/postgresql/*/bin")
}

fn scratch_dir(kind: &str) -> PathBuf {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir()
        .join("receipt-ocr-tests")
        .join(format!("{kind}-{}", &id[..12]));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
