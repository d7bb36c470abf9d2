//! Real NATS servers with JetStream for tests: a single node or a three-node cluster, in Docker
//! containers (testcontainers) or as plain `nats-server` processes.
//!
//! ```text
//! shared_single_node() ─┐                       ┌─▶ Docker: image $AETHER_NATS_IMAGE
//! shared_cluster() ─────┼─▶ NatsServer ─────────┤   (default aether/nats:2.15.1)
//! start_single_node() ──┤   urls(), nodes(),    └─▶ process: $AETHER_NATS_BIN or the symlink
//! start_cluster() ──────┘   kill_node()             $AETHER_TOOLS_DIR/bin/nats-server
//! ```
//!
//! Docker is used when `docker info` succeeds, else the binary; `AETHER_NATS_FIXTURE=docker`
//! or `=process` forces one. [`start_process_node`] always runs the binary, for servers whose
//! config names files on this machine. `scripts/nats-image.sh` builds the image and installs
//! the binary.
//! When neither is available the fixtures panic with those instructions, in CI and locally:
//! a missing server never skips a test.
//!
//! The `shared_*` servers start once per test binary and serve every test in it, so tests
//! share them by using their own namespace ([`unique_namespace`]). Every server, shared or
//! not, gets a watchdog process that removes its containers, network, process and folder
//! once the test process exits, however it exits. Servers from `start_*` are also removed
//! when dropped.

use std::fmt;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use testcontainers::core::{ContainerPort, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Environment variable naming the Docker image.
pub const IMAGE_ENV: &str = "AETHER_NATS_IMAGE";
/// The image used when [`IMAGE_ENV`] is not set.
pub const DEFAULT_IMAGE: &str = "aether/nats:2.15.1";
/// Environment variable naming the `nats-server` binary for the process fixtures.
pub const BIN_ENV: &str = "AETHER_NATS_BIN";
/// Environment variable forcing the fixture kind: `docker` or `process`.
pub const FIXTURE_ENV: &str = "AETHER_NATS_FIXTURE";

/// Bound on a node's start, and on a cluster's readiness.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

const CLIENT_PORT: u16 = 4222;
const CLUSTER_PORT: u16 = 6222;
const MONITOR_PORT: u16 = 8222;

/// Server settings beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsOptions {
    /// Start the servers with `jetstream { sync_interval: always }`, so every acknowledged
    /// message is fsynced first. Default: the server's own interval (2 minutes).
    pub sync_always: bool,
    /// Config file text appended as it is, such as an `authorization` or a `tls` block. The
    /// server reads the files it names on its own file system, so a test whose text names
    /// files on this machine starts the server with [`start_process_node`]. It must not
    /// contain a `jetstream` block when `sync_always` is set. Default: empty.
    pub extra_config: String,
}

impl NatsOptions {
    fn config_file(&self) -> Option<String> {
        let mut text = String::new();
        if self.sync_always {
            text.push_str("jetstream {\n  sync_interval: always\n}\n");
        }
        if !self.extra_config.is_empty() {
            text.push_str(&self.extra_config);
            text.push('\n');
        }
        (!text.is_empty()).then_some(text)
    }
}

/// Kind of server fixture: containers or processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureKind {
    /// Docker containers started through testcontainers.
    Docker,
    /// `nats-server` child processes on 127.0.0.1.
    Process,
}

/// One server of a [`NatsServer`].
pub struct NatsNode {
    name: String,
    client_url: String,
    monitor_url: Option<String>,
    handle: Mutex<Option<NodeHandle>>,
}

enum NodeHandle {
    Container(Box<ContainerAsync<GenericImage>>),
    Process(Child),
}

impl NatsNode {
    /// Returns the server's name (`--server_name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the URL clients connect to, such as `nats://127.0.0.1:32768`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// Returns the monitoring URL (`http://127.0.0.1:N`) of cluster nodes.
    pub fn monitor_url(&self) -> Option<&str> {
        self.monitor_url.as_deref()
    }
}

impl fmt::Debug for NatsNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsNode")
            .field("name", &self.name)
            .field("client_url", &self.client_url)
            .finish()
    }
}

/// A running single node or cluster. Dropping it removes its containers or stops its
/// processes; the shared ones live until the test process exits.
pub struct NatsServer {
    kind: FixtureKind,
    nodes: Vec<NatsNode>,
    /// Folders of the process fixture: store directories and config files.
    _folders: Vec<tempfile::TempDir>,
}

