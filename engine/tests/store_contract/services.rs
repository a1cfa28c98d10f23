//! Throwaway servers for the contract suite and the cluster tests, started by the project's own scripts
//! (`deploy/scripts/start-postgres.sh`, `start-cassandra.sh`, `start-redis.sh`): they install or download
//! what is missing, start one server on free ports in a temporary directory, and return once it
//! answers. A watchdog started by the script kills the server if this test process dies; dropping a
//! [`Service`] kills it at once. A server that cannot start fails the suite loudly: it never skips.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Cassandra,
    /// The bus between nodes (`deploy/scripts/start-redis.sh`), for the cluster tests (the contract
    /// suite itself starts none).
    #[allow(dead_code)]
    Redis,
}

/// One running server.
pub struct Service {
    pub kind: Kind,
    /// The client port (PostgreSQL or CQL).
    pub port: u16,
    /// Cassandra's inter-node port.
    storage_port: u16,
    workdir: tempfile::TempDir,
    pid: Mutex<u32>,
}

impl Service {
    pub fn start(kind: Kind) -> Result<Service, String> {
        let workdir = tempfile::Builder::new()
            .prefix(match kind {
                Kind::Postgres => "conversa-pg-",
                Kind::Cassandra => "conversa-cassandra-",
                Kind::Redis => "conversa-redis-",
            })
            // Under /tmp whatever TMPDIR says: PostgreSQL runs as the `postgres` user, which must be
            // able to traverse every parent directory (a TMPDIR under /root would lock it out).
            .tempdir_in("/tmp")
            .map_err(|e| format!("temp dir: {e}"))?;
        let service = Service {
            kind,
            port: free_port()?,
            storage_port: free_port()?,
            workdir,
            pid: Mutex::new(0),
        };
        service.launch()?;
        Ok(service)
    }

    /// Starts the server (again) on the same data directory and ports.
    pub fn launch(&self) -> Result<(), String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut command = Command::new("bash");
        match self.kind {
            Kind::Postgres => command
                .arg(root.join("deploy/scripts/start-postgres.sh"))
                .arg(self.workdir.path())
                .arg(self.port.to_string()),
            Kind::Cassandra => command
                .arg(root.join("deploy/scripts/start-cassandra.sh"))
                .arg(self.workdir.path())
                .arg(self.port.to_string())
                .arg(self.storage_port.to_string()),
            Kind::Redis => command
                .arg(root.join("deploy/scripts/start-redis.sh"))
                .arg(self.workdir.path())
                .arg(self.port.to_string()),
        };
        command.arg(std::process::id().to_string());
        let output = command
            .output()
            .map_err(|e| format!("running the {:?} start script: {e}", self.kind))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let pid = stdout
            .lines()
            .find_map(|line| line.strip_prefix("ready pid="))
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        match (output.status.success(), pid) {
            (true, Some(pid)) => {
                *self.pid.lock().map_err(|e| e.to_string())? = pid;
                Ok(())
            }
            _ => Err(format!(
                "{:?} did not start ({}):\n{stdout}\n{}",
                self.kind,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }

    /// Kills the server without a clean shutdown (what was acknowledged must already be durable), then
    /// starts the same server again on the same data directory and ports.
    pub fn restart(&self) -> Result<(), String> {
        self.kill();
        self.launch()
    }

    /// Kills the server at once (see `restart`) and waits until its ports are free.
    pub fn kill(&self) {
        let pid = self.pid.lock().map(|p| *p).unwrap_or(0);
        if pid == 0 {
            return;
        }
        // PostgreSQL's crash equivalent is an immediate shutdown (SIGQUIT: children killed, no
        // checkpoint, WAL replay on the next start); a SIGKILLed postmaster would leave backends
        // holding its shared memory.
        let signal = match self.kind {
            Kind::Postgres => "-QUIT",
            Kind::Cassandra | Kind::Redis => "-KILL",
        };
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
        // Wait until its ports are free for the restart. A zombie is not enough: the JVM's main
        // thread can be a zombie while its other threads still hold the listening sockets.
        for _ in 0..1200 {
            let listening = [self.port, self.storage_port].iter().any(|port| {
                std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], *port)),
                    std::time::Duration::from_millis(100),
                )
                .is_ok()
            });
            if !listening {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}
