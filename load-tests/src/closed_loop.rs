//! `closed-loop`: durable ingest against a bare axum server, side by side in one run. The scenario
//! starts both itself: this binary's `baseline` (axum answering 200 to any POST once it has read the
//! body) and the `conversa` binary on a fresh embedded store (every 200 after fsync). It pre-signs
//! distinct WhatsApp webhook bodies over a set of contacts (a wamid is never repeated within a node
//! round, so no request is a cheap duplicate) and drives each target with wrk (closed loop: each
//! connection sends its next request when the previous is answered), alternating the targets round
//! after round. It prints req/s, latency and non-2xx answers per round, and the node's throughput as
//! a ratio of the bare server's in the same round. With `--reference-server` it also drives the
//! platforms' usual stack (`../shared/bench/server.js`: Fastify + pg + Socket.IO, one transaction per
//! webhook) on a throwaway PostgreSQL it starts with `deploy/scripts/start-postgres.sh`, and prints
//! the node's throughput over that stack's in the same round. It asserts nothing.

use crate::common;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(clap::Args, Clone, Debug)]
pub struct ClosedLoopArgs {
    /// The `conversa` binary to run (build it with `cargo build --release --bin conversa`).
    #[arg(long, default_value = "target/release/conversa")]
    binary: PathBuf,
    /// wrk's open connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Seconds per target per round.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Distinct contacts (conversations) the bodies come from.
    #[arg(long, default_value_t = 1000)]
    conversations: u64,
    /// Rounds; each measures the bare server, then the node.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Distinct signed bodies per node round (more than the node can take in `duration`, or wrk
    /// starts over and the node answers duplicates, which are cheaper).
    #[arg(long, default_value_t = 400_000)]
    bodies: u64,
    /// The reference stack's `server.js` (its `node_modules` installed beside it): measured third in
    /// each round, on the same bodies, against a PostgreSQL this scenario starts (needs root).
    #[arg(long)]
    reference_server: Option<PathBuf>,
    /// Keep one agent socket subscribed on the node (every event is then also fanned out).
    #[arg(long)]
    agent: bool,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<String>,
}

const ADMIN: &str = "closed-loop-admin-token";