impl NatsServer {
    /// Returns the client URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.client_url.clone()).collect()
    }

    /// Returns the nodes, in start order.
    pub fn nodes(&self) -> &[NatsNode] {
        &self.nodes
    }

    /// Returns whether the nodes are containers or processes.
    pub fn kind(&self) -> FixtureKind {
        self.kind
    }

    /// Kills the node named `name` at once (SIGKILL), as a crash or a lost machine would.
    ///
    /// # Panics
    ///
    /// Panics when no node has that name or the kill fails.
    pub async fn kill_node(&self, name: &str) {
        let node = self
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no NATS node named {name:?}"));
        let handle = node.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        match handle {
            Some(NodeHandle::Container(container)) => {
                let name = name.to_owned();
                on_fixture_runtime(async move {
                    container
                        .stop_with_timeout(Some(0))
                        .await
                        .unwrap_or_else(|err| panic!("failed to kill NATS node {name}: {err}"));
                    if let Err(err) = container.rm().await {
                        eprintln!("failed to remove the container of NATS node {name}: {err}");
                    }
                })
                .await;
            }
            Some(NodeHandle::Process(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {}
        }
    }
}

impl fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsServer")
            .field("kind", &self.kind)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let mut containers = Vec::new();
        for node in &self.nodes {
            match node.handle.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(NodeHandle::Container(container)) => containers.push(*container),
                Some(NodeHandle::Process(mut child)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                None => {}
            }
        }
        if containers.is_empty() {
            return;
        }
        // Containers are removed on the fixture runtime, where their Docker client lives; the
        // drop waits so that no container outlives its server value.
        let (done, wait) = mpsc::channel();
        fixture_runtime().spawn(async move {
            for container in containers {
                let id = container.id().to_owned();
                if let Err(err) = container.rm().await {
                    eprintln!("failed to remove NATS container {id}: {err}");
                }
            }
            let _ = done.send(());
        });
        let _ = wait.recv_timeout(Duration::from_secs(60));
    }
}

/// Returns a namespace no other test uses: `prefix`, an underscore and 16 random hex digits.
pub fn unique_namespace(prefix: &str) -> String {
    format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..16])
}

/// Returns a single node shared by every test of this test binary.
pub async fn shared_single_node() -> Arc<NatsServer> {
    static SHARED: tokio::sync::OnceCell<Arc<NatsServer>> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async { Arc::new(start_single_node(NatsOptions::default()).await) })
        .await
        .clone()
}

/// Returns a three-node cluster shared by every test of this test binary.
pub async fn shared_cluster() -> Arc<NatsServer> {
    static SHARED: tokio::sync::OnceCell<Arc<NatsServer>> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async { Arc::new(start_cluster(NatsOptions::default()).await) })
        .await
        .clone()
}

/// Starts a single node with JetStream, owned by the caller.
///
/// # Panics
///
/// Panics with setup instructions when neither Docker with the image nor the binary is
/// available, and when the server does not start within 30 seconds.
pub async fn start_single_node(options: NatsOptions) -> NatsServer {
    match fixture_kind() {
        FixtureKind::Docker => {
            let image = docker_image();
            on_fixture_runtime(async move { docker_single(image, options).await }).await
        }
        FixtureKind::Process => process_single(&options),
    }
}

/// Starts a single node with JetStream as a `nats-server` process on 127.0.0.1, owned by the
/// caller, whatever the fixture kind. For tests whose [`NatsOptions::extra_config`] names files
/// on this machine, such as TLS certificates.
///
/// # Panics
///
/// Panics with setup instructions when no `nats-server` binary is found, and with the server's
/// log when the server exits before it is ready (as it does on invalid config text) or is not
/// ready within 30 seconds.
pub async fn start_process_node(options: NatsOptions) -> NatsServer {
    process_single(&options)
}

/// Starts a three-node JetStream cluster, owned by the caller, and waits until every node
/// reports healthy, so replicated streams can be created at once.
///
/// # Panics
///
/// Like [`start_single_node`], and when the cluster is not healthy within 30 seconds.
pub async fn start_cluster(options: NatsOptions) -> NatsServer {
    let server = match fixture_kind() {
        FixtureKind::Docker => {
            let image = docker_image();
            on_fixture_runtime(async move { docker_cluster(image, options).await }).await
        }
        FixtureKind::Process => process_cluster(&options),
    };
    wait_healthy(&server).await;
    server
}

