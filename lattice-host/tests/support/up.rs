//! `lattice up` host processes, for what needs a host in a process of its
//! own: SIGKILL, SIGSTOP, a restart with the same id.

use std::process::{Child, Command, Stdio};

/// The `lattice` binary of this build.
pub(crate) const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

/// A `lattice up` host process on a given server; SIGKILLed on drop.
pub(crate) struct HostProcess {
    pub(crate) child: Child,
    pub(crate) id: String,
}

impl HostProcess {
    /// `lattice up --nats URL --host-id ID ARGS`, logging warnings only,
    /// with a home of its own.
    pub(crate) fn spawn(url: &str, id: &str, args: &[&str]) -> HostProcess {
        let home =
            std::env::temp_dir().join(format!("lattice-host-process-{id}-{}", std::process::id()));
        let child = Command::new(LATTICE)
            .args(["up", "--nats", url, "--host-id", id])
            .args(["--pool-instances", "256", "--output", "json"])
            .args(args)
            .env("LATTICE_HOME", &home)
            .env("LATTICE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lattice up runs");
        HostProcess {
            child,
            id: id.to_owned(),
        }
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
