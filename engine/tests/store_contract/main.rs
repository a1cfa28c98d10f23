//! The storage contract suite, one harness for every backend (`harness = false`, on libtest-mimic, so
//! the servers it needs are started once before the cases and stopped after them, whatever the
//! outcome). Test names are `contract::<backend>::<case>` and `node::<backend>::<scenario>`:
//!
//! - `embedded`: fjall on a temporary directory;
//! - `postgres`: a throwaway PostgreSQL server (`deploy/scripts/start-postgres.sh` installs Debian's
//!   package if missing);
//! - `scylla_on_cassandra`: the ScyllaDB backend against a throwaway Apache Cassandra 5.0 node
//!   (`deploy/scripts/start-cassandra.sh` fetches it from Maven Central);
//! - `scylla_cluster`: the same cases against a real ScyllaDB cluster, only when
//!   `CONVERSA_SCYLLA_NODES` names one (`host:port,host:port`).
//!
//! A server is started only if a selected test needs it. One that cannot start fails every test of its
//! backend: nothing is skipped. Cases run one at a time (the restart case restarts the server).

mod account_cases;
mod audit_cases;
mod backends;
mod cases;
mod cluster_cases;
mod contact_cases;
mod helpdesk_cases;
mod inbox_cases;
mod node_e2e;
mod privacy_cases;
mod services;
#[path = "../support/mod.rs"]
mod support;
mod tenancy_cases;

use backends::Backend;
use libtest_mimic::{Arguments, Failed, Trial};
use services::{Kind, Service};
use std::sync::{Arc, Mutex, OnceLock};

/// Starts a backend (and the server behind it).
type Starter = Box<dyn Fn(&tokio::runtime::Runtime) -> Result<Backend, String> + Send + Sync>;

/// A backend started on first use and shared by its tests.
struct Lazy {
    name: &'static str,
    start: Starter,
    backend: OnceLock<Result<Backend, String>>,
}

impl Lazy {
    fn get(&self, runtime: &tokio::runtime::Runtime) -> Result<&Backend, Failed> {
        self.backend
            .get_or_init(|| (self.start)(runtime))
            .as_ref()
            .map_err(|e| Failed::from(format!("the {} backend could not start: {e}", self.name)))
    }
}

/// One server per kind, shared by the contract backend and the node run on it.
#[derive(Default)]
struct Servers {
    postgres: Mutex<Option<Arc<Service>>>,
    cassandra: Mutex<Option<Arc<Service>>>,
}

impl Servers {
    fn get(&self, kind: Kind) -> Result<Arc<Service>, String> {
        let slot = match kind {
            Kind::Postgres => &self.postgres,
            Kind::Cassandra => &self.cassandra,
            Kind::Redis => return Err("the contract suite needs no Redis".into()),
        };
        let mut slot = slot.lock().map_err(|e| e.to_string())?;
        if let Some(service) = slot.as_ref() {
            return Ok(Arc::clone(service));
        }
        let service = Arc::new(Service::start(kind)?);
        *slot = Some(Arc::clone(&service));
        Ok(service)
    }