/// The runtime that owns every container and its Docker client. It lives as long as the
/// process, so a container started by one test can be removed by another test's runtime.
fn fixture_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nats-fixture")
            .enable_all()
            .build()
            .expect("failed to build the NATS fixture runtime")
    })
}

/// Runs `future` on the fixture runtime, passing on its panic.
async fn on_fixture_runtime<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match fixture_runtime().spawn(future).await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("NATS fixture task was cancelled: {err}"),
    }
}

/// Setup instructions for panic messages.
fn instructions() -> String {
    let ci = if std::env::var_os("CI").is_some() {
        "This is a CI run (CI is set): the CI script must provide a NATS server before the tests. "
    } else {
        ""
    };
    format!(
        "{ci}Run scripts/nats-image.sh from the repository root: it builds the Docker image \
         {DEFAULT_IMAGE} and installs the nats-server binary (pass --no-docker on machines \
         without Docker). Set {IMAGE_ENV} to use another image, {BIN_ENV} to use another binary, \
         or {FIXTURE_ENV}=docker|process to choose."
    )
}

fn fixture_kind() -> FixtureKind {
    static KIND: OnceLock<FixtureKind> = OnceLock::new();
    *KIND.get_or_init(|| match std::env::var(FIXTURE_ENV).ok().as_deref() {
        Some("docker") => FixtureKind::Docker,
        Some("process") => FixtureKind::Process,
        Some(other) => panic!("invalid {FIXTURE_ENV}={other:?}, expected docker or process"),
        None if docker_available() => FixtureKind::Docker,
        None if nats_binary().is_some() => FixtureKind::Process,
        None => panic!("no NATS server available: Docker is not reachable and no nats-server binary was found. {}", instructions()),
    })
}

fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The image name, after checking that the image exists locally: a pull cannot work on
/// machines without registry access, and testcontainers would try one.
fn docker_image() -> String {
    static CHECKED: OnceLock<String> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
            let found = Command::new("docker")
                .args(["image", "inspect", &image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            assert!(found, "Docker image {image} not found. {}", instructions());
            image
        })
        .clone()
}

fn generic_image(image: &str) -> GenericImage {
    let (name, tag) = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    };
    GenericImage::new(name, tag)
        .with_exposed_port(CLIENT_PORT.tcp())
        .with_wait_for(WaitFor::message_on_stderr("Server is ready"))
}

async fn docker_single(image: String, options: NatsOptions) -> NatsServer {
    let name = format!("aether-nats-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut cmd = vec!["-js".to_owned(), "--server_name".to_owned(), name.clone()];
    let mut request = generic_image(&image)
        .with_container_name(&name)
        .with_startup_timeout(START_TIMEOUT);
    if let Some(config) = options.config_file() {
        request = request.with_copy_to("/etc/nats/aether.conf", config.into_bytes());
        cmd.extend(["-c".to_owned(), "/etc/nats/aether.conf".to_owned()]);
    }
    let container = request
        .with_cmd(cmd)
        .start()
        .await
        .unwrap_or_else(|err| panic!("failed to start NATS container from {image}: {err}"));
    watch_containers(&[container.id().to_owned()], None);
    let port = host_port(&container, CLIENT_PORT).await;
    NatsServer {
        kind: FixtureKind::Docker,
        nodes: vec![NatsNode {
            name,
            client_url: format!("nats://127.0.0.1:{port}"),
            monitor_url: None,
            handle: Mutex::new(Some(NodeHandle::Container(Box::new(container)))),
        }],
        _folders: Vec::new(),
    }
}

async fn docker_cluster(image: String, options: NatsOptions) -> NatsServer {
    let run = format!("aether-nats-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let network = format!("{run}-net");
    let names: Vec<String> = (1..=3).map(|n| format!("{run}-n{n}")).collect();
    let routes = names
        .iter()
        .map(|name| format!("nats://{name}:{CLUSTER_PORT}"))
        .collect::<Vec<_>>()
        .join(",");

    let start = |name: String| {
        let mut cmd = vec![
            "-js".to_owned(),
            "--server_name".to_owned(),
            name.clone(),
            "--cluster_name".to_owned(),
            "aether".to_owned(),
            "--cluster".to_owned(),
            format!("nats://0.0.0.0:{CLUSTER_PORT}"),
            "--routes".to_owned(),
            routes.clone(),
            "-m".to_owned(),
            MONITOR_PORT.to_string(),
        ];
        let mut request = generic_image(&image)
            .with_exposed_port(MONITOR_PORT.tcp())
            .with_network(&network)
            .with_container_name(&name)
            .with_startup_timeout(START_TIMEOUT);
        if let Some(config) = options.config_file() {
            request = request.with_copy_to("/etc/nats/aether.conf", config.into_bytes());
            cmd.extend(["-c".to_owned(), "/etc/nats/aether.conf".to_owned()]);
        }
        let image = image.clone();
        async move {
            request.with_cmd(cmd).start().await.unwrap_or_else(|err| {
                panic!("failed to start NATS node {name} from {image}: {err}")
            })
        }
    };
    // Started side by side: each node retries its routes until the others are up.
    let (n1, n2, n3) = tokio::join!(
        start(names[0].clone()),
        start(names[1].clone()),
        start(names[2].clone())
    );
    let containers = [n1, n2, n3];
    let ids: Vec<String> = containers.iter().map(|c| c.id().to_owned()).collect();
    watch_containers(&ids, Some(&network));

    let mut nodes = Vec::new();
    for (name, container) in names.into_iter().zip(containers) {
        let client = host_port(&container, CLIENT_PORT).await;
        let monitor = host_port(&container, MONITOR_PORT).await;
        nodes.push(NatsNode {
            name,
            client_url: format!("nats://127.0.0.1:{client}"),
            monitor_url: Some(format!("http://127.0.0.1:{monitor}")),
            handle: Mutex::new(Some(NodeHandle::Container(Box::new(container)))),
        });
    }
    NatsServer {
        kind: FixtureKind::Docker,
        nodes,
        _folders: Vec::new(),
    }
}

async fn host_port(container: &ContainerAsync<GenericImage>, port: u16) -> u16 {
    let internal: ContainerPort = port.tcp();
    container
        .get_host_port_ipv4(internal)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "NATS container {} has no host port for {port}: {err}",
                container.id()
            )
        })
}

