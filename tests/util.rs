//! Shared test harness: a fresh directory per test, the real built binaries, real tools.

use std::ffi::OsStr;
use std::fs;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

/// A fresh temporary directory, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("callrec-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file (creating parent directories).
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    /// A command for one of our binaries, run in this directory with a clean environment.
    pub fn cmd(&self, bin: &str) -> Command {
        let exe = match bin {
            "callrec-seal" => env!("CARGO_BIN_EXE_callrec-seal"),
            "callrec-verify" => env!("CARGO_BIN_EXE_callrec-verify"),
            "callrec-annotate" => env!("CARGO_BIN_EXE_callrec-annotate"),
            "callrec-capture" => env!("CARGO_BIN_EXE_callrec-capture"),
            "callrec-push" => env!("CARGO_BIN_EXE_callrec-push"),
            "callrec-query" => env!("CARGO_BIN_EXE_callrec-query"),
            other => panic!("unknown binary {other}"),
        };
        let mut cmd = Command::new(exe);
        cmd.current_dir(self.path())
            .env_remove("CALLREC_KEYDIR")
            .env_remove("CALLREC_PUBKEY")
            .env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CALLREC_VOCABULARY")
            .env_remove("AWS_ENDPOINT_URL")
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .stdin(Stdio::null());
        cmd
    }

    /// `callrec-seal keygen -o NAME`; returns the key directory.
    pub fn keygen(&self, name: &str) -> PathBuf {
        run_ok(self.cmd("callrec-seal").args(["keygen", "-o", name]));
        self.join(name)
    }

    /// Seal files with a key directory; returns the sealed paths printed on stdout.
    pub fn seal(&self, keys: &str, args: &[&str]) -> Vec<PathBuf> {
        let out = run_ok(self.cmd("callrec-seal").args(["-k", keys]).args(args));
        lines(&out).into_iter().map(|l| self.join(l)).collect()
    }

    /// Make a media file with FFmpeg's lavfi sources.
    pub fn ffmpeg(&self, name: &str, args: &[&str]) -> PathBuf {
        let status = Command::new("ffmpeg")
            .current_dir(self.path())
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(name)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg failed making {name}");
        self.join(name)
    }

    /// A short mono WAV tone.
    pub fn wav(&self, name: &str) -> PathBuf {
        self.ffmpeg(
            name,
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=1:sample_rate=8000",
                "-ac",
                "1",
            ],
        )
    }
}

/// Run, require exit 0, return the output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run and return (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("command runs");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run with bytes on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Run one of the real tools (minisign, age, sha256sum, ffprobe, sh).
pub fn tool(name: &str, args: &[impl AsRef<OsStr>], dir: &Path) -> Output {
    Command::new(name)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{name} must be installed (.ci/run installs it): {e}"))
}

/// `callrec-verify --json` output lines, parsed strictly: an unknown field fails the test, so
/// the schema cannot drift unnoticed.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)] // every field is listed to lock the schema, not all are read
pub enum VerifyLine {
    Verdict {
        path: String,
        status: String,
        quick: bool,
        check: Option<String>,
        message: Option<String>,
        record_id: Option<String>,
        key_id: Option<String>,
        sequence: Option<u64>,
        sealed_at: Option<String>,
        corrects: Option<String>,
        anchored_at: Option<String>,
        anchor: Option<String>,
    },
    Anchor {
        path: String,
        status: String,
        check: Option<String>,
        message: Option<String>,
        key_id: Option<String>,
        sequence: Option<u64>,
        time: Option<String>,
        tsa: Option<String>,
        trusted: Option<bool>,
    },
    Warning {
        message: String,
        paths: Vec<String>,
    },
    Bundle {
        path: String,
        files: usize,
    },
    History {
        record_id: String,
        versions: Vec<HistoryVersion>,
    },
    Chain {
        status: String,
        key_id: String,
        message: String,
        paths: Vec<String>,
    },
    Text {
        path: String,
        record: serde_json::Value,
        line: Option<String>,
    },
    Summary {
        verified: usize,
        failed: usize,
        errors: usize,
        chain_issues: usize,
        anchored: usize,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct HistoryVersion {
    pub path: String,
    pub record_id: String,
    pub sealed_at: String,
    pub corrects: Option<String>,
}

pub fn parse_verify_json(stdout: &str) -> Vec<VerifyLine> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// `callrec-seal --json` output lines, parsed strictly.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)] // every field is listed to lock the schema, not all are read
pub enum SealLine {
    Sealed {
        input: String,
        output: String,
        record_id: String,
        sequence: u64,
        corrects: Option<String>,
    },
    AlreadySealed {
        input: String,
        output: String,
    },
    Error {
        input: String,
        message: String,
    },
    Anchored {
        path: String,
        key_id: String,
        sequence: u64,
        tsa: String,
        time: String,
        tsa_name: String,
    },
    NotAnchored {
        key_id: String,
        sequence: u64,
        tsa: String,
        message: String,
    },
    Summary {
        sealed: usize,
        already_sealed: usize,
        failed: usize,
        anchored: usize,
    },
}

pub fn parse_seal_json(stdout: &str) -> Vec<SealLine> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// The offsets of a sealed file's parts, read from its footer by hand (little-endian).
pub struct Parts {
    pub media_len: usize,
    pub text: std::ops::Range<usize>,
    pub manifest: std::ops::Range<usize>,
    pub signature: std::ops::Range<usize>,
    pub footer: std::ops::Range<usize>,
}

pub fn parts(bytes: &[u8]) -> Parts {
    let f = &bytes[bytes.len() - 40..];
    let u64_at = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().unwrap()) as usize;
    let u32_at = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().unwrap()) as usize;
    let m = u64_at(0);
    let (t, ml, sl) = (u32_at(16), u32_at(20), u32_at(24));
    Parts {
        media_len: m,
        text: m..m + t,
        manifest: m + t..m + t + ml,
        signature: m + t + ml..m + t + ml + sl,
        footer: bytes.len() - 40..bytes.len(),
    }
}