/// wrk's script: each thread posts its own slice of the pre-signed bodies, in order.
const WRK_SCRIPT: &str = r#"
local bodies, at, count = {}, 0, 0
local threads_started = 0
function setup(thread) threads_started = threads_started + 1; thread:set("id", threads_started) end
function init(args)
  local threads = tonumber(os.getenv("WRK_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("BODIES")) do
    if n % threads == id - 1 then
      local tab = line:find("\t", 1, true)
      bodies[#bodies + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
    end
    n = n + 1
  end
  count = #bodies
end
function request()
  at = at % count + 1
  local b = bodies[at]
  return wrk.format("POST", os.getenv("WEBHOOK_PATH"),
    { ["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = b[1] }, b[2])
end
"#;

/// A process the scenario started, killed when dropped.
struct Started {
    child: Child,
    base: String,
}

/// What wrk measured against one target.
#[derive(Debug, Default)]
struct Measured {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: u64,
}

pub async fn run(args: ClosedLoopArgs) -> anyhow::Result<()> {
    if args.rounds == 0 || args.duration == 0 || args.connections == 0 || args.bodies == 0 {
        bail!("rounds, duration, connections and bodies must be positive");
    }
    let wrk = ensure_wrk().await?;
    let work = std::env::temp_dir().join(format!("conversa-closed-loop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let script = work.join("signed.lua");
    std::fs::write(&script, WRK_SCRIPT)?;

    let baseline = start_baseline().await?;
    let node = start_node(&args.binary, &work.join("data")).await?;
    let http = reqwest::Client::new();
    let target = common::provision(
        &http,
        &common::NodeArgs {
            node: node.base.clone(),
            admin_token: ADMIN.into(),
            node_pid: None,
            out: None,
        },
    )
    .await?;
    // The agent reads every frame (a socket that does not is closed as a slow consumer).
    let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if args.agent {
        use futures::StreamExt;
        let mut socket = target.agent_socket(None).await?;
        let events = std::sync::Arc::clone(&events);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                if common::frame_json(&frame).is_some_and(|f| f["type"] == "event") {
                    events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    let path = format!("/webhooks/whatsapp/{}", target.connection_id);
    let pid = node.child.id();
    let reference = match &args.reference_server {
        Some(server) => Some(start_reference(server, &work, &target.app_secret).await?),
        None => None,
    };
    // Never-repeated wamids across runs too: the reference stack's database may outlive a run.
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    println!(
        "closed loop: wrk -t{} -c{} -d{}s, {} contacts, {} rounds (bare axum, then the node{})",
        args.threads,
        args.connections,
        args.duration,
        args.conversations,
        args.rounds,
        if reference.is_some() {
            ", then the reference stack"
        } else {
            ""
        }
    );

    let mut rows = Vec::new();
    let mut lines = vec![format!(
        "{:<6} {:<10} {:>10} {:>10} {:>9} {:>9} {:>8} {:>7} {:>7}",
        "round", "target", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "ratio"
    )];
    let mut ratios = Vec::new();
    let mut over_reference = Vec::new();
    for round in 1..=args.rounds {
        let bodies = work.join(format!("bodies-{round}.txt"));
        write_bodies(
            &bodies,
            &args,
            &target.phone_number_id,
            &target.app_secret,
            &format!("{nonce}r{round}"),
        )?;
        let bare = measure(&wrk, &args, &script, &bodies, &baseline.base, "/webhook").await?;
        let ours = measure(&wrk, &args, &script, &bodies, &node.base, &path).await?;
        if ours.requests > args.bodies {
            println!(
                "round {round}: the node took {} requests but only {} bodies were signed: raise --bodies",
                ours.requests, args.bodies
            );
        }
        let ratio = if bare.per_second > 0.0 {
            ours.per_second / bare.per_second
        } else {
            0.0
        };
        ratios.push(ratio);
        let mut measured = vec![("bare axum", bare, None), ("conversa", ours, Some(ratio))];
        if let Some(reference) = &reference {
            let theirs = measure(
                &wrk,
                &args,
                &script,
                &bodies,
                &reference.base,
                "/webhooks/whatsapp",
            )
            .await?;
            // The reference's ratio column is the node's throughput over the reference's.
            let times = if theirs.per_second > 0.0 {
                measured[1].1.per_second / theirs.per_second
            } else {
                0.0
            };
            over_reference.push(times);
            measured.push(("reference", theirs, Some(times)));
        }
        for (name, m, r) in &measured {
            lines.push(format!(
                "{round:<6} {name:<10} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>7} {:>7}",
                m.requests,
                m.per_second,
                m.p50_ms,
                m.p99_ms,
                m.non_2xx,
                m.errors,
                r.map(|r| format!("{r:.3}")).unwrap_or_default()
            ));
            rows.push(
                json!({"round": round, "target": name, "requests": m.requests,
                "per_second": m.per_second, "p50_ms": m.p50_ms, "p99_ms": m.p99_ms,
                "non_2xx": m.non_2xx, "errors": m.errors, "ratio": r}),
            );
        }
        std::fs::remove_file(&bodies).ok();
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    over_reference.sort_by(f64::total_cmp);
    let reference_median = over_reference.get(over_reference.len() / 2).copied();
    if let Some(times) = reference_median {
        lines.push(format!(
            "node / reference stack (Fastify + pg + Socket.IO): median {times:.2}×, range {:.2}–{:.2}×",
            over_reference[0],
            over_reference[over_reference.len() - 1]
        ));
    }
    let rss = pid.and_then(common::resident_kib);
    lines.push(format!(
        "node / bare axum: median {median:.3}, range {:.3}–{:.3}; node RSS at the end {} MiB",
        ratios[0],
        ratios[ratios.len() - 1],
        rss.map(|k| (k / 1024).to_string())
            .unwrap_or_else(|| "?".into())
    ));
    if args.agent {
        lines.push(format!(
            "events received by the agent: {}",
            events.load(std::sync::atomic::Ordering::Relaxed)
        ));
    }
    let report = json!({"scenario": "closed-loop", "connections": args.connections,
        "threads": args.threads, "duration_s": args.duration, "conversations": args.conversations,
        "agent": args.agent, "rows": rows, "ratio_median": median, "node_rss_kib": rss,
        "node_over_reference_median": reference_median});
    drop(reference);
    drop(node);
    drop(baseline);
    std::fs::remove_dir_all(&work).ok();
    common::finish(
        &report,
        &lines,
        args.out.as_deref(),
        "closed-loop-report.json",
    )
}

/// Signs `args.bodies` distinct text-message webhooks (`signature<TAB>body` lines).
fn write_bodies(
    path: &Path,
    args: &ClosedLoopArgs,
    phone_number_id: &str,
    secret: &str,
    run: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for i in 0..args.bodies {
        let contact = i % args.conversations.max(1);
        let from = format!("55119{contact:08}");
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "bench", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": format!("Cliente {contact}")}, "wa_id": from}],
                "messages": [{"from": from, "id": format!("wamid.CLOSED{run}x{i:09}"),
                    "timestamp": now.to_string(), "type": "text",
                    "text": {"body": format!("Olá, preciso de ajuda com o pedido {i}")}}]}}]}]});
        let raw = serde_json::to_vec(&body)?;
        out.write_all(common::sign(secret, &raw).as_bytes())?;
        out.write_all(b"\t")?;
        out.write_all(&raw)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Runs wrk against `base` + `path` and reads its summary.
async fn measure(
    wrk: &str,
    args: &ClosedLoopArgs,
    script: &Path,
    bodies: &Path,
    base: &str,
    path: &str,
) -> anyhow::Result<Measured> {
    let output = Command::new(wrk)
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.duration))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(base)
        .env("BODIES", bodies)
        .env("WRK_THREADS", args.threads.to_string())
        .env("WEBHOOK_PATH", path)
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(parse_wrk(&text))
}

/// Reads wrk's `--latency` summary.
fn parse_wrk(text: &str) -> Measured {
    let mut m = Measured::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => m.p50_ms = millis(value),
            ["99%", value] => m.p99_ms = millis(value),
            ["Requests/sec:", value] => m.per_second = value.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", value] => m.non_2xx = value.parse().unwrap_or(0),
            [count, "requests", "in", ..] => m.requests = count.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                m.errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    m
}

/// wrk's durations (`812.00us`, `1.23ms`, `2.01s`, `1.5m`) in milliseconds.
fn millis(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => number,
    }
}

/// wrk's path, installing Debian's package when it is missing.
async fn ensure_wrk() -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scripts/ensure-wrk.sh");
    let output = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running ensure-wrk.sh")?;
    if !output.status.success() {
        bail!("wrk is not available");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// This binary's `baseline` subcommand, on a free port.
async fn start_baseline() -> anyhow::Result<Started> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["baseline", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the baseline")?;
    let line = first_line(&mut child, |line| {
        line.strip_prefix("listening ").map(str::to_string)
    })
    .await?;
    Ok(Started {
        child,
        base: format!("http://{line}"),
    })
}

/// The reference stack: a throwaway PostgreSQL (the project's own script, stopped when this process
/// ends) and `node server.js` on it, checking signatures with the node's app secret so both take the
/// same bodies.
async fn start_reference(server: &Path, work: &Path, app_secret: &str) -> anyhow::Result<Started> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/scripts/start-postgres.sh");
    let port = free_port()?;
    let output = Command::new("bash")
        .arg(script)
        .arg(work.join("postgres"))
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running start-postgres.sh")?;
    if !output.status.success() {
        bail!("PostgreSQL did not start for the reference stack");
    }
    let mut child = Command::new("node")
        .arg(server)
        .env("PORT", free_port()?.to_string())
        .env("APP_SECRET", app_secret)
        .env(
            "DATABASE_URL",
            format!("postgres://conversa:conversa@127.0.0.1:{port}/conversa"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting node {}", server.display()))?;
    let port = first_line(&mut child, |line| {
        line.strip_prefix("seed-stack peer on :")
            .map(str::to_string)
    })
    .await?;
    Ok(Started {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

/// A port free now (the process given it binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The node on a fresh embedded store, its output drained so it never blocks on a full pipe.
async fn start_node(binary: &Path, data: &Path) -> anyhow::Result<Started> {
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--json",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .env("CONVERSA_GATEWAY__ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let addr = first_line(&mut child, |line| {
        let value: Value = serde_json::from_str(line).ok()?;
        (value["event"] == "listening").then(|| value["addr"].as_str().map(str::to_string))?
    })
    .await?;
    Ok(Started {
        child,
        base: format!("http://{addr}"),
    })
}

/// Reads the child's stdout until `pick` finds what it wants, then keeps draining it in the
/// background.
async fn first_line(
    child: &mut Child,
    pick: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(found) = pick(&line) {
                return Some(found);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("the process did not print its address")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(found)
}

/// `baseline`: the bare server the node is compared with. Axum on a multi-thread runtime (all
/// cores, as the node), one route that reads the body and answers 200.
pub fn serve_baseline(addr: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = axum::Router::new()
            .fallback(|_body: axum::body::Bytes| async { axum::http::StatusCode::OK });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening {}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_s_latency_summary() {
        let text = "Running 1s test @ http://127.0.0.1:1\n  2 threads and 64 connections\n  \
            Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     90%    2.00ms\n     99%    4.51ms\n  \
            98765 requests in 15.00s, 7.16MB read\n  Socket errors: connect 0, read 2, write 0, timeout 3\n  \
            Non-2xx or 3xx responses: 17\nRequests/sec:   6584.33\nTransfer/sec:    488.62KB\n";
        let m = parse_wrk(text);
        assert_eq!(m.requests, 98765);
        assert!((m.per_second - 6584.33).abs() < 1e-9);
        assert!((m.p50_ms - 0.812).abs() < 1e-9);
        assert!((m.p99_ms - 4.51).abs() < 1e-9);
        assert_eq!((m.non_2xx, m.errors), (17, 5));
        assert!((millis("1.5s") - 1500.0).abs() < 1e-9);
    }
}