/// Starts a detached shell that waits for this process to exit and then removes the
/// containers and the network. It outlives Ctrl-C in the terminal because `setsid` puts it in
/// its own session.
fn watch_containers(ids: &[String], network: Option<&str>) {
    let mut cleanup = format!("docker rm -f -v {} >/dev/null 2>&1", ids.join(" "));
    if let Some(network) = network {
        cleanup.push_str(&format!("; docker network rm {network} >/dev/null 2>&1"));
    }
    crate::watchdog::spawn(&cleanup, &[], "NATS containers");
}

/// The `nats-server` binary: [`BIN_ENV`], else the symlink that `scripts/nats-image.sh`
/// keeps in `$AETHER_TOOLS_DIR/bin` (default `~/.cache/aether-tools/bin`), else `PATH`.
fn nats_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN_ENV) {
        return Some(PathBuf::from(bin));
    }
    let tools = std::env::var_os("AETHER_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/aether-tools"))
        });
    if let Some(candidate) = tools.map(|dir| dir.join("bin/nats-server"))
        && candidate.exists()
    {
        return Some(candidate);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// Ports a started process reported on stderr.
struct ReportedPorts {
    client: u16,
    monitor: Option<u16>,
}

/// Starts one `nats-server` process with `args` and waits for "Server is ready".
fn spawn_process(name: &str, args: &[String], folder: &Path) -> (Child, ReportedPorts) {
    let bin =
        nats_binary().unwrap_or_else(|| panic!("no nats-server binary found. {}", instructions()));
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("failed to run {}: {err}. {}", bin.display(), instructions()));
    crate::watchdog::spawn(
        &format!(
            "kill -9 {} 2>/dev/null; rm -rf -- {}",
            child.id(),
            crate::watchdog::shell_quote(folder)
        ),
        &[],
        "a nats-server process",
    );

    // A reader thread forwards the lines until the server is ready, then keeps draining
    // stderr so the server never blocks on a full pipe.
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut forwarding = true;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if forwarding {
                let is_ready = line.contains("Server is ready");
                forwarding = lines.send(line).is_ok() && !is_ready;
            }
        }
    });

    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut client = None;
    let mut monitor = None;
    let mut log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match ready.recv_timeout(left) {
            Ok(line) => {
                if let Some(port) = port_after(&line, "Listening for client connections on ") {
                    client = Some(port);
                }
                if let Some(port) = port_after(&line, "Starting http monitor on ") {
                    monitor = Some(port);
                }
                let done = line.contains("Server is ready");
                log.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "nats-server {name} did not report ready within {START_TIMEOUT:?}; its log:\n{}",
                    log.join("\n")
                );
            }
        }
    }
    let client = client.unwrap_or_else(|| {
        panic!(
            "nats-server {name} did not log its client port; its log:\n{}",
            log.join("\n")
        )
    });
    (child, ReportedPorts { client, monitor })
}