    fn stop_all(&self) {
        for slot in [&self.postgres, &self.cassandra] {
            if let Ok(mut slot) = slot.lock() {
                slot.take();
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(1);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime"),
    );
    let servers = Arc::new(Servers::default());
    let run_id = std::process::id();

    let mut lazies: Vec<Arc<Lazy>> = vec![Arc::new(Lazy {
        name: "embedded",
        start: Box::new(|_| Ok(Backend::embedded())),
        backend: OnceLock::new(),
    })];
    let pg = Arc::clone(&servers);
    lazies.push(Arc::new(Lazy {
        name: "postgres",
        start: Box::new(move |_| Ok(Backend::postgres(pg.get(Kind::Postgres)?, "conversa"))),
        backend: OnceLock::new(),
    }));
    let cassandra = Arc::clone(&servers);
    lazies.push(Arc::new(Lazy {
        name: "scylla_on_cassandra",
        start: Box::new(move |_| {
            let service = cassandra.get(Kind::Cassandra)?;
            let nodes = vec![format!("127.0.0.1:{}", service.port)];
            let keyspace = format!("contract_{run_id}");
            Ok(Backend::scylla(
                "scylla_on_cassandra",
                nodes,
                &keyspace,
                Some(service),
            ))
        }),
        backend: OnceLock::new(),
    }));
    if let Ok(nodes) = std::env::var("CONVERSA_SCYLLA_NODES") {
        let nodes: Vec<String> = nodes.split(',').map(|n| n.trim().to_string()).collect();
        lazies.push(Arc::new(Lazy {
            name: "scylla_cluster",
            start: Box::new(move |_| {
                let keyspace = format!("contract_{run_id}");
                let mut backend = Backend::scylla("scylla_cluster", nodes.clone(), &keyspace, None);
                let replication =
                    std::env::var("CONVERSA_SCYLLA_REPLICATION").unwrap_or_else(|_| {
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}".into()
                    });
                backend.config.scylla.create_keyspace_replication = Some(replication);
                Ok(backend)
            }),
            backend: OnceLock::new(),
        }));
    }

    let mut trials = Vec::new();
    for lazy in &lazies {
        for (case, run) in cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        // Leases and fences: the shared backends have them; the embedded one must refuse a fenced
        // commit.
        let cluster_cases: Vec<&(&str, cluster_cases::CaseFn)> = match lazy.name {
            "embedded" => cluster_cases::WITHOUT_LEASES.iter().collect(),
            "postgres" => cluster_cases::CASES.iter().collect(),
            _ => cluster_cases::CASES
                .iter()
                .chain(cluster_cases::CQL_RESERVATIONS)
                .collect(),
        };
        for (case, run) in cluster_cases {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::cluster::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in account_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::accounts::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        let audit_cases: Vec<&(&str, audit_cases::CaseFn)> = match lazy.name {
            "embedded" => audit_cases::CASES.iter().collect(),
            _ => audit_cases::CASES
                .iter()
                .chain(audit_cases::SHARED_CASES)
                .collect(),
        };
        for (case, run) in audit_cases {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::audit::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in privacy_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::privacy::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in tenancy_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::tenancy::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in inbox_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::inbox::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in contact_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::contacts::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        for (case, run) in helpdesk_cases::CASES {
            let (lazy, runtime, run) = (Arc::clone(lazy), Arc::clone(&runtime), *run);
            trials.push(Trial::test(
                format!("contract::{}::helpdesk::{case}", lazy.name),
                move || {
                    let backend = lazy.get(&runtime)?;
                    runtime.block_on(run(backend));
                    Ok(())
                },
            ));
        }
        // The node end to end on this backend, with its own database or keyspace.
        let (lazy, runtime, servers) =
            (Arc::clone(lazy), Arc::clone(&runtime), Arc::clone(&servers));
        trials.push(Trial::test(
            format!(
                "node::{}::webhook_to_socket_to_reply_survives_node_kill",
                lazy.name
            ),
            move || {
                let backend = lazy.get(&runtime)?;
                let env = runtime
                    .block_on(node_environment(backend, &servers, run_id))
                    .map_err(Failed::from)?;
                runtime.block_on(node_e2e::webhook_to_socket_to_reply_survives_node_kill(env));
                Ok(())
            },
        ));
    }

    let conclusion = libtest_mimic::run(&args, trials);
    runtime.block_on(async {
        for lazy in &lazies {
            if let Some(Ok(backend)) = lazy.backend.get() {
                backend.close().await;
            }
        }
    });
    servers.stop_all();
    conclusion.exit_code()
}

/// Node configuration for `backend`: a database or keyspace of its own, so the node's outbox sweep
/// never meets the contract cases' rows.
async fn node_environment(
    backend: &Backend,
    _servers: &Servers,
    run_id: u32,
) -> Result<Vec<(String, String)>, String> {
    let mut config = backend.config.clone();
    match config.backend {
        engine::config::StorageBackend::Embedded => {}
        engine::config::StorageBackend::Postgres => {
            let service = backend.service.as_ref().ok_or("postgres has no server")?;
            let database = format!("node_{run_id}");
            let admin = sqlx::PgPool::connect(&backends::postgres_url(service, "conversa"))
                .await
                .map_err(|e| e.to_string())?;
            // The name is built from our own pid: nothing outside this process reaches it.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&admin)
                .await
                .map_err(|e| e.to_string())?;
            admin.close().await;
            config.postgres.url = backends::postgres_url(service, &database);
        }
        engine::config::StorageBackend::Scylla => {
            config.scylla.keyspace = format!("node_{run_id}");
        }
    }
    Ok(backends::node_env(&config))
}