/// Run one of the real tools, require success, return its stdout as text.
pub fn tool_ok(name: &str, args: &[impl AsRef<OsStr>], dir: &Path) -> String {
    let out = tool(name, args, dir);
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The kinds of a media file's streams as ffprobe reports them, comma-separated.
pub fn stream_types(dir: &Path, name: &str) -> String {
    let out = tool_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
            name,
        ],
        dir,
    );
    out.trim().lines().collect::<Vec<_>>().join(",")
}

/// Parse JSON Lines output.
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// `callrec-query search --json` or `history --json` output: the records, without the summary.
pub fn query_records(out: &[u8]) -> Vec<serde_json::Value> {
    json_lines(out)
        .into_iter()
        .filter(|l| l["type"] == "record")
        .collect()
}

/// `callrec-push --json` output: the records archived (or found archived), without the
/// summary and error lines.
pub fn archived_lines(out: &[u8]) -> Vec<serde_json::Value> {
    json_lines(out)
        .into_iter()
        .filter(|l| l["type"] == "archived")
        .collect()
}

/// A real S3 server for the tests: a single-node Garage on loopback, with one bucket and one
/// key. `.ci/run` installs the `garage` binary (scripts/setup). Stopped when dropped.
pub struct Garage {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    /// Every object in the bucket: key → bytes.
    pub fn objects(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        use futures::StreamExt;
        use object_store::ObjectStore;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(Garage::BUCKET)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("garage")
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut out = std::collections::BTreeMap::new();
            let mut list = store.list(None);
            while let Some(meta) = list.next().await {
                let meta = meta.unwrap();
                let bytes = store
                    .get(&meta.location)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                out.insert(meta.location.to_string(), bytes.to_vec());
            }
            out
        })
    }

    pub const BUCKET: &'static str = "calls";

    pub fn start() -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("callrec-garage-")
            .tempdir()
            .unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect();
        let config = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            d = dir.path().display()
        );
        fs::write(dir.path().join("garage.toml"), config).unwrap();
        let mut garage = Garage {
            dir,
            child: None,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.run_server();
        let status = garage.admin(&["status"]);
        let node = status
            .lines()
            .find_map(|l| {
                let id = l.split_whitespace().next()?;
                (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| id.to_string())
            })
            .unwrap_or_else(|| panic!("no node id in: {status}"));
        garage.admin(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.admin(&["layout", "apply", "--version", "1"]);
        garage.admin(&["bucket", "create", Self::BUCKET]);
        let key = garage.admin(&["key", "create", "callrec-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in: {key}"))
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        garage.admin(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            Self::BUCKET,
            "--key",
            "callrec-test",
        ]);
        garage
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// Start (or restart) the server and wait until it answers.
    pub fn run_server(&mut self) {
        let log = File::create(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new("garage")
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage must be installed (scripts/setup installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            let status = Command::new("garage")
                .arg("-c")
                .arg(self.config())
                .arg("status")
                .output()
                .unwrap();
            if status.status.success() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("garage did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new("garage")
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Point a callrec command at this server.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "garage")
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The moto S3 server (PyPI `moto[server]`) on loopback, with a bucket that has Object Lock
/// enabled. Garage does not implement Object Lock; moto does, so the Object Lock tests use it,
/// for the protocol only: moto is a test double of AWS, not an archive. Stopped when dropped.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub const BUCKET: &'static str = "locked";

    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 must be installed");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                moto.boto(&format!(
                    "s3.create_bucket(Bucket='{}', ObjectLockEnabledForBucket=True)",
                    Self::BUCKET
                ));
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the moto server did not start");
    }

    /// Run Python with `s3`, a boto3 client of this server, and return what it prints: an
    /// independent reader of what the server holds.
    pub fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n{code}\n",
            self.endpoint
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Point a callrec command at this server.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