/// The port at the end of `line` after `marker`, as in `... on 127.0.0.1:4222`.
fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.trim().rsplit(':').next()?.parse().ok()
}

fn process_folder() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("aether-nats-")
        .tempdir()
        .unwrap_or_else(|err| panic!("failed to create a folder for nats-server: {err}"))
}

fn config_args(options: &NatsOptions, folder: &Path) -> Vec<String> {
    let Some(config) = options.config_file() else {
        return Vec::new();
    };
    let path = folder.join("aether.conf");
    std::fs::write(&path, config)
        .unwrap_or_else(|err| panic!("failed to write {}: {err}", path.display()));
    vec!["-c".to_owned(), path.display().to_string()]
}

fn process_single(options: &NatsOptions) -> NatsServer {
    let folder = process_folder();
    let name = format!("aether-nats-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut args: Vec<String> = [
        "-a",
        "127.0.0.1",
        "-p",
        "-1",
        "-js",
        "--server_name",
        &name,
        "-sd",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(folder.path().join("store").display().to_string());
    args.extend(config_args(options, folder.path()));
    let (child, ports) = spawn_process(&name, &args, folder.path());
    NatsServer {
        kind: FixtureKind::Process,
        nodes: vec![NatsNode {
            name,
            client_url: format!("nats://127.0.0.1:{}", ports.client),
            monitor_url: None,
            handle: Mutex::new(Some(NodeHandle::Process(child))),
        }],
        _folders: vec![folder],
    }
}

/// Ports that were free a moment ago. Another program can take one before the server binds
/// it; the server then fails to start and the fixture panics with its log.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|err| panic!("failed to find a free port: {err}"))
        })
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("bound listener has an address")
                .port()
        })
        .collect()
}

fn process_cluster(options: &NatsOptions) -> NatsServer {
    let run = format!("aether-nats-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let cluster_ports = free_ports(3);
    let routes = cluster_ports
        .iter()
        .map(|port| format!("nats://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");

    let started: Vec<_> = (0..3)
        .map(|index| {
            let name = format!("{run}-n{}", index + 1);
            let folder = process_folder();
            let mut args: Vec<String> = vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                "-1".into(),
                "-m".into(),
                "-1".into(),
                "-js".into(),
                "--server_name".into(),
                name.clone(),
                "--cluster_name".into(),
                "aether".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", cluster_ports[index]),
                "--routes".into(),
                routes.clone(),
                "-sd".into(),
                folder.path().join("store").display().to_string(),
            ];
            args.extend(config_args(options, folder.path()));
            // Each node is ready before its routes connect, so starting them one by one works.
            let (child, ports) = spawn_process(&name, &args, folder.path());
            (name, child, ports, folder)
        })
        .collect();

    let mut nodes = Vec::new();
    let mut folders = Vec::new();
    for (name, child, ports, folder) in started {
        nodes.push(NatsNode {
            name,
            client_url: format!("nats://127.0.0.1:{}", ports.client),
            monitor_url: ports.monitor.map(|port| format!("http://127.0.0.1:{port}")),
            handle: Mutex::new(Some(NodeHandle::Process(child))),
        });
        folders.push(folder);
    }
    NatsServer {
        kind: FixtureKind::Process,
        nodes,
        _folders: folders,
    }
}

/// Polls `/healthz` on every node with a monitoring port until all return 200.
async fn wait_healthy(server: &NatsServer) {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    for node in &server.nodes {
        let Some(url) = &node.monitor_url else {
            continue;
        };
        let address = url.trim_start_matches("http://").to_owned();
        loop {
            if healthz_ok(&address).await {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "NATS node {} did not report healthy at {url}/healthz within {START_TIMEOUT:?}",
                node.name
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

async fn healthz_ok(address: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let status_line = response.split(|b| *b == b'\n').next()?;
        Some(String::from_utf8_lossy(status_line).contains(" 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_read_from_log_lines() {
        let line = "[1] 2025/01/01 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:41234";
        assert_eq!(
            port_after(line, "Listening for client connections on "),
            Some(41234)
        );
        assert_eq!(port_after(line, "Starting http monitor on "), None);
    }

    #[test]
    fn namespaces_are_unique_and_valid() {
        let a = unique_namespace("t");
        assert_ne!(a, unique_namespace("t"));
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{a}"
        );
    }
}
